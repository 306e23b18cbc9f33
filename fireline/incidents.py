"""The incident store: one DynamoDB table holding incidents, their timelines and marks.

Items (pk / sk):
  INCIDENT#<id>  / META                 the incident document, versioned (optimistic locking)
  INCIDENT#<id>  / TL#<time>#<entry>    one timeline entry each
  INCIDENT#<id>  / TL#once#<key>        a timeline entry written once per key (a delivery)
  ALARM#<key>    / OPEN                 which incident an alarm currently belongs to
  ALARM#<key>    / LAST                 the alarm's last closed incident, and the latest state
                                        change it knew (for re-opening, or not)
  RESOURCE#<arn> / MARK#<kind>#<value>  facts about resources (e.g. a version known bad)
  AUDIT#<day>    / TL#<time>#<entry>    what was refused outside any incident (Slack)
  LOCK#<resource>/ LOCK                 which incident acts on a resource now (expires)
  RESOURCE#<arn> / ACTION#<time>#<inc>  an automatic action taken on it (budget, cooldown)

Opening is decided by one conditional write (the alarm's pointer), so concurrent
deliveries of one alarm give one incident; the losers attach to it. No multi-item
transactions: every write is a single conditional item write.

A pointer is removed only after its incident is resolved (`close_alarm`), so an incident
that is not resolved is the one its alarm's pointer names. The store remembers, per
process, which incident each alarm's pointer named last: a repeat delivery (most of a storm)
then reads the incident alone, and a resolved one sends it back to the pointer.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from fireline.aws import ClientFactory, describe_aws_error
from fireline.decision import ApprovalMode, Severity
from fireline.errors import IncidentNotFound, StoreUnavailable
from fireline.timestamps import iso, utc_now

IncidentStatus = Literal[
    "open", "mitigating", "mitigated", "awaiting-approval", "monitoring", "failed", "resolved",
    "escalated",
]
PlaybookState = Literal[
    "none", "pending", "running", "done", "failed", "awaiting-approval", "monitored", "rejected"
]

INDEX_BY_TIME = "by_time"
# DynamoDB's TTL attribute (epoch seconds; the template enables it). Only bookkeeping that
# outlives its use carries it: resource locks and the action records that the budget and the
# cooldown read. Incidents, their timelines and the audit log never expire.
TTL_ATTRIBUTE = "ttl"
BOOKKEEPING_KEPT = timedelta(days=7)
# How long a delivery that lost the race to open waits for the opener's incident document.
# Generous (3 s in all): taking the opening over is the last resort, for an opener that
# died, not one whose write was slowed by throttling.
_OPENER_GRACE_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
_MAX_UPDATE_ATTEMPTS = 8
# Alarms whose open incident a process remembers; beyond that it starts afresh (a process
# sees a few hundred alarms a day; the pointer is the truth, this only saves a read).
_REMEMBERED_ALARMS = 4096


class SlackThread(BaseModel):
    channel: str
    ts: str


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str = Field(default_factory=lambda: secrets.token_hex(6))
    at: datetime = Field(default_factory=utc_now)
    actor: str = "fireline"
    kind: str
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class ActionRecord(BaseModel):
    """An action on a resource, as the budget and the cooldown count them."""

    at: datetime
    playbook: str
    incident_id: str
    automatic: bool = True


class ChainLink(BaseModel):
    """One playbook of a chain, and how it went."""

    playbook: str
    params: dict[str, Any] = Field(default_factory=dict)
    state: Literal["pending", "done", "failed", "not-run"] = "pending"
    summary: str = ""
    outcome: dict[str, Any] | None = None


class Incident(BaseModel):
    incident_id: str
    alarm_key: str | None = None
    alarm_name: str
    alarm_state: str = "ALARM"
    title: str
    reason: str = ""
    account_id: str | None = None
    region: str | None = None
    severity: Severity
    status: IncidentStatus = "open"
    rule: str | None = None
    reasons: list[str] = Field(default_factory=list)
    playbook: str | None = None  # the one running now (of the chain, if there is one)
    params: dict[str, Any] = Field(default_factory=dict)
    chain: list[ChainLink] = Field(default_factory=list)
    chain_index: int = 0
    approval: ApprovalMode | None = None
    playbook_state: PlaybookState = "none"
    requested_by: str = "alarm"
    channel: str | None = None
    slack: SlackThread | None = None
    # Slack missed the thread's updates from this moment on (a post refused or skipped
    # while Slack was rate limiting or down), and which timeline entries it missed: the
    # next post first catches the thread up with exactly those.
    slack_behind: datetime | None = None
    slack_missed: list[str] = Field(default_factory=list)
    # An invocation is posting that catch-up until then; the mark stays on until it has,
    # so a catch-up whose process died is taken up again once this has passed.
    slack_catching_up_until: datetime | None = None
    plan: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    # The run's position: execute's next step and what its steps recorded (resumable).
    step_index: int = 0
    progress: dict[str, Any] = Field(default_factory=dict)
    # Whoever drives the run holds it until then; a crashed driver's lease runs out.
    lease_until: datetime | None = None
    # A step asked to be called again at this time; it first ran at step_started_at.
    wait_until: datetime | None = None
    step_started_at: datetime | None = None
    alarm_changed_at: datetime | None = None
    approved_by: str | None = None
    rejected_by: str | None = None
    decided_at: datetime | None = None
    # The state machine's execution driving the run, and its approval task token.
    execution_arn: str | None = None
    task_token: str | None = None
    # An undo of the outcome: who asked, when, and what it did.
    undone_by: str | None = None
    undone_at: datetime | None = None
    undo_outcome: dict[str, Any] | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    # After the action: the alarm is watched until watch_until for its return to OK.
    watch_until: datetime | None = None
    recovery_window_minutes: int = 10
    on_no_recovery: Literal["escalate", "undo"] = "escalate"
    mitigated_at: datetime | None = None
    escalated_at: datetime | None = None
    reopened: int = 0
    # The resources this run holds locks on while it acts.
    acting_on: list[str] = Field(default_factory=list)
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    opened_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    version: int = 0

    def alarm_state_since(self) -> str | None:
        """The alarm's state and since when (the latest change the incident was told of),
        as every view shows it; None for a manual run, which has no alarm."""
        if self.alarm_key is None:
            return None
        if self.alarm_changed_at is None:
            return self.alarm_state
        return f"{self.alarm_state} since {iso(self.alarm_changed_at)}"

    def alarm_line(self) -> str:
        """The alarm and its state, for a person reading the incident (the CLI, the
        post-mortem draft)."""
        state = self.alarm_state_since()
        return f"{self.alarm_name} ({state})" if state else "none (run by hand)"

    def summary(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "alarm": self.alarm_name,
            "severity": self.severity,
            "status": self.status,
            "playbook": self.playbook,
            "playbook_state": self.playbook_state,
            "opened_at": iso(self.opened_at),
        }


class ClosedIncident(NamedTuple):
    """An alarm's last closed incident, as its alarm's items keep it."""

    incident_id: str
    closed_at: datetime
    # The latest state change of the alarm it was told of (None: closed before it was kept).
    alarm_changed_at: datetime | None


@dataclass(frozen=True)
class AlarmRecord:
    """What the table says of an alarm: its open incident, and its last closed one."""

    open: Incident | None = None
    last_closed: ClosedIncident | None = None


def new_incident_id(now: datetime) -> str:
    return f"INC-{now:%Y%m%d}-{secrets.token_hex(3)}"


class IncidentStore:
    """Incidents in DynamoDB. All writes are conditional; nothing is blindly overwritten."""

    def __init__(self, table: str, clients: ClientFactory, clock: Callable[[], datetime]) -> None:
        self.table = table
        self._clients = clients
        self._clock = clock
        self._open_ids: dict[str, str] = {}  # alarm key -> the incident its pointer named

    @property
    def _ddb(self) -> Any:
        return self._clients("dynamodb")

    # --- incidents ------------------------------------------------------------------------

    def open_or_attach(self, incident: Incident) -> tuple[Incident, bool]:
        """Open `incident`, or return the open incident of the same alarm (and False).

        The alarm's pointer is the lock: one conditional put decides the opener. The
        incident document follows it; a reader that finds the pointer first waits for the
        document, and takes over the opening if the opener died in between.
        """
        assert incident.alarm_key, "alarm incidents need an alarm key"
        pointer = {
            "pk": _s(f"ALARM#{incident.alarm_key}"),
            "sk": _s("OPEN"),
            "incident_id": _s(incident.incident_id),
        }
        try:
            self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table,
                       Item=pointer, ConditionExpression="attribute_not_exists(pk)",
                       conditional=True)
        except _ConditionFailed:
            return self._remember(self._attach(incident))
        try:
            return self._remember((self._put_new(incident, conditional=True), True))
        except _ConditionFailed:
            # We were so slow that a waiting delivery took the opening over: it opened.
            return self.get(incident.incident_id), False

    def _attach(self, candidate: Incident) -> tuple[Incident, bool]:
        for pause in (*_OPENER_GRACE_SECONDS, None):
            pointer = self._get_item(f"ALARM#{candidate.alarm_key}", "OPEN")
            if not pointer:
                # The open incident closed in between: this delivery opens a new one.
                return self.open_or_attach(candidate)
            incident_id = pointer["incident_id"]["S"]
            try:
                return self.get(incident_id), False
            except IncidentNotFound:
                if pause is not None:
                    time.sleep(pause)
        # The opener holds the pointer but never wrote the incident: finish its work.
        adopted = candidate.model_copy(update={"incident_id": incident_id})
        try:
            return self._put_new(adopted, conditional=True), True
        except _ConditionFailed:
            return self.get(incident_id), False

    def _put_new(self, incident: Incident, *, conditional: bool = False) -> Incident:
        self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table,
                   Item=self._incident_item(incident),
                   ConditionExpression="attribute_not_exists(pk)", conditional=conditional)
        return incident

    def create(self, incident: Incident) -> Incident:
        """Create an incident that belongs to no alarm (manual runs)."""
        return self._put_new(incident)

    def get(self, incident_id: str) -> Incident:
        item = self._get_item(f"INCIDENT#{incident_id}", "META")
        if not item:
            raise IncidentNotFound(f"no incident {incident_id}", incident_id=incident_id)
        return _incident_from_item(item)

    def find_open(self, alarm_key: str) -> Incident | None:
        return self.lookup(alarm_key).open

    def lookup(self, alarm_key: str) -> AlarmRecord:
        """The alarm's open incident, or (when it has none) its last closed one.

        One read when this process knows the open incident (the incident itself), else
        two: the alarm's items in one query, then its open incident."""
        known = self._open_ids.get(alarm_key)
        if known is not None:
            with contextlib.suppress(IncidentNotFound):
                incident = self.get(known)
                if incident.status != "resolved":
                    return AlarmRecord(open=incident)
            self._open_ids.pop(alarm_key, None)
        items = {item["sk"]["S"]: item for item in self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"ALARM#{alarm_key}")})}
        last = items.get("LAST")
        last_closed = None
        if last is not None:
            from fireline.timestamps import parse_aws_time

            changed = last.get("alarm_changed_at")
            last_closed = ClosedIncident(
                last["incident_id"]["S"], parse_aws_time(last["closed_at"]["S"]),
                parse_aws_time(changed["S"]) if changed else None)
        pointer = items.get("OPEN")
        if pointer is None:
            return AlarmRecord(last_closed=last_closed)
        try:
            incident = self.get(pointer["incident_id"]["S"])
        except IncidentNotFound:
            # Being opened right now; open_or_attach waits for it.
            return AlarmRecord(last_closed=last_closed)
        self._remember((incident, False))
        return AlarmRecord(open=incident, last_closed=last_closed)

    def _remember(self, found: tuple[Incident, bool]) -> tuple[Incident, bool]:
        """Note the alarm's open incident (`found`: it, and whether we opened it)."""
        incident = found[0]
        if incident.alarm_key:
            if len(self._open_ids) >= _REMEMBERED_ALARMS:
                self._open_ids.clear()
            self._open_ids[incident.alarm_key] = incident.incident_id
        return found

    def update(self, incident_id: str, change: Callable[[Incident], Incident | None], *,
               known: Incident | None = None) -> Incident:
        """Change the incident and write it back if nobody wrote in between; on a conflict,
        read again and retry. `known` is the caller's copy, tried first to save a read.

        `change` returns the new incident, or None to leave it as it is.
        """
        current = known
        for _ in range(_MAX_UPDATE_ATTEMPTS):
            if current is None:
                current = self.get(incident_id)
            changed = change(current.model_copy(deep=True))
            if changed is None:
                return current
            changed.version = current.version + 1
            changed.updated_at = self._clock()
            try:
                self._call(
                    "dynamodb:PutItem",
                    self._ddb.put_item,
                    TableName=self.table,
                    Item=self._incident_item(changed),
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":v": {"N": str(current.version)}},
                    conditional=True,
                )
                return changed
            except _ConditionFailed:
                current = None
        raise StoreUnavailable(
            f"incident {incident_id} kept changing under us; gave up after "
            f"{_MAX_UPDATE_ATTEMPTS} attempts", incident_id=incident_id)

    def close_alarm(self, incident: Incident) -> bool:
        """Let the alarm open a new incident next time: remove its pointer, if it is still
        this incident's (one conditional delete), and remember it as the alarm's last."""
        if not incident.alarm_key:
            return False
        self._open_ids.pop(incident.alarm_key, None)
        last = {"pk": _s(f"ALARM#{incident.alarm_key}"), "sk": _s("LAST"),
                "incident_id": _s(incident.incident_id),
                "closed_at": _s(iso(incident.resolved_at or self._clock()))}
        if incident.alarm_changed_at:
            last["alarm_changed_at"] = _s(iso(incident.alarm_changed_at))
        self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item=last)
        try:
            self._call(
                "dynamodb:DeleteItem", self._ddb.delete_item, TableName=self.table,
                Key={"pk": _s(f"ALARM#{incident.alarm_key}"), "sk": _s("OPEN")},
                ConditionExpression="incident_id = :id",
                ExpressionAttributeValues={":id": _s(incident.incident_id)}, conditional=True)
            return True
        except _ConditionFailed:
            return False

    def claim_reopen(self, alarm_key: str, incident_id: str) -> bool:
        """Point the alarm at its closed incident again; True for exactly one caller."""
        try:
            self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item={
                "pk": _s(f"ALARM#{alarm_key}"), "sk": _s("OPEN"),
                "incident_id": _s(incident_id)},
                ConditionExpression="attribute_not_exists(pk)", conditional=True)
            return True
        except _ConditionFailed:
            return False

    def claim_playbook(self, incident: Incident, *, expected: PlaybookState = "pending",
                       lease_until: datetime | None = None) -> Incident | None:
        """Move the playbook from `expected` to running: the claimed incident for exactly
        one caller (holding the run's lease until `lease_until`), None for everyone else."""
        claimed = False

        def claim(current: Incident) -> Incident | None:
            nonlocal claimed
            claimed = current.playbook_state == expected
            if not claimed:
                return None
            current.playbook_state = "running"
            current.status = "mitigating"
            current.lease_until = lease_until
            return current

        result = self.update(incident.incident_id, claim, known=incident)
        return result if claimed else None

    def list(self, *, limit: int = 50) -> list[Incident]:
        """Newest first."""
        response = self._call(
            "dynamodb:Query",
            self._ddb.query,
            TableName=self.table,
            IndexName=INDEX_BY_TIME,
            KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": _s("incident")},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_incident_from_item(item) for item in response.get("Items", [])]

    # --- timeline -------------------------------------------------------------------------

    def append(self, incident_id: str, entry: TimelineEntry, *,
               once_key: str | None = None) -> bool:
        """Add a timeline entry; with `once_key`, only the first entry with that key lands."""
        item = {
            "pk": _s(f"INCIDENT#{incident_id}"),
            "sk": _s(f"TL#{entry.at.isoformat()}#{entry.entry_id}"),
            "doc": _s(entry.model_dump_json()),
        }
        if once_key is None:
            self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item=item)
            return True
        # Keyed by the once-key itself, so the first write wins in one conditional put.
        item["sk"] = _s(f"TL#once#{once_key}")
        try:
            self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item=item,
                       ConditionExpression="attribute_not_exists(pk)", conditional=True)
            return True
        except _ConditionFailed:
            return False

    def audit(self, entry: TimelineEntry) -> None:
        """Record something that belongs to no incident (a refused Slack request)."""
        self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item={
            "pk": _s(f"AUDIT#{entry.at:%Y-%m-%d}"),
            "sk": _s(f"TL#{entry.at.isoformat()}#{entry.entry_id}"),
            "doc": _s(entry.model_dump_json()),
        })

    def audit_log(self, day: datetime) -> list[TimelineEntry]:
        return [TimelineEntry.model_validate_json(item["doc"]["S"]) for item in self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(f"AUDIT#{day:%Y-%m-%d}")})]

    def timeline(self, incident_id: str) -> list[TimelineEntry]:
        entries = []
        for item in self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tl)",
            ExpressionAttributeValues={":pk": _s(f"INCIDENT#{incident_id}"), ":tl": _s("TL#")},
        ):
            entries.append(TimelineEntry.model_validate_json(item["doc"]["S"]))
        # Keys order most entries by time already; once-keyed ones need the sort.
        return sorted(entries, key=lambda entry: entry.at)

    # --- marks on resources ---------------------------------------------------------------

    def marks(self, resource: str, kind: str) -> set[str]:
        prefix = f"MARK#{kind}#"
        return {
            item["sk"]["S"][len(prefix):]
            for item in self._query_all(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
                ExpressionAttributeValues={":pk": _s(f"RESOURCE#{resource}"), ":m": _s(prefix)},
            )
        }

    def add_mark(self, resource: str, kind: str, value: str, *, incident_id: str) -> None:
        self._call(
            "dynamodb:PutItem",
            self._ddb.put_item,
            TableName=self.table,
            Item={
                "pk": _s(f"RESOURCE#{resource}"),
                "sk": _s(f"MARK#{kind}#{value}"),
                "incident_id": _s(incident_id),
                "at": _s(iso(self._clock())),
            },
        )

    def remove_mark(self, resource: str, kind: str, value: str) -> None:
        self._call(
            "dynamodb:DeleteItem",
            self._ddb.delete_item,
            TableName=self.table,
            Key={"pk": _s(f"RESOURCE#{resource}"), "sk": _s(f"MARK#{kind}#{value}")},
        )

    # --- locks and the record of actions, per resource ------------------------------------

    def acquire_lock(self, resource: str, incident_id: str, until: datetime) -> str | None:
        """Take the resource for `incident_id` until `until`. None when taken (or already
        ours); otherwise the incident that holds it."""
        now = self._clock()
        try:
            self._call(
                "dynamodb:PutItem", self._ddb.put_item, TableName=self.table,
                Item={"pk": _s(f"LOCK#{resource}"), "sk": _s("LOCK"),
                      "incident_id": _s(incident_id), "expires_at": _s(iso(until)),
                      TTL_ATTRIBUTE: _expiry(until)},
                ConditionExpression="attribute_not_exists(pk) OR incident_id = :me "
                                    "OR expires_at < :now",
                ExpressionAttributeValues={":me": _s(incident_id), ":now": _s(iso(now))},
                conditional=True)
            return None
        except _ConditionFailed:
            item = self._get_item(f"LOCK#{resource}", "LOCK")
            return item["incident_id"]["S"] if item else "another incident"

    def release_lock(self, resource: str, incident_id: str) -> None:
        with contextlib.suppress(_ConditionFailed):  # not ours (any more): nothing to do
            self._call(
                "dynamodb:DeleteItem", self._ddb.delete_item, TableName=self.table,
                Key={"pk": _s(f"LOCK#{resource}"), "sk": _s("LOCK")},
                ConditionExpression="incident_id = :me",
                ExpressionAttributeValues={":me": _s(incident_id)}, conditional=True)

    def record_action(self, resource: str, playbook: str, incident_id: str, *,
                      automatic: bool) -> None:
        at = self._clock()
        self._call("dynamodb:PutItem", self._ddb.put_item, TableName=self.table, Item={
            "pk": _s(f"RESOURCE#{resource}"), "sk": _s(f"ACTION#{iso(at)}#{incident_id}"),
            "playbook": _s(playbook), "incident_id": _s(incident_id), "at": _s(iso(at)),
            TTL_ATTRIBUTE: _expiry(at),
            "automatic": {"BOOL": automatic}})

    def actions(self, resource: str, since: datetime) -> list[ActionRecord]:
        """The actions taken on `resource` since then, oldest first."""
        from fireline.timestamps import parse_aws_time

        items = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={":pk": _s(f"RESOURCE#{resource}"),
                                       ":from": _s(f"ACTION#{iso(since)}"),
                                       ":to": _s("ACTION#~")})
        return [ActionRecord(at=parse_aws_time(i["at"]["S"]), playbook=i["playbook"]["S"],
                             incident_id=i["incident_id"]["S"],
                             automatic=i.get("automatic", {}).get("BOOL", True))
                for i in items]

    # --- the table itself -----------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the table where it is missing (local runs; in AWS the template does)."""
        try:
            self._ddb.describe_table(TableName=self.table)
            return False
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise describe_aws_error("dynamodb:DescribeTable", exc) from exc
        self._ddb.create_table(**table_definition(self.table))
        self._ddb.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return True

    # --- plumbing -------------------------------------------------------------------------

    def _incident_item(self, incident: Incident) -> dict[str, Any]:
        return {
            "pk": _s(f"INCIDENT#{incident.incident_id}"),
            "sk": _s("META"),
            "kind": _s("incident"),
            "opened_at": _s(iso(incident.opened_at)),
            "status": _s(incident.status),
            "playbook_state": _s(incident.playbook_state),
            "version": {"N": str(incident.version)},
            "doc": _s(incident.model_dump_json()),
        }

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self._call("dynamodb:GetItem", self._ddb.get_item, TableName=self.table,
                              Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True)
        return response.get("Item")

    def _query_all(self, **query: Any) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            page = self._call(
                "dynamodb:Query", self._ddb.query, TableName=self.table, ConsistentRead=True,
                **query, **({"ExclusiveStartKey": start} if start else {}))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def _call(self, name: str, method: Callable[..., Any], *, conditional: bool = False,
              **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if conditional and code in {"ConditionalCheckFailedException",
                                        "TransactionCanceledException"}:
                if code == "TransactionCanceledException" and not _cancelled_by_condition(exc):
                    raise describe_aws_error(name, exc) from exc
                raise _ConditionFailed from exc
            if code == "ResourceNotFoundException":
                raise StoreUnavailable(
                    f"incident table {self.table!r} not found: set FIRELINE_TABLE, or create it "
                    "with `fireline init-table`") from exc
            raise StoreUnavailable(str(describe_aws_error(name, exc))) from exc


class _ConditionFailed(Exception):
    """A conditional write lost (internal: callers get a result, not this)."""


def _cancelled_by_condition(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    if not reasons:
        return "ConditionalCheckFailed" in str(exc)
    return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)


def _expiry(at: datetime) -> dict[str, str]:
    return {"N": str(int((at + BOOKKEEPING_KEPT).timestamp()))}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _incident_from_item(item: dict[str, Any]) -> Incident:
    incident = Incident.model_validate_json(item["doc"]["S"])
    incident.version = int(item["version"]["N"])
    return incident


def table_definition(table: str) -> dict[str, Any]:
    """The table's schema; the SAM template declares the same."""
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "opened_at", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": INDEX_BY_TIME,
            "KeySchema": [
                {"AttributeName": "kind", "KeyType": "HASH"},
                {"AttributeName": "opened_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


