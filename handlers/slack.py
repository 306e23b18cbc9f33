"""Lambda entry point for Slack (Function URL or API Gateway): slash commands and buttons.

A request is answered at once; changing work goes to an asynchronous invocation of this
same function (an event carrying `fireline_slack_job`), which does it and answers on the
request's response_url. See fireline/slack_door.py for the checks and their order.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from fireline import aws
from fireline.access import groups_resolver, load_access
from fireline.errors import ConfigurationError
from fireline.slack_door import JOB_KEY, SlackDoor
from fireline.slack_requests import SlackVerifier, slack_secrets
from handlers._runtime import fireline, logger, publish_metrics


@logger.inject_lambda_context(clear_state=True)
@publish_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and JOB_KEY in event:
        return door().work(event[JOB_KEY])
    return door().answer(event)


@cache
def door() -> SlackDoor:
    app = fireline()
    secrets = slack_secrets()
    if secrets.signing_secret is None:
        raise ConfigurationError("no Slack signing secret: set SLACK_SIGNING_SECRET or "
                                 "FIRELINE_SLACK_SECRET")
    web = app.notifier.client if hasattr(app.notifier, "client") else None
    return SlackDoor(
        app, verifier=SlackVerifier(secrets.signing_secret.get_secret_value()),
        policy=load_access(app.settings.access_path),
        groups_of=groups_resolver(web) if web is not None else (lambda _user: frozenset()),
        hand_off=hand_off, command_name=app.settings.slack_command)


def hand_off(job: dict[str, Any]) -> None:
    """The slow part runs in a new invocation of this function, so Slack hears back now."""
    aws.client("lambda").invoke(
        FunctionName=os.environ.get("FIRELINE_SLACK_WORKER")
        or os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        InvocationType="Event", Payload=json.dumps(job).encode())
