"""Log evidence: a Logs Insights query over the function's errors, bounded in time.

moto 5.2.5 runs Logs Insights queries of `fields`, `sort` and `limit` only (no `parse` or
`stats`), and has no StopQuery, so StartQuery, GetQueryResults and StopQuery are played by
botocore's Stubber, with a recorded answer in AWS's shape (payloads/logs_insights_errors.json).
A missing log group is moto's own answer.
"""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from fireline.enrich.log_evidence import QUERY, LogEvidence
from fireline.errors import EnrichmentSkipped
from tests.support.enrich import (
    Clients,
    FakeTime,
    context,
    lambda_alarm,
    payload,
    stubbed,
    table_alarm,
)

LOGS = LogEvidence()


def _started(stubber, alarm, query_id: str = "q-1") -> None:
    stubber.add_response("start_query", {"queryId": query_id}, {
        "logGroupName": "/aws/lambda/checkout",
        "startTime": int(alarm.state_changed_at.timestamp()) - 15 * 60,
        "endTime": ANY,  # up to now: the alarm has only just fired
        "queryString": QUERY,
        "limit": 5})


def test_errors_grouped_by_message_top_five_with_a_redacted_sample(moto):
    alarm = lambda_alarm()
    logs, stubber = stubbed("logs")
    _started(stubber, alarm)
    stubber.add_response("get_query_results", {"status": "Running", "results": []},
                         {"queryId": "q-1"})
    stubber.add_response("get_query_results", payload("logs_insights_errors.json")["response"],
                         {"queryId": "q-1"})
    fake = FakeTime()

    with stubber:
        finding = LOGS.gather(context(alarm, Clients(logs=logs), fake=fake))

    stubber.assert_no_pending_responses()
    assert fake.slept == [0.25], "polled again after a short pause"
    assert finding.text == "log evidence: 456 error lines in 4 groups around the alarm"
    assert finding.lines[0].startswith("Logs Insights, /aws/lambda/checkout, ")
    assert finding.lines[1] == "• 412 x KeyError: 'cart'"
    assert finding.lines[2].startswith("  e.g. [ERROR] KeyError: 'cart' Traceback (most recent")
    assert finding.lines[3] == "• 37 x ConnectionError: could not reach db password=[redacted]"
    leaky = finding.lines[4]
    for secret in ("hunter2", "xoxb-1111", "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in leaky
    assert leaky.count("[redacted]") == 3
    assert finding.lines[5] == "• 5 x Task timed out after 3.00 seconds"
    assert finding.lines[7] == "• 2 x (no error name)"
    assert "eyJhbGci" not in finding.lines[8] and "Bearer [redacted]" in finding.lines[8]


def test_no_error_lines_is_said_plainly(moto):
    alarm = lambda_alarm()
    logs, stubber = stubbed("logs")
    _started(stubber, alarm)
    stubber.add_response("get_query_results", {"status": "Complete", "results": []},
                         {"queryId": "q-1"})

    with stubber:
        finding = LOGS.gather(context(alarm, Clients(logs=logs)))

    assert finding.text.startswith("log evidence: no error lines in /aws/lambda/checkout")
    assert finding.lines == []


def test_a_slow_query_is_stopped_at_the_deadline(moto):
    alarm = lambda_alarm()
    logs, stubber = stubbed("logs")
    _started(stubber, alarm)
    for _ in range(5):
        stubber.add_response("get_query_results", {"status": "Running", "results": []},
                             {"queryId": "q-1"})
    stubber.add_response("stop_query", {"success": True}, {"queryId": "q-1"})
    fake = FakeTime()

    with stubber, pytest.raises(EnrichmentSkipped) as skipped:
        LOGS.gather(context(alarm, Clients(logs=logs), budget=3.0, fake=fake))

    stubber.assert_no_pending_responses()
    assert skipped.value.message == ("log evidence: the Logs Insights query had not finished "
                                     "within the budget; stopped it")
    # Backing off to at most a second, and leaving itself time to stop the query.
    assert fake.slept == [0.25, 0.5, 1.0, 0.75]


def test_a_query_that_fails_is_a_note(moto):
    alarm = lambda_alarm()
    logs, stubber = stubbed("logs")
    _started(stubber, alarm)
    stubber.add_response("get_query_results", {"status": "Failed", "results": []},
                         {"queryId": "q-1"})

    with stubber, pytest.raises(EnrichmentSkipped, match="the Logs Insights query ended Failed"):
        LOGS.gather(context(alarm, Clients(logs=logs)))


def test_not_permitted_is_skipped_cleanly(moto):
    logs, stubber = stubbed("logs")
    stubber.add_client_error("start_query", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform logs:StartQuery",
                             http_status_code=400)

    with stubber, pytest.raises(EnrichmentSkipped) as skipped:
        LOGS.gather(context(lambda_alarm(), Clients(logs=logs)))

    assert skipped.value.message == ("log evidence skipped: not permitted to query "
                                     "/aws/lambda/checkout (grant logs:StartQuery and "
                                     "logs:GetQueryResults)")


def test_a_missing_log_group_is_skipped_cleanly(moto):
    with pytest.raises(EnrichmentSkipped) as skipped:  # moto: no such log group
        LOGS.gather(context(lambda_alarm(), Clients()))

    assert skipped.value.message == "log evidence skipped: no log group /aws/lambda/checkout"


def test_only_lambda_alarms_have_log_evidence():
    assert LOGS.applies(lambda_alarm())
    assert not LOGS.applies(table_alarm())
