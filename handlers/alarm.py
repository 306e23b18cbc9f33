"""Lambda entry point for alarms: SNS, SNS via SQS, EventBridge, direct alarm action.

Bad input is answered and logged, not raised: a retry cannot fix it, and raising would
loop. Anything that may pass (the store unreachable) is raised so Lambda retries it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from fireline.errors import MalformedEvent, UnrecognisedEvent
from handlers._runtime import fireline, knows_its_account, logger, metrics, publish_metrics


@logger.inject_lambda_context(clear_state=True)
@knows_its_account
@publish_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        result = fireline().handle_event(event)
    except (UnrecognisedEvent, MalformedEvent) as exc:
        logger.error("event refused", extra={"refusal": exc.to_dict()})
        metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count, value=1)
        return {"incidents": [], "error": exc.to_dict()}
    if result.get("refused"):
        metrics.add_metric(name="EventsRefused", unit=MetricUnit.Count,
                           value=len(result["refused"]))
    # IncidentsOpened (by severity), playbook runs and times: fireline.metrics, per incident.
    metrics.add_metric(name="AlarmsHandled", unit=MetricUnit.Count,
                       value=len(result["incidents"]))
    return result
