"""What every Lambda entry point shares: one logger, one metrics object, one Fireline.

Built on first use, so importing a handler costs little and tests can set the
environment first.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

import handlers
from fireline.app import Fireline
from fireline.config import Settings
from fireline.errors import FirelineError
from fireline.metrics import record_incident_metrics

logger = Logger(service="fireline", log_uncaught_exceptions=True)
metrics = Metrics(namespace="Fireline", service="fireline")
# The core logs through the standard library; give those loggers the same JSON format.
copy_config_to_registered_loggers(source_logger=logger, include={"fireline", "playbooks"})

# The imports are done (see handlers/__init__.py): what they built stays for the process's
# life, so the collector leaves it alone from now on, and runs at its usual pace again.
gc.freeze()
gc.set_threshold(*handlers.USUAL_GC_THRESHOLD)


@cache
def fireline() -> Fireline:
    settings = Settings.from_env()
    if settings.slack_bot_token is None and os.environ.get("FIRELINE_SLACK_SECRET"):
        # Deployed: the bot token lives in Secrets Manager, next to the signing secret.
        from fireline.slack_requests import slack_secrets

        settings = settings.model_copy(update={"slack_bot_token": slack_secrets().bot_token})
    return Fireline(settings, observe=lambda before, after: record_incident_metrics(
        metrics, before, after))


def knows_its_account(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """In Lambda, Fireline's own account is the one in the function's ARN (no STS call on a
    cold start). Only there: elsewhere (the CLI, tests) the context is made up."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        arn = getattr(context, "invoked_function_arn", None)
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and isinstance(arn, str):
            # Not configured: the handler meets the same error and answers it.
            with contextlib.suppress(FirelineError):
                fireline().accounts.learn_home(arn)
        return handler(event, context)

    return wrapper


def publish_metrics(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Flush the invocation's metrics as EMF, then forget them.

    Powertools' own `log_metrics` keeps the metrics when POWERTOOLS_METRICS_DISABLED is
    set (local runs), so a long-lived process would pile them up and print them anyway
    at 100 values; clearing after every flush keeps one invocation's metrics to itself.
    """

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            metrics.clear_metrics()

    return wrapper
