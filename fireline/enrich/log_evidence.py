"""Log evidence for a Lambda alarm: its errors around the state change, grouped by message.

A CloudWatch Logs Insights query over `/aws/lambda/<function>` for the alarm's window,
the five most frequent errors with one sample line each, secret-looking strings redacted
(the thread has more readers than the logs). Bounded in time: the query is polled until
the deadline, then stopped, so a slow query costs its budget and nothing more.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from fireline.alarm import AlarmEvent
from fireline.aws import describe_aws_error, error_code
from fireline.enrich.base import (
    Enrichment,
    EnrichmentContext,
    Finding,
    alarm_dimensions,
    clock_time,
)
from fireline.errors import EnrichmentSkipped
from fireline.redact import redact

TOP = 5
SAMPLE_LIMIT = 240
# The alarm's evaluation window is not in its notification; this covers the usual ones
# (1-5 datapoints of 1-5 minutes) and a little after the state change.
BEFORE = timedelta(minutes=15)
AFTER = timedelta(minutes=2)
# Left for stopping the query and saying so before the runner's budget runs out.
STOP_MARGIN_SECONDS = 0.5
FIRST_POLL_SECONDS = 0.25
MAX_POLL_SECONDS = 1.0
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_FINISHED = {"Complete", "Failed", "Cancelled", "Timeout", "Unknown"}

# Lambda writes an error as "[ERROR] KeyError: 'cart'", a timeout as "Task timed out after
# 3.00 seconds", a crash as "Runtime exited with error"; the part from the error's name on
# is what repeats across requests, so that is what the errors are grouped by.
_ERROR_NAME = r"(?:[A-Za-z_][\w.]*(?:Error|Exception)|Task timed out|Runtime exited)"
QUERY = "\n".join([
    "fields @timestamp, @message",
    "| filter @message like /(?i)(error|exception|traceback|task timed out|runtime exited)/",
    f"| parse @message /(?<error>{_ERROR_NAME}[^\\r\\n]{{0,160}})/",
    "| stats count(*) as hits, latest(@message) as sample by error",
    "| sort hits desc",
    f"| limit {TOP}",
])


class ErrorGroup(BaseModel):
    """One row of the query's answer."""

    model_config = ConfigDict(frozen=True)

    error: str = ""
    hits: int = Field(default=0, ge=0)
    sample: str = ""


class LogEvidence(Enrichment):
    name = "logs"
    title = "log evidence"
    services = ("logs",)

    def applies(self, alarm: AlarmEvent) -> bool:
        return (alarm.namespace == "AWS/Lambda"
                and bool(alarm_dimensions(alarm).get("FunctionName")))

    def gather(self, ctx: EnrichmentContext) -> Finding:
        function = alarm_dimensions(ctx.alarm)["FunctionName"]
        group = f"/aws/lambda/{function}"
        start = ctx.alarm.state_changed_at - BEFORE
        end = min(ctx.alarm.state_changed_at + AFTER, ctx.clock())
        logs = ctx.clients("logs")
        try:
            query_id = logs.start_query(
                logGroupName=group, startTime=int(start.timestamp()),
                endTime=int(end.timestamp()) + 1, queryString=QUERY, limit=TOP)["queryId"]
        except (ClientError, BotoCoreError) as exc:
            raise EnrichmentSkipped(self._refusal(exc, group)) from exc
        rows = self._wait(ctx, logs, query_id)
        window = f"{group}, {clock_time(start)} to {clock_time(end)}"
        groups = [_group(row) for row in rows][:TOP]
        groups = [g for g in groups if g.hits > 0]
        if not groups:
            return Finding(enrichment=self.name,
                           text=f"{self.title}: no error lines in {window}")
        total = sum(g.hits for g in groups)
        lines = [f"Logs Insights, {window} (top {len(groups)} by count):"]
        for g in groups:
            lines.append(f"• {g.hits} x {redact(g.error) or '(no error name)'}")
            if g.sample:
                lines.append(f"  e.g. {_sample(g.sample)}")
        return Finding(enrichment=self.name,
                       text=f"{self.title}: {total} error lines in {len(groups)} "
                            f"group{'' if len(groups) == 1 else 's'} around the alarm",
                       lines=lines)

    def _wait(self, ctx: EnrichmentContext, logs: Any,
              query_id: str) -> list[list[dict[str, str]]]:
        pause = FIRST_POLL_SECONDS
        while True:
            try:
                answer = logs.get_query_results(queryId=query_id)
            except (ClientError, BotoCoreError) as exc:
                raise EnrichmentSkipped(
                    f"{self.title}: {describe_aws_error('logs:GetQueryResults', exc).message}"
                ) from exc
            status = str(answer.get("status"))
            if status == "Complete":
                return list(answer.get("results") or [])
            if status in _FINISHED:
                raise EnrichmentSkipped(f"{self.title}: the Logs Insights query ended {status}")
            left = ctx.seconds_left() - STOP_MARGIN_SECONDS
            if left <= 0:
                self._stop(logs, query_id)
                raise EnrichmentSkipped(f"{self.title}: the Logs Insights query had not "
                                        "finished within the budget; stopped it")
            ctx.sleep(min(pause, left))
            pause = min(pause * 2, MAX_POLL_SECONDS)

    @staticmethod
    def _stop(logs: Any, query_id: str) -> None:
        # A query left running costs scanned bytes; nothing else depends on stopping it.
        with contextlib.suppress(ClientError, BotoCoreError):
            logs.stop_query(queryId=query_id)

    def _refusal(self, exc: ClientError | BotoCoreError, group: str) -> str:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return f"{self.title} skipped: no log group {group}"
        if code in _DENIED:
            return (f"{self.title} skipped: not permitted to query {group} (grant "
                    "logs:StartQuery and logs:GetQueryResults)")
        return f"{self.title} skipped: {describe_aws_error('logs:StartQuery', exc).message}"


def _group(row: list[dict[str, str]]) -> ErrorGroup:
    fields = {item.get("field"): item.get("value") for item in row if isinstance(item, dict)}
    try:
        hits = int(float(fields.get("hits") or 0))
    except ValueError:
        hits = 0
    return ErrorGroup(error=str(fields.get("error") or "").strip(), hits=hits,
                      sample=str(fields.get("sample") or ""))


def _sample(line: str) -> str:
    flat = " ".join(redact(line).split())
    return flat if len(flat) <= SAMPLE_LIMIT else flat[: SAMPLE_LIMIT - 1] + "…"
