"""The alarm's metric as a small chart around the state change, for the thread.

CloudWatch draws it (`GetMetricWidgetImage`): the alarm's metric (or its metric-math
expressions) from an hour before the state change to a little after, the threshold as a
line and the state change marked, so a reader sees the spike without opening the console.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.alarm import AlarmEvent, MetricRef
from fireline.aws import describe_aws_error, error_code
from fireline.enrich.base import Enrichment, EnrichmentContext, Finding, clock_time
from fireline.errors import EnrichmentSkipped
from fireline.notify import Attachment
from fireline.timestamps import iso

BEFORE = timedelta(hours=1)
AFTER = timedelta(minutes=15)
WIDTH, HEIGHT = 600, 300  # small: a phone shows it whole
# The widget's own default is 300 s; a minute shows a short spike as one.
DEFAULT_PERIOD = 60
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MetricPicture(Enrichment):
    name = "metric"
    title = "metric chart"
    services = ("cloudwatch",)

    def applies(self, alarm: AlarmEvent) -> bool:
        # A composite alarm has no metric of its own to draw.
        return alarm.kind != "composite" and bool(
            (alarm.namespace and alarm.metric_name) or any(m.expression for m in alarm.metrics))

    def gather(self, ctx: EnrichmentContext) -> Finding:
        alarm = ctx.alarm
        widget = metric_widget(alarm, end=min(alarm.state_changed_at + AFTER, ctx.clock()))
        try:
            image = ctx.clients("cloudwatch").get_metric_widget_image(
                MetricWidget=json.dumps(widget), OutputFormat="png")["MetricWidgetImage"]
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in _DENIED:
                raise EnrichmentSkipped(f"{self.title} skipped: not permitted (grant "
                                        "cloudwatch:GetMetricWidgetImage)") from exc
            raise EnrichmentSkipped(
                f"{self.title} skipped: "
                f"{describe_aws_error('cloudwatch:GetMetricWidgetImage', exc).message}"
            ) from exc
        if not image:
            raise EnrichmentSkipped(f"{self.title} skipped: CloudWatch drew nothing")
        what = alarm.metric_name or "the alarm's expression"
        text = (f"{self.title}: {what} from {widget['start'][11:16]}Z to {widget['end'][11:16]}Z; "
                f"the state change at {clock_time(alarm.state_changed_at)} is marked")
        return Finding(enrichment=self.name, text=text, attachment=Attachment(
            filename=f"{_UNSAFE.sub('-', alarm.alarm_name)[:80] or 'alarm'}.png",
            title=f"{alarm.alarm_name} around {clock_time(alarm.state_changed_at)}",
            content=bytes(image)))


def metric_widget(alarm: AlarmEvent, *, end: Any) -> dict[str, Any]:
    """The widget definition CloudWatch draws (the dashboard widget JSON)."""
    start = alarm.state_changed_at - BEFORE
    widget: dict[str, Any] = {
        "title": alarm.alarm_name[:100],
        "view": "timeSeries",
        "stacked": False,
        "width": WIDTH,
        "height": HEIGHT,
        "start": iso(start),
        "end": iso(max(end, alarm.state_changed_at)),
        "metrics": _metrics(alarm),
        "annotations": {"vertical": [{"label": alarm.state, "value": iso(alarm.state_changed_at)}]},
        "legend": {"position": "bottom"},
    }
    if alarm.region:
        widget["region"] = alarm.region
    if alarm.threshold is not None:
        widget["annotations"]["horizontal"] = [{"label": "threshold", "value": alarm.threshold}]
    return widget


def _metrics(alarm: AlarmEvent) -> list[list[Any]]:
    if not any(m.expression for m in alarm.metrics) and len(alarm.metrics) <= 1:
        # One metric: the alarm's own, drawn with its statistic and period.
        single = alarm.metrics[0] if alarm.metrics else None
        options: dict[str, Any] = {"period": (single.period if single else None)
                                   or DEFAULT_PERIOD}
        if alarm.statistic:
            options["stat"] = _stat(alarm.statistic)
        return [_metric_row(alarm.namespace or "", alarm.metric_name or "", alarm.dimensions,
                            options)]
    rows = []
    for metric in alarm.metrics:
        # What the alarm evaluates is shown; its inputs only when they are what it evaluates.
        visible = metric.return_data is not False
        if metric.expression:
            rows.append([{"expression": metric.expression, "id": _id(metric),
                          "label": metric.label or metric.id or "expression",
                          "visible": visible}])
        elif metric.namespace and metric.name:
            options = {"id": _id(metric), "visible": visible,
                       "period": metric.period or DEFAULT_PERIOD}
            if metric.stat:
                options["stat"] = _stat(metric.stat)
            if metric.label:
                options["label"] = metric.label
            rows.append(_metric_row(metric.namespace, metric.name, metric.dimensions, options))
    return rows


# SNS notifications name statistics in capitals (SUM, SAMPLE_COUNT); widgets want Sum.
_STATISTICS = {"SAMPLE_COUNT": "SampleCount", "SAMPLECOUNT": "SampleCount",
               "AVERAGE": "Average", "SUM": "Sum", "MINIMUM": "Minimum", "MAXIMUM": "Maximum"}


def _stat(statistic: str) -> str:
    return _STATISTICS.get(statistic.upper(), statistic)


def _metric_row(namespace: str, name: str, dimensions: dict[str, str],
                options: dict[str, Any]) -> list[Any]:
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options]


def _id(metric: MetricRef) -> str:
    # Widget ids must start with a lowercase letter.
    candidate = (metric.id or "m").strip()
    return candidate if candidate[:1].islower() else f"m{candidate}"
