"""What changed: CloudTrail's management events on the alarm's resources in the hour before
it fired, newest first, and for a function the publish times of its latest versions.

The first question on every incident is "what changed?"; this answers it before a human
asks. Each of the two parts stands alone: CloudTrail not permitted (or not there) still
leaves the versions, and the other way round.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from fireline.alarm import AlarmEvent
from fireline.aws import describe_aws_error, error_code
from fireline.enrich.base import (
    RESOURCE_DIMENSIONS,
    Enrichment,
    EnrichmentContext,
    Finding,
    before,
    clock_time,
    resources,
)
from fireline.errors import EnrichmentSkipped
from fireline.timestamps import as_utc, parse_aws_time

log = logging.getLogger(__name__)

LOOKBACK = timedelta(hours=1)
# CloudTrail answers LookupEvents at 2 requests a second per account and region: a few
# resources, a few pages each, is all an incident can spend.
MAX_RESOURCES = 3
MAX_PAGES = 3
PAGE_SIZE = 50
MAX_SHOWN = 8
MAX_VERSIONS_SHOWN = 3
# ListVersionsByFunction answers oldest first; a function with thousands of versions is
# not worth more than this many pages to find its newest.
MAX_VERSION_PAGES = 10
# Lambda's CloudTrail names carry the API version (UpdateFunctionCode20150331v2), as do
# some other services'; the reader wants the operation.
_API_VERSION = re.compile(r"(?:\d{4}_?\d{2}_?\d{2})(?:v\d+)?$")
_READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Head", "BatchGet", "Search", "Query",
                  "Scan", "Test", "Validate", "Estimate", "Preview")
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class Change(BaseModel):
    """One CloudTrail management event, as the thread shows it."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    name: str
    at: datetime
    who: str
    resource: str
    detail: str = ""


class Version(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    published_at: datetime
    description: str = ""


class RecentChanges(Enrichment):
    name = "changes"
    title = "what changed"
    services = ("cloudtrail", "lambda")

    def applies(self, alarm: AlarmEvent) -> bool:
        return bool(resources(alarm))

    def gather(self, ctx: EnrichmentContext) -> Finding:
        alarm = ctx.alarm
        named = resources(alarm)[:MAX_RESOURCES]
        until = alarm.state_changed_at
        subject = ", ".join(f"{RESOURCE_DIMENSIONS[name]} {value}" for name, value in named)
        problems: list[str] = []
        trail: list[Change] | None = None
        try:
            trail = self._lookup(ctx, [value for _, value in named], until - LOOKBACK, until)
        except Exception as exc:  # one part failing leaves the other
            problems.append(f"CloudTrail not read: {_why(exc, 'cloudtrail:LookupEvents')}")
        function = next((value for name, value in named if name == "FunctionName"), None)
        versions: list[Version] | None = None
        if function:
            try:
                versions = self._versions(ctx, function)
            except Exception as exc:
                problems.append(f"versions of {function} not read: "
                                f"{_why(exc, 'lambda:ListVersionsByFunction')}")
        if trail is None and versions is None:
            raise EnrichmentSkipped(f"{self.title}: nothing could be read; "
                                    + "; ".join(problems))

        lines: list[str] = []
        if trail:
            lines.append(f"CloudTrail, the hour before {clock_time(until)} (newest first):")
            lines += [_change_line(change, until) for change in trail[:MAX_SHOWN]]
            if len(trail) > MAX_SHOWN:
                lines.append(f"… and {len(trail) - MAX_SHOWN} earlier")
        lines += problems
        if versions:
            lines.append(f"Latest published versions of {function}:")
            lines += [_version_line(version, until) for version in versions]
        elif versions is not None:
            lines.append(f"{function} has no published version")

        if trail is None:
            text = f"{self.title}: {subject} (CloudTrail not read)"
        elif trail:
            text = (f"{self.title}: {len(trail)} change{'' if len(trail) == 1 else 's'} to "
                    f"{subject} in the hour before the alarm")
        else:
            text = (f"{self.title}: CloudTrail records no change to {subject} in the hour "
                    f"before the alarm ({clock_time(until)})")
        return Finding(enrichment=self.name, text=text, lines=lines)

    # --- CloudTrail -----------------------------------------------------------------------

    def _lookup(self, ctx: EnrichmentContext, names: list[str], start: datetime,
                end: datetime) -> list[Change]:
        cloudtrail = ctx.clients("cloudtrail")
        found: dict[str, Change] = {}
        for name in names:
            # One attribute per call is all LookupEvents takes; a resource name finds the
            # events whose request named it (CloudTrail's own resource list).
            pages = cloudtrail.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}],
                StartTime=start, EndTime=end,
                PaginationConfig={"MaxItems": PAGE_SIZE * MAX_PAGES, "PageSize": PAGE_SIZE})
            for page in pages:
                for event in page.get("Events", []):
                    change = _change(event, name)
                    if change is not None:
                        found.setdefault(change.event_id, change)
                if ctx.seconds_left() <= 0:
                    break
        return sorted(found.values(), key=lambda change: change.at, reverse=True)

    # --- Lambda versions ------------------------------------------------------------------

    def _versions(self, ctx: EnrichmentContext, function: str) -> list[Version]:
        lam = ctx.clients("lambda")
        found: list[Version] = []
        pages = lam.get_paginator("list_versions_by_function").paginate(
            FunctionName=function, PaginationConfig={"MaxItems": 50 * MAX_VERSION_PAGES})
        for page in pages:
            for item in page.get("Versions", []):
                if item.get("Version") in (None, "$LATEST") or not item.get("LastModified"):
                    continue
                found.append(Version(version=str(item["Version"]),
                                     published_at=parse_aws_time(item["LastModified"]),
                                     description=str(item.get("Description") or "")))
            if ctx.seconds_left() <= 0:
                break
        found.sort(key=lambda v: (v.published_at, _number(v.version)), reverse=True)
        return found[:MAX_VERSIONS_SHOWN]


class _Detail(BaseModel):
    """Where an event keeps the one fact a reader wants (the version an alias moved to)."""

    source: str = Field(pattern="^(requestParameters|responseElements)$")
    key: str
    label: str


_DETAILS = {
    "UpdateAlias": _Detail(source="requestParameters", key="functionVersion",
                           label="to version"),
    "CreateAlias": _Detail(source="requestParameters", key="functionVersion",
                           label="on version"),
    "PublishVersion": _Detail(source="responseElements", key="version", label="version"),
    "CreateDeployment": _Detail(source="requestParameters", key="stageName", label="stage"),
    "ModifyDBCluster": _Detail(source="requestParameters", key="applyImmediately",
                               label="apply immediately"),
}


def _change(event: dict[str, Any], resource: str) -> Change | None:
    raw_name = str(event.get("EventName") or "")
    name = _API_VERSION.sub("", raw_name) or raw_name
    record = _record(event)
    read_only = event.get("ReadOnly", record.get("readOnly"))
    if str(read_only).lower() == "true" or (read_only is None and name.startswith(_READ_PREFIXES)):
        return None  # a read changes nothing
    at = event.get("EventTime") or record.get("eventTime")
    if at is None:
        return None
    return Change(event_id=str(event.get("EventId") or record.get("eventID") or id(event)),
                  name=name, at=as_utc(at) if isinstance(at, datetime) else parse_aws_time(at),
                  who=_who(event, record), resource=resource, detail=_detail(name, record))


def _record(event: dict[str, Any]) -> dict[str, Any]:
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except (TypeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _who(event: dict[str, Any], record: dict[str, Any]) -> str:
    if event.get("Username"):
        return str(event["Username"])
    identity = record.get("userIdentity") or {}
    arn = str(identity.get("arn") or "")
    # An assumed role's ARN ends with the session name: usually the person or pipeline.
    return arn.rsplit("/", 1)[-1] if arn else str(identity.get("type") or "unknown")


def _detail(name: str, record: dict[str, Any]) -> str:
    if name == "UpdateFunctionConfiguration":
        keys = sorted(set(record.get("requestParameters") or {}) - {"functionName"})
        return f"({', '.join(keys)})" if keys else ""
    spec = _DETAILS.get(name)
    if spec is None:
        return ""
    value = (record.get(spec.source) or {}).get(spec.key)
    return f"{spec.label} {value}" if value not in (None, "") else ""


def _change_line(change: Change, alarm_at: datetime) -> str:
    detail = f" {change.detail}" if change.detail else ""
    return (f"• {clock_time(change.at)} {change.name} {change.resource}{detail} by "
            f"{change.who} ({before(change.at, alarm_at)})")


def _version_line(version: Version, alarm_at: datetime) -> str:
    described = f" · {version.description}" if version.description else ""
    return (f"• version {version.version} published {clock_time(version.published_at)} "
            f"({before(version.published_at, alarm_at)} the alarm){described}")


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


def _why(exc: BaseException, permission: str) -> str:
    if isinstance(exc, ClientError | BotoCoreError):
        if error_code(exc) in _DENIED:
            return f"not permitted (grant {permission})"
        return describe_aws_error(permission, exc).message
    log.info("%s failed", permission, exc_info=True)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
