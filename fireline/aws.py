"""boto3 clients from one cached factory, created on first use, never at import.

Endpoints come from botocore itself (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`),
so local runs against moto change the environment, not this code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fireline.errors import AwsCallFailed

# Fireline's requests say who made them: CloudTrail's userAgent then tells Fireline's own
# changes apart from a deploy's. A fixed string also spares botocore rebuilding its detailed
# header on every request (about 40% of a call's client-side time, measured in issue 8).
USER_AGENT = (f"fireline Boto3/{boto3.__version__} Botocore/{botocore.__version__} "
              f"Python/{sys.version_info.major}.{sys.version_info.minor}")

# Standard retries back off on throttling; remediation calls must survive a busy account.
RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"},
                 connect_timeout=5, read_timeout=20, user_agent=USER_AGENT)

# `factory("lambda")` for the home region, `factory("lambda", region="eu-west-1")` elsewhere.
ClientFactory = Callable[..., Any]


@cache
def _session() -> boto3.session.Session:
    keep_secrets_out_of_logs()
    return boto3.session.Session()


class _NoSecretValues(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG, and the body of a Secrets
    Manager answer is the secret itself (the Slack bot token, the signing secret). Such a
    record keeps its first line, not the body."""

    _MARKERS = ("SecretString", "SecretBinary")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot be formatted is not ours to judge
            return True
        if any(marker in text for marker in self._MARKERS):
            first = str(record.msg).split("\n", 1)[0].split("%", 1)[0].rstrip(": ")
            record.msg, record.args = f"{first}: (a Secrets Manager secret, not logged)", ()
        return True


# The botocore loggers that write request and response bodies.
_BODY_LOGGERS = ("botocore.parsers", "botocore.endpoint")


def keep_secrets_out_of_logs() -> None:
    """Put the filter on botocore's body loggers, once (whatever the log level: a level set
    to DEBUG later, by an operator or by Lambda's log settings, is covered)."""
    for name in _BODY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoSecretValues) for f in logger.filters):
            logger.addFilter(_NoSecretValues())


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
