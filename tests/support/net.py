"""Network helpers for tests: only 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@pytest.fixture
def closed_port_url() -> str:
    """A Slack-style base URL on 127.0.0.1 where nothing listens (Slack unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


@dataclass
class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers (Slack hanging, not down)."""

    url: str
    connections: list[socket.socket] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)  # time.monotonic()


@pytest.fixture
def silent_slack() -> Iterator[SilentServer]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    server = SilentServer(url=f"http://127.0.0.1:{listener.getsockname()[1]}/api/")
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            server.connected_at.append(time.monotonic())
            server.connections.append(connection)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    yield server
    done.set()
    acceptor.join()
    listener.close()
    for connection in server.connections:
        connection.close()
