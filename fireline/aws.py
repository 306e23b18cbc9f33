"""boto3 clients from one cached factory, created on first use, never at import.

Endpoints come from botocore itself (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`),
so local runs against moto change the environment, not this code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fireline.errors import AwsCallFailed

# Standard retries back off on throttling; remediation calls must survive a busy account.
RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"},
                 connect_timeout=5, read_timeout=20)

# `factory("lambda")` for the home region, `factory("lambda", region="eu-west-1")` elsewhere.
ClientFactory = Callable[..., Any]


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@cache
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for `service` (in `region`, default the session's), shared by the process."""
    return _session().client(service, region_name=region, config=RETRIES)


def reset_clients() -> None:
    """Forget cached clients (tests and the demo switch endpoints and credentials)."""
    client.cache_clear()
    _session.cache_clear()


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def describe_aws_error(call: str, exc: BaseException) -> AwsCallFailed:
    """A typed error naming the call and AWS's code; AccessDenied names the permission."""
    code = error_code(exc)
    if isinstance(exc, ClientError):
        detail = exc.response.get("Error", {}).get("Message", "")
    elif isinstance(exc, BotoCoreError):
        detail = str(exc)
    else:
        detail = str(exc)
    hint = ""
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
        hint = f" (grant the permission for {call})"
    return AwsCallFailed(f"{call} failed: {code}: {detail}{hint}".rstrip(": "))
