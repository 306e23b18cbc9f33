"""AWS for tests: moto in-process, with credentials that can reach nothing real."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from fireline import aws
from fireline.config import Settings
from fireline.local.aws_server import LOCAL_ENV

TABLE = "fireline-test-incidents"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in LOCAL_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SLACK_BOT_TOKEN", "FIRELINE_SLACK_CHANNEL",
                "FIRELINE_SLACK_API_URL", "FIRELINE_TABLE", "FIRELINE_RUNBOOK",
                "SLACK_SIGNING_SECRET", "FIRELINE_SLACK_SECRET", "FIRELINE_ACCESS",
                "FIRELINE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(key, raising=False)
    aws.reset_clients()
    yield
    aws.reset_clients()


def _atomic_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks a write's condition and then writes, with no lock: two threads can both
    pass `attribute_not_exists`. DynamoDB never lets that happen, and the store's
    concurrency tests are about Fireline, not moto, so writes are made atomic here."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


@pytest.fixture
def moto(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _atomic_writes(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        aws.reset_clients()
        yield
    aws.reset_clients()


@pytest.fixture
def settings(local_slack) -> Settings:
    return Settings(table=TABLE, slack_bot_token="xoxb-valid", slack_channel="#incidents",
                    slack_api_url=local_slack.base_url, slack_timeout_seconds=2)


@pytest.fixture
def app(moto: None, settings: Settings):
    from fireline.app import Fireline

    fireline = Fireline(settings)
    fireline.store.create_table()
    return fireline


@pytest.fixture
def handler_env(moto: None, local_slack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a deployed handler sees, pointed at moto and the local Slack."""
    from handlers import _runtime

    monkeypatch.setenv("FIRELINE_TABLE", TABLE)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-valid")
    monkeypatch.setenv("FIRELINE_SLACK_CHANNEL", "#incidents")
    monkeypatch.setenv("FIRELINE_SLACK_API_URL", local_slack.base_url)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    _runtime.fireline.cache_clear()
    _runtime.fireline().store.create_table()
    yield
    _runtime.fireline.cache_clear()
