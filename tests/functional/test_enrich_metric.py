"""The metric's chart: drawn by CloudWatch around the state change, uploaded to the thread.

moto 5.2.5 has no GetMetricWidgetImage, so CloudWatch's answer is played by botocore's
Stubber (a small PNG, payloads/metric_widget.png). Slack is the real WebClient's
`files_upload_v2` against the local Slack server: getUploadURLExternal, the bytes to the
upload URL on 127.0.0.1, completeUploadExternal into the incident's thread.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from botocore.stub import ANY
from pydantic import SecretStr

from fireline import aws
from fireline.alarm import AlarmEvent
from fireline.app import Fireline
from fireline.enrich.metric_picture import MetricPicture, metric_widget
from fireline.errors import EnrichmentSkipped
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from fireline.local.slack_server import NO_FILE_UPLOAD
from fireline.timestamps import iso
from tests.support.enrich import AppClients, Clients, context, lambda_alarm, png, stubbed

PICTURE = MetricPicture()


def _drawn(stubber, image: bytes) -> None:
    stubber.add_response("get_metric_widget_image", {"MetricWidgetImage": image},
                         {"MetricWidget": ANY, "OutputFormat": "png"})


def test_the_widget_shows_the_metric_an_hour_around_the_state_change():
    alarm = lambda_alarm()
    at = alarm.state_changed_at

    widget = metric_widget(alarm, end=at)

    assert widget["metrics"] == [["AWS/Lambda", "Errors", "FunctionName", "checkout",
                                  {"period": 60, "stat": "Sum"}]]
    assert (widget["start"], widget["end"]) == (iso(at - timedelta(hours=1)), iso(at))
    assert widget["annotations"]["vertical"] == [{"label": "ALARM", "value": iso(at)}]
    assert widget["annotations"]["horizontal"] == [{"label": "threshold", "value": 0.0}]
    assert (widget["region"], widget["width"], widget["height"]) == ("us-east-1", 600, 300)


def test_a_metric_math_alarm_draws_its_expression_over_its_inputs():
    alarm = AlarmEvent.model_validate({
        "delivery": "eventbridge", "delivery_id": "d", "alarm_name": "api-error-rate",
        "state": "ALARM", "state_changed_at": "2026-11-23T09:55:00Z", "kind": "metric-math",
        "threshold": 5.0, "metrics": [
            {"id": "e1", "expression": "100 * errors / requests", "label": "error %",
             "return_data": True},
            {"id": "errors", "namespace": "AWS/ApiGateway", "name": "5XXError",
             "dimensions": {"ApiName": "shop"}, "stat": "Sum", "period": 300,
             "return_data": False},
        ]})

    [expression, errors] = metric_widget(alarm, end=alarm.state_changed_at)["metrics"]

    assert expression == [{"expression": "100 * errors / requests", "id": "e1",
                           "label": "error %", "visible": True}]
    assert errors == ["AWS/ApiGateway", "5XXError", "ApiName", "shop",
                      {"id": "errors", "visible": False, "period": 300, "stat": "Sum"}]
    assert PICTURE.applies(alarm)
    assert not PICTURE.applies(alarm.model_copy(update={"kind": "composite"}))


def test_cloudwatch_draws_a_png_for_the_thread(moto):
    cloudwatch, stubber = stubbed("cloudwatch")
    _drawn(stubber, png())

    with stubber:
        finding = PICTURE.gather(context(lambda_alarm(), Clients(cloudwatch=cloudwatch)))

    assert finding.attachment is not None
    assert finding.attachment.content == png()
    assert finding.attachment.filename == "checkout-prod-errors.png"
    assert finding.text.startswith("metric chart: Errors from ")


def test_not_permitted_is_skipped_cleanly(moto):
    cloudwatch, stubber = stubbed("cloudwatch")
    stubber.add_client_error("get_metric_widget_image", service_error_code="AccessDenied",
                             http_status_code=403)

    with stubber, pytest.raises(EnrichmentSkipped) as skipped:
        PICTURE.gather(context(lambda_alarm(), Clients(cloudwatch=cloudwatch)))

    assert skipped.value.message == ("metric chart skipped: not permitted (grant "
                                     "cloudwatch:GetMetricWidgetImage)")


def _app(settings, cloudwatch) -> Fireline:
    app = Fireline(settings, clients=AppClients(cloudwatch=cloudwatch))
    app.store.create_table()
    return app


def test_the_chart_is_uploaded_into_the_incidents_thread(moto, settings, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    cloudwatch, stubber = stubbed("cloudwatch")
    _drawn(stubber, png())
    app = _app(settings, cloudwatch)

    with stubber:
        [result] = app.handle_event(sns_lambda_errors_event(
            function_name="checkout", alarm_name="checkout-prod-errors"))["incidents"]

    [(channel, ts)] = list(local_slack.threads())
    [file] = local_slack.files().values()
    assert file["content"] == png()
    assert (file["channel"], file["thread_ts"]) == (channel, ts)
    assert file["title"].startswith("checkout-prod-errors around ")
    [shared] = [m for m in local_slack.thread(channel, ts) if m.get("files")]
    assert shared["thread_ts"] == ts
    assert shared["text"].startswith("*context* · metric chart: Errors from ")
    assert local_slack.calls_to("upload")[0].params["bytes"] == len(png())
    [entry] = [e for e in app.store.timeline(result["incident_id"])
               if e.data.get("enrichment") == "metric"]
    assert (entry.data["file"], entry.data["bytes"]) == ("checkout-prod-errors.png", len(png()))
    # The whole thread of a revert, as the README counts it: parent, plan, execute, verified
    # and watching, context, the parent's update, and the file's two calls.
    methods = Counter(call.method for call in local_slack.calls if call.method != "upload")
    assert sum(methods.values()) == 8, methods


def test_without_the_file_scope_the_chart_is_a_note(moto, settings, local_slack):
    deploy_versions(aws.client, "checkout", versions=3)
    cloudwatch, stubber = stubbed("cloudwatch")
    _drawn(stubber, png())
    no_files = settings.model_copy(update={"slack_bot_token": SecretStr(NO_FILE_UPLOAD)})
    app = _app(no_files, cloudwatch)

    with stubber:
        [result] = app.handle_event(sns_lambda_errors_event(
            function_name="checkout", alarm_name="checkout-prod-errors"))["incidents"]

    assert result["status"] == "mitigating"  # the revert is untouched
    assert local_slack.files() == {}
    notes = [e.text for e in app.store.timeline(result["incident_id"]) if e.kind == "context"]
    assert ("metric chart not posted: Slack does not let the app upload files (missing_scope "
            "(the app needs files:write))") in notes
    posted = json.dumps([c.params for c in local_slack.calls_to("chat.postMessage")])
    assert "metric chart not posted" in posted


def test_on_the_console_the_chart_is_named_not_drawn(moto, capsys):
    from fireline.config import Settings
    from tests.support.aws import TABLE

    deploy_versions(aws.client, "checkout", versions=3)
    cloudwatch, stubber = stubbed("cloudwatch")
    _drawn(stubber, png())
    app = _app(Settings(table=TABLE), cloudwatch)

    with stubber:
        app.handle_event(sns_lambda_errors_event(function_name="checkout",
                                                 alarm_name="checkout-prod-errors"))

    printed = capsys.readouterr().err
    assert "└ *context* · metric chart: Errors from " in printed
    assert f"[checkout-prod-errors.png: {len(png()):,} bytes, shown in Slack]" in printed
