"""Network helpers for tests: only 127.0.0.1."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def closed_port_url() -> str:
    """A Slack-style base URL on 127.0.0.1 where nothing listens (Slack unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"
