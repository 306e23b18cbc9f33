"""The memory of handled deliveries: the same message again, and old news of an alarm's
ALARM; bounded in time and in size (a storm's worth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fireline.alarm import AlarmEvent
from fireline.redeliveries import Redeliveries, Remembered

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
NO_OLD_NEWS = timedelta(0)


def _delivery(delivery_id: str, *, alarm: str = "checkout-errors", state: str = "ALARM",
              changed_at: datetime = T0) -> AlarmEvent:
    return AlarmEvent(delivery="sns", delivery_id=delivery_id, alarm_name=alarm,
                      account_id="123456789012", region="us-east-1", state=state,
                      state_changed_at=changed_at)


def test_a_delivery_is_known_by_its_alarm_its_id_and_its_state():
    memory: Redeliveries[str] = Redeliveries(lambda: T0, old_news_for=NO_OLD_NEWS)
    memory.remember(_delivery("m-1"), "answered")

    assert memory.answered(_delivery("m-1")) == Remembered(T0, "answered")
    assert memory.answered(_delivery("m-2")) is None
    assert memory.answered(_delivery("m-1", alarm="another-alarm")) is None
    assert memory.answered(_delivery("m-1", state="OK")) is None


def test_deliveries_are_forgotten_after_the_window():
    now = [T0]
    memory: Redeliveries[str] = Redeliveries(lambda: now[0], remembered_for=timedelta(seconds=60),
                                             old_news_for=NO_OLD_NEWS)
    memory.remember(_delivery("m-1"), "first")
    now[0] = T0 + timedelta(seconds=30)
    memory.remember(_delivery("m-2"), "second")

    now[0] = T0 + timedelta(seconds=61)

    assert memory.answered(_delivery("m-1")) is None
    assert memory.answered(_delivery("m-2")) == Remembered(T0 + timedelta(seconds=30), "second")


def test_the_oldest_are_dropped_beyond_the_limit():
    memory: Redeliveries[int] = Redeliveries(lambda: T0, at_most=3, old_news_for=NO_OLD_NEWS)
    for n in range(5):
        memory.remember(_delivery(f"m-{n}"), n)

    assert [memory.answered(_delivery(f"m-{n}")) for n in range(5)] == [
        None, None, Remembered(T0, 2), Remembered(T0, 3), Remembered(T0, 4)]


def test_another_message_of_an_alarm_change_no_later_than_one_handled_is_old_news():
    memory: Redeliveries[str] = Redeliveries(lambda: T0)
    memory.remember(_delivery("m-1", changed_at=T0), "joined")

    assert memory.answered(_delivery("m-2", changed_at=T0)) == Remembered(T0, "joined", T0)
    earlier = T0 - timedelta(minutes=5)
    assert memory.answered(_delivery("m-3", changed_at=earlier)) == Remembered(
        T0, "joined", T0)
    assert memory.answered(_delivery("m-4", changed_at=T0 + timedelta(milliseconds=1))) is None, \
        "a later change is news: the alarm left ALARM and came back"
    assert memory.answered(_delivery("m-5", alarm="another-alarm")) is None
    assert memory.answered(_delivery("m-6", state="OK")) is None, "only an ALARM is old news"


def test_old_news_is_measured_by_the_latest_change_whichever_finished_last():
    memory: Redeliveries[str] = Redeliveries(lambda: T0)
    later = T0 + timedelta(seconds=30)
    memory.remember(_delivery("m-later", changed_at=later), "kept the later change")
    memory.remember(_delivery("m-earlier", changed_at=T0), "joined")

    assert memory.answered(_delivery("m-2", changed_at=later)) == Remembered(
        T0, "joined", later)


def test_old_news_is_kept_for_a_shorter_window():
    now = [T0]
    memory: Redeliveries[str] = Redeliveries(lambda: now[0], remembered_for=timedelta(seconds=60),
                                             old_news_for=timedelta(seconds=10))
    memory.remember(_delivery("m-1"), "joined")

    now[0] = T0 + timedelta(seconds=11)

    assert memory.answered(_delivery("m-2")) is None, "old news goes to the store again"
    assert memory.answered(_delivery("m-1")) == Remembered(T0, "joined"), "the same message not"


def test_another_state_handled_forgets_the_alarms_old_news():
    memory: Redeliveries[str] = Redeliveries(lambda: T0)
    memory.remember(_delivery("m-1"), "joined")
    memory.remember(_delivery("m-ok", state="OK", changed_at=T0 + timedelta(seconds=5)),
                    "resolved")

    assert memory.answered(_delivery("m-2")) is None, "the incident has moved on"


def test_a_process_that_forgets_everything_knows_nothing():
    memory: Redeliveries[str] = Redeliveries(lambda: T0)
    memory.remember(_delivery("m-1"), "joined")

    memory.forget_everything()

    assert memory.answered(_delivery("m-1")) is None
    assert memory.answered(_delivery("m-2")) is None


def test_equal_answers_for_one_alarm_are_kept_once():
    """A storm's deliveries of one alarm are each answered alike: memory keeps one copy."""
    memory: Redeliveries[list[str]] = Redeliveries(lambda: T0)
    memory.remember(_delivery("m-1"), ["INC-1", "mitigating"])
    memory.remember(_delivery("m-2"), ["INC-1", "mitigating"])
    memory.remember(_delivery("m-3"), ["INC-1", "mitigated"])

    first, second, third = (memory.answered(_delivery(f"m-{n}")) for n in (1, 2, 3))
    assert first.answer is second.answer
    assert third.answer == ["INC-1", "mitigated"], "a different answer is its own"
