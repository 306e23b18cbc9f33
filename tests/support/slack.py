"""The local Slack for tests: a Slack-compatible server on 127.0.0.1, one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fireline.local.slack_server import LocalSlack


@pytest.fixture
def local_slack() -> Iterator[LocalSlack]:
    with LocalSlack() as server:
        yield server
