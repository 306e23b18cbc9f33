"""An embedded local AWS: moto's server on 127.0.0.1, and the environment that points at it.

Fireline's code is unchanged: botocore reads AWS_ENDPOINT_URL, so every client goes there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from fireline import aws

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Never read the user's real profile or credentials during a local run.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@contextmanager
def local_aws() -> Iterator[str]:
    """Start moto's server on a free 127.0.0.1 port; yield its URL with the env set."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; the demo's reader wants the story, not the HTTP.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with patched_env({**LOCAL_ENV, "AWS_ENDPOINT_URL": url}):
        aws.reset_clients()
        try:
            yield url
        finally:
            aws.reset_clients()
            server.stop()


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
