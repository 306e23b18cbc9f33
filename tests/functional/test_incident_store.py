"""The DynamoDB incident store against moto: atomic opening, versioned updates, timeline."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from fireline import aws
from fireline.errors import IncidentNotFound, StoreUnavailable
from fireline.incidents import Incident, IncidentStore, TimelineEntry, new_incident_id

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(moto) -> IncidentStore:
    store = IncidentStore("incidents", aws.client, lambda: NOW)
    assert store.create_table() is True
    assert store.create_table() is False, "a second init finds the table"
    return store


def _incident(alarm_key: str = "123/us-east-1/checkout-errors", **fields) -> Incident:
    return Incident(incident_id=new_incident_id(NOW), alarm_key=alarm_key,
                    alarm_name="checkout-errors", title="checkout-errors", severity="SEV-2",
                    playbook="lambda-alias-revert", playbook_state="pending", opened_at=NOW,
                    **fields)


def test_same_alarm_attaches_to_its_open_incident(store):
    first, opened = store.open_or_attach(_incident())
    again, opened_again = store.open_or_attach(_incident())
    other, opened_other = store.open_or_attach(_incident("123/us-east-1/other"))

    assert (opened, opened_again, opened_other) == (True, False, True)
    assert again.incident_id == first.incident_id
    assert other.incident_id != first.incident_id
    assert {i.incident_id for i in store.list()} == {first.incident_id, other.incident_id}


def test_concurrent_opens_give_one_incident(store):
    results: list[tuple[Incident, bool]] = []
    barrier = threading.Barrier(12)

    def open_one() -> None:
        barrier.wait()
        results.append(store.open_or_attach(_incident()))

    threads = [threading.Thread(target=open_one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert len(results) == 12
    assert sum(opened for _, opened in results) == 1
    assert len({incident.incident_id for incident, _ in results}) == 1
    assert len(store.list()) == 1


def test_claim_playbook_succeeds_once(store):
    incident, _ = store.open_or_attach(_incident())

    claims = [store.claim_playbook(incident) for _ in range(3)]

    assert [claim is not None for claim in claims] == [True, False, False]
    assert claims[0].playbook_state == "running"
    stored = store.get(incident.incident_id)
    assert (stored.playbook_state, stored.status) == ("running", "mitigating")


def test_update_retries_on_a_conflicting_write_and_counts_versions(store):
    incident, _ = store.open_or_attach(_incident())
    interfered = False

    def change(current: Incident) -> Incident:
        nonlocal interfered
        if not interfered:  # someone else writes between our read and our write
            interfered = True
            store.update(incident.incident_id, lambda other: other.model_copy(
                update={"reopened": other.reopened + 10}))
        current.reopened += 1
        return current

    updated = store.update(incident.incident_id, change)

    assert updated.reopened == 11, "our change is applied on top of theirs, not over it"
    assert store.get(incident.incident_id).version == 2


def test_timeline_in_order_and_once_keys(store):
    incident, _ = store.open_or_attach(_incident())
    for minute, kind in enumerate(["opened", "plan", "execute"]):
        store.append(incident.incident_id, TimelineEntry(
            kind=kind, text=kind, at=NOW + timedelta(minutes=minute)))

    assert store.append(incident.incident_id, TimelineEntry(kind="alarm", text="ok",
                        at=NOW + timedelta(minutes=5)), once_key="delivery-1") is True
    assert store.append(incident.incident_id, TimelineEntry(kind="alarm", text="ok",
                        at=NOW + timedelta(minutes=6)), once_key="delivery-1") is False

    assert [e.kind for e in store.timeline(incident.incident_id)] == [
        "opened", "plan", "execute", "alarm"]


def test_marks_are_kept_per_resource_and_kind(store):
    store.add_mark("arn:fn", "bad-version", "3", incident_id="INC-1")
    store.add_mark("arn:fn", "bad-version", "4", incident_id="INC-1")
    store.add_mark("arn:other", "bad-version", "9", incident_id="INC-2")
    store.remove_mark("arn:fn", "bad-version", "4")

    assert store.marks("arn:fn", "bad-version") == {"3"}
    assert store.marks("arn:fn", "other-kind") == set()


def test_unknown_incident_and_missing_table_are_typed_errors(store):
    with pytest.raises(IncidentNotFound):
        store.get("INC-20260101-000000")
    missing = IncidentStore("not-there", aws.client, lambda: NOW)
    with pytest.raises(StoreUnavailable, match="fireline init-table"):
        missing.list()


def test_an_opener_that_died_after_taking_the_alarm_is_taken_over(store):
    # The opener's first write (the alarm's pointer) landed; its incident document did not.
    aws.client("dynamodb").put_item(TableName="incidents", Item={
        "pk": {"S": "ALARM#123/us-east-1/checkout-errors"}, "sk": {"S": "OPEN"},
        "incident_id": {"S": "INC-20261123-dead00"}})

    adopted, opened = store.open_or_attach(_incident())
    again, opened_again = store.open_or_attach(_incident())

    assert (adopted.incident_id, opened) == ("INC-20261123-dead00", True)
    assert (again.incident_id, opened_again) == ("INC-20261123-dead00", False)
    assert store.get("INC-20261123-dead00").playbook_state == "pending"


def test_an_opener_overtaken_by_a_waiting_delivery_attaches_instead(moto):
    """The opener stalls between its pointer and its incident (a slow or throttled put):
    the waiting delivery takes the opening over, and the late opener attaches to it."""
    pointer_written = threading.Event()
    adopted = threading.Event()

    class SlowIncidentPuts:
        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            return getattr(self._client, name)

        def put_item(self, **request):
            if request["Item"]["sk"]["S"] == "META":
                pointer_written.set()
                adopted.wait(timeout=10)
            answer = self._client.put_item(**request)
            if request["Item"]["sk"]["S"] == "OPEN":
                pointer_written.set()
            return answer

    slow = IncidentStore("incidents", lambda service, **kw: SlowIncidentPuts(
        aws.client(service, **kw)), lambda: NOW)
    store = IncidentStore("incidents", aws.client, lambda: NOW)
    store.create_table()
    results: dict[str, tuple[Incident, bool]] = {}
    opener = threading.Thread(target=lambda: results.update(late=slow.open_or_attach(
        _incident())))
    opener.start()
    assert pointer_written.wait(timeout=10)

    results["waiter"] = store.open_or_attach(_incident())
    adopted.set()
    opener.join(timeout=10)

    (waiter, waiter_opened), (late, late_opened) = results["waiter"], results["late"]
    assert (waiter_opened, late_opened) == (True, False)
    assert waiter.incident_id == late.incident_id
    assert len(store.list()) == 1
