"""What changed: CloudTrail's writes on the alarm's resources, and a function's versions.

moto 5.2.5 has no CloudTrail LookupEvents (it raises NotImplementedError), so its answers
are played by botocore's Stubber from a recorded answer in AWS's shape
(payloads/cloudtrail_lookup_events.json); Lambda's versions are moto's own.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from fireline import aws
from fireline.enrich.changes import RecentChanges
from fireline.errors import EnrichmentSkipped
from fireline.local.lambda_fixture import deploy_versions
from fireline.timestamps import parse_aws_time
from tests.support.enrich import (
    Clients,
    context,
    lambda_alarm,
    lookup_events_answer,
    minutes,
    stubbed,
    table_alarm,
)

ALARM_AT = parse_aws_time("2026-11-23T09:55:00Z")
CHANGES = RecentChanges()


def _lookup(stubber, name: str, answer: dict, alarm_at: datetime = ALARM_AT) -> None:
    stubber.add_response("lookup_events", answer, {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": name}],
        "StartTime": alarm_at - minutes(60), "EndTime": alarm_at, "MaxResults": 50})


def test_what_changed_lists_the_writes_newest_first_with_who_what_and_when(moto):
    deploy_versions(aws.client, "checkout", versions=3)
    cloudtrail, stubber = stubbed("cloudtrail")
    _lookup(stubber, "checkout", lookup_events_answer(ALARM_AT))

    with stubber:
        finding = CHANGES.gather(context(lambda_alarm(at=ALARM_AT), Clients(cloudtrail=cloudtrail)))

    stubber.assert_no_pending_responses()
    assert finding.text == ("what changed: 4 changes to function checkout in the hour before "
                            "the alarm")
    assert finding.lines[:5] == [
        "CloudTrail, the hour before 09:55:00Z (newest first):",
        "• 09:51:02Z UpdateAlias checkout to version 3 by deploy-pipeline (4 min before)",
        "• 09:50:40Z PublishVersion checkout version 3 by deploy-pipeline (4 min before)",
        "• 09:50:12Z UpdateFunctionCode checkout by deploy-pipeline (5 min before)",
        "• 09:20:00Z UpdateFunctionConfiguration checkout (memorySize, timeout) by "
        "alice@example.com (35 min before)",
    ]
    assert not any("GetFunction" in line for line in finding.lines), "reads change nothing"
    assert finding.lines[5] == "Latest published versions of checkout:"
    assert [line.split(" published")[0] for line in finding.lines[6:]] == [
        "• version 3", "• version 2", "• version 1"]
    assert "· release 3" in finding.lines[6]
    assert not finding.note


def test_many_changes_are_capped_and_counted(moto):
    deploy_versions(aws.client, "checkout", versions=1)
    answer = lookup_events_answer(ALARM_AT)
    template = answer["Events"][1]
    answer["Events"] = [{**template, "EventId": f"e{n}", "EventTime": ALARM_AT - minutes(n)}
                        for n in range(1, 13)]
    cloudtrail, stubber = stubbed("cloudtrail")
    _lookup(stubber, "checkout", answer)

    with stubber:
        finding = CHANGES.gather(context(lambda_alarm(at=ALARM_AT), Clients(cloudtrail=cloudtrail)))

    assert finding.text.startswith("what changed: 12 changes")
    shown = [line for line in finding.lines if "UpdateAlias" in line]
    assert len(shown) == 8
    assert shown[0].startswith("• 09:54:00Z") and shown[-1].startswith("• 09:47:00Z")
    assert "… and 4 earlier" in finding.lines


def test_cloudtrail_not_permitted_is_said_and_the_versions_still_show(moto):
    deploy_versions(aws.client, "checkout", versions=2)
    cloudtrail, stubber = stubbed("cloudtrail")
    stubber.add_client_error("lookup_events", service_error_code="AccessDeniedException",
                             service_message="not authorized to perform cloudtrail:LookupEvents",
                             http_status_code=400)

    with stubber:
        finding = CHANGES.gather(context(lambda_alarm(at=ALARM_AT), Clients(cloudtrail=cloudtrail)))

    assert finding.text == "what changed: function checkout (CloudTrail not read)"
    assert finding.lines[0] == "CloudTrail not read: not permitted (grant cloudtrail:LookupEvents)"
    assert finding.lines[1] == "Latest published versions of checkout:"
    assert len(finding.lines) == 4


def test_nothing_readable_is_a_note_not_an_error(moto):
    cloudtrail, trail_stubber = stubbed("cloudtrail")
    trail_stubber.add_client_error("lookup_events", service_error_code="AccessDeniedException",
                                   http_status_code=400)
    # AWS answers ResourceNotFoundException for a missing function; moto, an empty list.
    lam, lambda_stubber = stubbed("lambda")
    lambda_stubber.add_client_error("list_versions_by_function",
                                    service_error_code="ResourceNotFoundException",
                                    service_message="Function not found", http_status_code=404)

    with trail_stubber, lambda_stubber, pytest.raises(EnrichmentSkipped) as skipped:
        CHANGES.gather(context(lambda_alarm(at=ALARM_AT),
                               Clients(cloudtrail=cloudtrail, **{"lambda": lam})))

    assert skipped.value.message.startswith("what changed: nothing could be read; CloudTrail "
                                            "not read: not permitted")
    assert "versions of checkout not read: lambda:ListVersionsByFunction failed: " \
           "ResourceNotFoundException: Function not found" in skipped.value.message


def test_a_table_alarm_looks_up_the_table_and_says_when_nothing_changed(moto):
    alarm = table_alarm("orders")
    cloudtrail, stubber = stubbed("cloudtrail")
    _lookup(stubber, "orders", {"Events": []}, alarm.state_changed_at)

    with stubber:
        finding = CHANGES.gather(context(alarm, Clients(cloudtrail=cloudtrail)))

    stubber.assert_no_pending_responses()
    assert finding.text.startswith("what changed: CloudTrail records no change to table orders "
                                   "in the hour before the alarm")
    assert finding.lines == []


def test_only_alarms_that_name_a_resource_are_looked_at():
    assert CHANGES.applies(lambda_alarm())
    assert CHANGES.applies(table_alarm())
    assert not CHANGES.applies(lambda_alarm().model_copy(update={"dimensions": {},
                                                                 "metrics": ()}))
