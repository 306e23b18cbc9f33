"""AWS for tests: moto in-process, with credentials that can reach nothing real."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from fireline import aws
from fireline.config import Settings
from fireline.local.atomic_writes import atomic_conditional_writes
from fireline.local.aws_server import LOCAL_ENV

TABLE = "fireline-test-incidents"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in LOCAL_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SLACK_BOT_TOKEN", "FIRELINE_SLACK_CHANNEL",
                "FIRELINE_SLACK_API_URL", "FIRELINE_TABLE", "FIRELINE_RUNBOOK",
                "SLACK_SIGNING_SECRET", "FIRELINE_SLACK_SECRET", "FIRELINE_ACCESS",
                "FIRELINE_STATE_MACHINE_ARN", "FIRELINE_CROSS_ACCOUNT_ROLE",
                "FIRELINE_EXTERNAL_ID", "FIRELINE_ENRICH", "FIRELINE_ENRICH_BUDGET_SECONDS"):
        monkeypatch.delenv(key, raising=False)
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    # DynamoDB's conditional writes are atomic; moto's are made so (the store's concurrency
    # tests are about Fireline, not moto).
    with atomic_conditional_writes(), mock_aws(config={"lambda": {"use_docker": False}}):
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


class AwsCalls(Counter[str]):
    """`service.Operation` -> how many, for every client made after it was installed."""

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self[f"{model.service_model.service_name}.{model.name}"] += 1
        if model.name == "PutItem" and params["Item"]["sk"] == {"S": "META"}:
            self["incident document written"] += 1


@pytest.fixture
def aws_calls(handler_env: None, monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    """Counts the AWS calls of the handlers' Fireline (the context's calls are off: they
    are a budget of their own). Counted where they leave: botocore's `before-parameter-build`."""
    from handlers import _runtime

    monkeypatch.setenv("FIRELINE_ENRICH", "off")
    _runtime.fireline.cache_clear()
    aws.reset_clients()  # clients copy their session's handlers when made: make them anew
    counted = AwsCalls()
    aws._session().events.register("before-parameter-build", counted)
    return counted
