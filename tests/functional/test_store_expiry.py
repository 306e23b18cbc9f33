"""Which items DynamoDB's TTL (enabled by the template on `ttl`) may delete: bookkeeping only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fireline import aws
from fireline.incidents import BOOKKEEPING_KEPT, TTL_ATTRIBUTE, IncidentStore
from tests.functional.test_incident_store import _incident

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _items(table: str) -> list[dict]:
    return aws.client("dynamodb").scan(TableName=table)["Items"]


def test_locks_and_action_records_expire_and_incidents_never_do(moto):
    store = IncidentStore("incidents", aws.client, lambda: NOW)
    store.create_table()
    incident, _ = store.open_or_attach(_incident())
    until = NOW + timedelta(minutes=2)
    assert store.acquire_lock("lambda:checkout", incident.incident_id, until) is None
    store.record_action("lambda:checkout", "lambda-alias-revert", incident.incident_id,
                        automatic=True)

    by_key = {(i["pk"]["S"].split("#")[0], i["sk"]["S"].split("#")[0]): i
              for i in _items("incidents")}
    lock = by_key[("LOCK", "LOCK")]
    action = by_key[("RESOURCE", "ACTION")]
    assert int(lock[TTL_ATTRIBUTE]["N"]) == int((until + BOOKKEEPING_KEPT).timestamp())
    assert int(action[TTL_ATTRIBUTE]["N"]) == int((NOW + BOOKKEEPING_KEPT).timestamp())
    # The lock itself still expires by `expires_at`, long before DynamoDB removes it.
    assert lock["expires_at"]["S"].startswith("2026-11-23T03:02")
    kept = [i for k, i in by_key.items() if k[0] in {"INCIDENT", "ALARM"}]
    assert kept and all(TTL_ATTRIBUTE not in i for i in kept)
