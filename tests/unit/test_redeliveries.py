"""The memory of handled deliveries is bounded in time and in size (a storm's worth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fireline.alarm import AlarmEvent
from fireline.redeliveries import Redeliveries

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def _delivery(delivery_id: str, *, alarm: str = "checkout-errors",
              state: str = "ALARM") -> AlarmEvent:
    return AlarmEvent(delivery="sns", delivery_id=delivery_id, alarm_name=alarm,
                      account_id="123456789012", region="us-east-1", state=state,
                      state_changed_at=T0)


def test_a_delivery_is_known_by_its_alarm_its_id_and_its_state():
    memory: Redeliveries[str] = Redeliveries(lambda: T0)
    memory.remember(_delivery("m-1"), "answered")

    assert memory.answered(_delivery("m-1")) == (T0, "answered")
    assert memory.answered(_delivery("m-2")) is None
    assert memory.answered(_delivery("m-1", alarm="another-alarm")) is None
    assert memory.answered(_delivery("m-1", state="OK")) is None


def test_deliveries_are_forgotten_after_the_window():
    now = [T0]
    memory: Redeliveries[str] = Redeliveries(lambda: now[0], remembered_for=timedelta(seconds=60))
    memory.remember(_delivery("m-1"), "first")
    now[0] = T0 + timedelta(seconds=30)
    memory.remember(_delivery("m-2"), "second")

    now[0] = T0 + timedelta(seconds=61)

    assert memory.answered(_delivery("m-1")) is None
    assert memory.answered(_delivery("m-2")) == (T0 + timedelta(seconds=30), "second")


def test_the_oldest_are_dropped_beyond_the_limit():
    memory: Redeliveries[int] = Redeliveries(lambda: T0, at_most=3)
    for n in range(5):
        memory.remember(_delivery(f"m-{n}"), n)

    assert [memory.answered(_delivery(f"m-{n}")) for n in range(5)] == [
        None, None, (T0, 2), (T0, 3), (T0, 4)]
