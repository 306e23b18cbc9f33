"""CloudWatch metrics (EMF) about incidents, from what one handler invocation changed.

A handler passes the incident as it was before its work (None when it opened it) and as
it is after; the difference says what to count:

  IncidentsOpened   Count    1 per incident opened, dimension `severity` (own EMF blob)
  PlaybookRuns      Count    playbook_state became "done" or "failed"
  PlaybookFailures  Count    playbook_state became "failed"
  TimeToMitigate    Seconds  mitigated_at became set: opened_at to mitigated_at
  TimeToResolve     Seconds  resolved_at became set: opened_at to resolved_at

All but the first go into the caller's `Metrics`, flushed with the invocation's other
metrics (handlers._runtime.publish_metrics). Powertools dimensions hold for a whole flush,
so the severity-dimensioned metric is written on its own, at once, by an `EphemeralMetrics`
carrying the same namespace, service and default dimensions. Not `single_metric`: it
prints even when POWERTOOLS_METRICS_DISABLED is set (local runs print JSON to stdout),
whereas `EphemeralMetrics.flush_metrics` honours it as `Metrics` does.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import EphemeralMetrics, Metrics, MetricUnit

from fireline.incidents import Incident

_FINISHED = {"done", "failed"}


def record_incident_metrics(metrics: Metrics, before: Incident | None, after: Incident) -> None:
    """Add the metrics for what changed from `before` to `after` (None: opened now)."""
    if before is None:
        _opened(metrics, after)
    was = before.playbook_state if before is not None else "none"
    if after.playbook_state in _FINISHED and after.playbook_state != was:
        metrics.add_metric(name="PlaybookRuns", unit=MetricUnit.Count, value=1)
        if after.playbook_state == "failed":
            metrics.add_metric(name="PlaybookFailures", unit=MetricUnit.Count, value=1)
    for name, field in (("TimeToMitigate", "mitigated_at"), ("TimeToResolve", "resolved_at")):
        seconds = _became_set(before, after, field)
        if seconds is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)


def _opened(metrics: Metrics, incident: Incident) -> None:
    # Read the shared object's settings now, so a namespace set after import is honoured.
    opened = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service,
                              default_dimensions=dict(metrics.default_dimensions))
    opened.add_dimension(name="severity", value=str(incident.severity))
    opened.add_metric(name="IncidentsOpened", unit=MetricUnit.Count, value=1)
    opened.flush_metrics()


def _became_set(before: Incident | None, after: Incident, field: str) -> float | None:
    """Seconds from opening to `field`, if this invocation set it (clock skew counts as 0)."""
    moment = getattr(after, field, None)
    if not isinstance(moment, datetime):
        return None
    if before is not None and getattr(before, field, None) is not None:
        return None
    return max(0.0, (moment - after.opened_at).total_seconds())
