"""The whole alarm path through `handlers.alarm.handler`: moto for AWS, a local Slack."""

from __future__ import annotations

from fireline import aws
from fireline.events import parse_event
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_document, sns_lambda_errors_event, sqs_batch
from handlers import _runtime
from handlers.alarm import handler
from tests.support.runs import deliver_at_once

CONTEXT = LambdaContext(function_name="fireline-alarm")


def _alias(name: str = "checkout") -> dict:
    return aws.client("lambda").get_alias(FunctionName=name, Name="live")


def _timeline_kinds(incident_id: str) -> list[str]:
    # The alarm's context (what changed, logs, chart) comes after; tests of it are apart.
    return [entry.kind for entry in _runtime.fireline().store.timeline(incident_id)
            if entry.kind != "context"]


def _steps(messages: list[dict]) -> list[dict]:
    """Thread replies without the alarm's context replies."""
    return [m for m in messages if not m.get("text", "").startswith("*context*")]


def _production_alarm(**overrides) -> dict:
    return sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors",
                                   **overrides)


def test_bad_deploy_is_reverted_and_the_thread_tells_it(handler_env, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)

    result = handler(_production_alarm(), CONTEXT)

    [incident] = result["incidents"]
    assert incident["alarm"] == "checkout-prod-errors"
    assert incident["severity"] == "SEV-2"
    assert incident["playbook"] == "lambda-alias-revert"
    assert incident["status"] == "mitigating"  # done; watching for OK
    assert _alias()["FunctionVersion"] == "2"
    assert _timeline_kinds(incident["incident_id"]) == ["opened", "plan", "execute", "verify",
                                                        "watch"]

    [(channel, ts)] = list(local_slack.threads())
    thread = local_slack.thread(channel, ts)
    replies = _steps(thread[1:])
    assert len(replies) == 3  # plan, execute, verified and watching for OK (one reply)
    assert all(reply.get("thread_ts") == ts for reply in replies)
    assert "watching checkout-prod-errors until" in str(replies[-1])
    assert "verified" in str(replies[-1])
    assert "version 3 to version 2" in str(replies[0])
    updates = local_slack.calls_to("chat.update")
    assert updates, "the parent message must be kept current"
    assert "mitigating" in str(updates[-1].params).lower()


def test_weighted_alias_drops_the_canary_and_keeps_the_primary(handler_env):
    deploy_versions(aws.client, "checkout", versions=3, alias_version="2", weights={"3": 0.1})

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    alias = _alias()
    assert incident["status"] == "mitigating"  # done; watching for OK
    assert alias["FunctionVersion"] == "2"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    function_arn = alias["AliasArn"].rsplit(":", 1)[0]
    assert _runtime.fireline().store.marks(function_arn, "bad-version") == {"3"}


def test_no_earlier_version_fails_clearly_and_keeps_the_incident(handler_env, local_slack):
    deploy_versions(aws.client, "checkout", versions=1)

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "failed"
    assert _alias()["FunctionVersion"] == "1"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert "no earlier good version" in (stored.error or "")
    assert _timeline_kinds(incident["incident_id"])[-1] == "failed"
    posted = " ".join(str(call.params) for call in local_slack.calls_to("chat.postMessage"))
    assert "no earlier good version" in posted


def test_same_delivery_twice_is_one_incident_and_one_revert(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    event = _production_alarm()

    first = handler(event, CONTEXT)["incidents"][0]
    second = handler(event, CONTEXT)["incidents"][0]

    assert second["incident_id"] == first["incident_id"]
    assert (first["opened"], second["opened"]) == (True, False)
    assert _timeline_kinds(first["incident_id"]).count("execute") == 1
    assert _alias()["FunctionVersion"] == "2"


def test_concurrent_deliveries_give_one_incident_and_one_revert(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    events = [_production_alarm() for _ in range(8)]  # distinct SNS message ids
    results = deliver_at_once(handler, events, CONTEXT, timeout=60)

    assert len({r["incident_id"] for r in results}) == 1
    assert sum(r["opened"] for r in results) == 1
    [incident_id] = {r["incident_id"] for r in results}
    assert _timeline_kinds(incident_id).count("execute") == 1
    assert len(_runtime.fireline().store.list()) == 1
    assert _alias()["FunctionVersion"] == "2"


def test_slack_rate_limited_once_then_ok(handler_env, local_slack, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-ratelimited-once")
    _runtime.fireline.cache_clear()
    deploy_versions(aws.client, "checkout", versions=3)

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"  # done; watching for OK
    statuses = [call.status for call in local_slack.calls]
    assert statuses[0] == 429
    assert statuses.count(429) == 1
    [(channel, ts)] = list(local_slack.threads())
    assert len(_steps(local_slack.thread(channel, ts))) == 4  # parent and three replies


def test_slack_unreachable_does_not_stop_the_revert(handler_env, monkeypatch, closed_port_url):
    monkeypatch.setenv("FIRELINE_SLACK_API_URL", closed_port_url)
    _runtime.fireline.cache_clear()
    deploy_versions(aws.client, "checkout", versions=3)

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"  # done; watching for OK
    assert _alias()["FunctionVersion"] == "2"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert stored.slack is None
    assert _timeline_kinds(incident["incident_id"]) == ["opened", "plan", "execute", "verify",
                                                        "watch"]


def test_malformed_record_is_refused_with_the_field_named(handler_env):
    result = handler({"Records": [{"EventSource": "aws:sns", "Sns": {
        "MessageId": "m-1", "Message": '{"AlarmName": "x", "NewStateValue": "BROKEN"}'}}]},
        CONTEXT)

    assert result["incidents"] == []
    [refusal] = result["refused"]
    assert refusal["error"] == "MalformedEvent"
    assert refusal["field"] == "Records[0].Sns.Message.NewStateValue"
    assert "batchItemFailures" not in result, "SNS has no batch to report failures to"
    assert _runtime.fireline().store.list() == []


def test_a_bad_record_in_an_sqs_batch_costs_only_itself(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    event = sqs_batch(sns_document(_production_alarm()), "{not json")
    bad_id = event["Records"][1]["messageId"]

    result = handler(event, CONTEXT)

    [incident] = result["incidents"]
    assert incident["status"] == "mitigating"  # done; watching for OK
    assert result["refused"][0]["field"] == "Records[1].body"
    assert result["batchItemFailures"] == [{"itemIdentifier": bad_id}]
    assert _alias()["FunctionVersion"] == "2"


def test_an_event_that_is_not_an_alarm_delivery_at_all_is_refused(handler_env):
    result = handler({"Records": "nope"}, CONTEXT)

    assert result["error"]["error"] == "MalformedEvent"
    assert result["error"]["field"] == "Records"


def test_unrecognised_event_is_refused(handler_env):
    result = handler({"hello": "world"}, CONTEXT)

    assert result["error"]["error"] == "UnrecognisedEvent"
    assert _runtime.fireline().store.list() == []


def test_ok_notification_resolves_the_open_incident(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    [opened] = handler(_production_alarm(), CONTEXT)["incidents"]

    [noted] = handler(_production_alarm(state="OK", old_state="ALARM"), CONTEXT)["incidents"]

    assert noted["incident_id"] == opened["incident_id"]
    assert noted["status"] == "resolved"
    assert _timeline_kinds(opened["incident_id"])[-1] == "resolved"
    incident = _runtime.fireline().store.get(opened["incident_id"])
    assert (incident.alarm_state, incident.resolved_by) == ("OK", "alarm")
    assert incident.mitigated_at is not None and incident.resolved_at is not None


def test_ok_without_incident_opens_nothing(handler_env):
    result = handler(_production_alarm(state="OK", old_state="ALARM"), CONTEXT)

    assert result == {"incidents": []}
    assert _runtime.fireline().store.list() == []


def test_alarm_outside_production_is_planned_but_not_executed(handler_env, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    event = sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-staging-errors")

    [incident] = handler(event, CONTEXT)["incidents"]

    assert incident["severity"] == "SEV-3"
    assert _alias()["FunctionVersion"] == "3"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert stored.playbook_state == "monitored"
    posts = _steps([call.params for call in local_slack.calls_to("chat.postMessage")])
    assert "monitor" in str(posts[-1])


def test_alarm_tag_overrides_approval(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    event = _production_alarm(tags={"fireline:approval": "required"})

    [incident] = handler(event, CONTEXT)["incidents"]

    assert incident["status"] == "awaiting-approval"
    assert _alias()["FunctionVersion"] == "3"


def test_alarm_tags_are_looked_up_by_arn_when_the_payload_has_none(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="checkout-errors", Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "checkout"}], Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "env", "Value": "production"}])
    arn = cloudwatch.describe_alarms(AlarmNames=["checkout-errors"])["MetricAlarms"][0]["AlarmArn"]
    event = sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-errors",
                                    account_id=arn.split(":")[4])

    [incident] = handler(event, CONTEXT)["incidents"]

    assert incident["severity"] == "SEV-2", "env=production tag makes it the production rule"
    assert _alias()["FunctionVersion"] == "2"


def test_a_playbook_left_pending_by_a_dead_opener_runs_on_the_next_delivery(app):
    from datetime import timedelta

    from fireline.incidents import Incident, new_incident_id
    from fireline.timestamps import utc_now

    deploy_versions(aws.client, "checkout", versions=3)
    event = _production_alarm()
    [alarm] = parse_event(event)
    long_ago = utc_now() - timedelta(minutes=5)
    decision = app.triage(alarm)
    orphan = Incident(incident_id=new_incident_id(long_ago), alarm_key=alarm.key,
                      alarm_name=alarm.alarm_name, title=alarm.alarm_name,
                      severity=decision.severity, playbook=decision.playbook,
                      params=decision.params, approval=decision.approval,
                      playbook_state="pending", opened_at=long_ago)
    app.store.open_or_attach(orphan)  # the opener died before running the playbook

    [result] = app.handle_event(_production_alarm())["incidents"]

    assert result["incident_id"] == orphan.incident_id and result["opened"] is False
    assert result["status"] == "mitigating"  # done; watching for OK
    assert _alias()["FunctionVersion"] == "2"


def test_each_invocation_publishes_its_own_metrics_as_emf(handler_env, monkeypatch, capsys):
    import json

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    deploy_versions(aws.client, "checkout", versions=3)

    handler(_production_alarm(), CONTEXT)
    handler(_production_alarm(), CONTEXT)

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith('{"_aws"')]
    # First invocation: the opening (by severity), the run, the alarm; second: the alarm.
    opened = [doc for doc in emf if "IncidentsOpened" in doc]
    assert [(doc["IncidentsOpened"], doc["severity"]) for doc in opened] == [([1.0], "SEV-2")]
    assert [doc["AlarmsHandled"] for doc in emf if "AlarmsHandled" in doc] == [[1.0], [1.0]]
    assert [doc["PlaybookRuns"] for doc in emf if "PlaybookRuns" in doc] == [[1.0]]
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Fireline" for doc in emf)


def test_a_broken_runbook_still_opens_the_incident_but_acts_on_nothing(handler_env, monkeypatch):
    from pathlib import Path

    broken = Path(__file__).parents[1] / "unit" / "runbooks" / "unknown_field.yaml"
    monkeypatch.setenv("FIRELINE_RUNBOOK", str(broken))
    _runtime.fireline.cache_clear()
    deploy_versions(aws.client, "checkout", versions=3)

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    assert (incident["severity"], incident["playbook"]) == ("SEV-3", None)
    assert _alias()["FunctionVersion"] == "3"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert "runbook not loaded" in stored.reasons[0]
    assert "match.metrik: unknown field" in stored.reasons[0]


def test_an_alarm_from_another_account_changes_nothing_here(handler_env):
    deploy_versions(aws.client, "checkout", versions=3)  # a namesake in our own account
    event = _production_alarm(account_id="999999999999")

    [incident] = handler(event, CONTEXT)["incidents"]

    assert incident["status"] == "failed"
    assert _alias()["FunctionVersion"] == "3"
    stored = _runtime.fireline().store.get(incident["incident_id"])
    assert "account 999999999999" in stored.error and "123456789012" in stored.error


def test_an_alarm_from_another_region_is_acted_on_in_that_region(handler_env):
    def in_ireland(service: str):
        return aws.client(service, region="eu-west-1")

    deploy_versions(in_ireland, "checkout", versions=3)
    deploy_versions(aws.client, "checkout", versions=3)  # a namesake at home stays untouched

    [incident] = handler(_production_alarm(region="eu-west-1"), CONTEXT)["incidents"]

    assert incident["status"] == "mitigating"  # done; watching for OK
    ireland = in_ireland("lambda").get_alias(FunctionName="checkout", Name="live")
    assert ireland["FunctionVersion"] == "2"
    assert _alias()["FunctionVersion"] == "3"


def test_the_slack_token_never_reaches_a_log(handler_env, monkeypatch, caplog, capsys,
                                             closed_port_url):
    import logging

    token = "xoxb-000000000000-fireline-secret-token"
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    monkeypatch.setenv("FIRELINE_SLACK_API_URL", closed_port_url)  # every call fails, logged
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    _runtime.fireline.cache_clear()
    caplog.set_level(logging.DEBUG)
    deploy_versions(aws.client, "checkout", versions=3)

    [incident] = handler(_production_alarm(), CONTEXT)["incidents"]

    captured = capsys.readouterr()
    assert incident["status"] == "mitigating"  # done; watching for OK
    assert "slack chat.postMessage failed" in caplog.text + captured.out + captured.err
    for text in (caplog.text, captured.out, captured.err):
        assert token not in text
        assert "fireline-secret-token" not in text
