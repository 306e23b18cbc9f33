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
def local_aws(*, cloudtrail: bool = False) -> Iterator[str]:
    """Start moto's server on a free 127.0.0.1 port; yield its URL with the env set.

    With `cloudtrail`, the local CloudTrail stand-in (fireline.local.cloudtrail) sits in
    front: the writes made to the local AWS can be looked up as CloudTrail events."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; the demo's reader wants the story, not the HTTP.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server_class = _trailed_server_class() if cloudtrail else ThreadedMotoServer
    server = server_class(ip_address="127.0.0.1", port=0, verbose=False)
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


def _trailed_server_class() -> type:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from fireline.local.cloudtrail import CloudTrailStandIn

    class TrailedMotoServer(ThreadedMotoServer):
        """moto's threaded server with the CloudTrail stand-in wrapped around its app
        (moto's own `_server_entry`, one line changed)."""

        def _server_entry(self) -> None:
            app = CloudTrailStandIn(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return TrailedMotoServer
