"""Many accounts: an alarm from another account is acted on through a role assumed there.

moto is multi-account: credentials from `sts.assume_role` into account 222222222222 reach
that account's resources, and only those. So a function created there with such
credentials can only be reverted through the role; a namesake in Fireline's own account
(123456789012) shows that nothing acts on the wrong one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fireline import aws
from fireline.accounts import AccountPolicy, Accounts
from fireline.app import Fireline
from fireline.errors import AssumeRoleFailed
from fireline.local.lambda_fixture import deploy_versions
from fireline.local.payloads import sns_lambda_errors_event
from tests.support.runs import Clock

HOME, OTHER = "123456789012", "222222222222"
ROLE = "fireline-responder"
RUNBOOKS = Path(__file__).parent / "runbooks"


class AssumeRoleSpy:
    """moto's clients, with every sts:AssumeRole request kept."""

    def __init__(self) -> None:
        self.assumed: list[dict[str, Any]] = []

    def __call__(self, service: str, region: str | None = None) -> Any:
        real = aws.client(service, region)
        return _Sts(real, self.assumed) if service == "sts" else real


class _Sts:
    def __init__(self, real: Any, calls: list[dict[str, Any]]) -> None:
        self._real, self._calls = real, calls

    def assume_role(self, **request: Any) -> Any:
        self._calls.append(request)
        return self._real.assume_role(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _in(account: str) -> Any:
    """Clients of someone working in `account` (a deploy pipeline there)."""
    credentials = aws.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/deployer", RoleSessionName="ci")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name="us-east-1")
    return lambda service, region=None: session.client(service, region_name=region)


def _alias(clients: Any) -> str:
    return clients("lambda").get_alias(FunctionName="checkout", Name="live")["FunctionVersion"]


def _alarm(account: str) -> dict:
    return sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors",
                                   account_id=account)


def _app(settings, spy: AssumeRoleSpy, **changes: Any) -> Fireline:
    app = Fireline(settings.model_copy(update=changes), clients=spy)
    app.store.create_table()
    return app


def test_the_role_in_the_alarms_account_reverts_its_function(moto, settings):
    other = _in(OTHER)
    deploy_versions(other, "checkout", versions=3)
    deploy_versions(aws.client, "checkout", versions=2)  # a namesake at home: left alone
    spy = AssumeRoleSpy()
    app = _app(settings, spy, cross_account_role=ROLE, external_id="ext-fireline-7")

    [result] = app.handle_event(_alarm(OTHER))["incidents"]

    assert result["status"] == "mitigating"  # reverted, watching for OK
    assert _alias(other) == "2"
    assert _alias(aws.client) == "2" and len(aws.client("lambda").list_versions_by_function(
        FunctionName="checkout")["Versions"]) == 3, "the home namesake is untouched"
    incident = app.store.get(result["incident_id"])
    assert incident.outcome["changes"][0]["resource"] == (
        f"arn:aws:lambda:us-east-1:{OTHER}:function:checkout:live")
    # One role, assumed once for the plan, every step, the verify and the context.
    assert spy.assumed == [{"RoleArn": f"arn:aws:iam::{OTHER}:role/{ROLE}",
                            "RoleSessionName": "fireline", "DurationSeconds": 3600,
                            "ExternalId": "ext-fireline-7"}]
    [changes] = [e for e in app.store.timeline(incident.incident_id)
                 if e.data.get("enrichment") == "changes"]
    versions = [line for line in changes.data["lines"] if line.startswith("• version")]
    assert versions[0].startswith("• version 3 published"), "read in the alarm's account"


def test_without_a_role_an_alarm_from_another_account_changes_nothing(moto, settings):
    other = _in(OTHER)
    deploy_versions(other, "checkout", versions=3)
    spy = AssumeRoleSpy()
    app = _app(settings, spy)

    [result] = app.handle_event(_alarm(OTHER))["incidents"]

    assert result["status"] == "failed"
    assert _alias(other) == "3"
    incident = app.store.get(result["incident_id"])
    assert f"the alarm is in account {OTHER} and Fireline runs in {HOME}" in incident.error
    assert "FIRELINE_CROSS_ACCOUNT_ROLE" in incident.error
    assert spy.assumed == []
    notes = [e.text for e in app.store.timeline(incident.incident_id) if e.kind == "context"]
    assert notes == [f"no context gathered: the alarm is in account {OTHER} and Fireline runs "
                     f"in {HOME}; acting across accounts is not configured "
                     "(FIRELINE_CROSS_ACCOUNT_ROLE), so nothing was changed"]


def test_an_account_the_runbook_does_not_list_is_refused(moto, settings):
    other = _in(OTHER)
    deploy_versions(other, "checkout", versions=3)
    deploy_versions(aws.client, "checkout", versions=3)
    spy = AssumeRoleSpy()
    app = _app(settings, spy, cross_account_role=ROLE, runbook_path=RUNBOOKS / "accounts.yaml")

    [refused] = app.handle_event(_alarm(OTHER))["incidents"]
    [home] = app.handle_event(_alarm(HOME))["incidents"]

    assert refused["status"] == "failed"
    assert _alias(other) == "3"
    error = app.store.get(refused["incident_id"]).error
    assert f"the alarm is in account {OTHER}, which the runbook's defaults.accounts does not " \
           "list" in error
    assert spy.assumed == []
    assert home["status"] == "mitigating", "Fireline's own account is always allowed"
    assert app.runbook.defaults.accounts == ["333333333333", "444444444444"]


def test_credentials_are_kept_until_shortly_before_they_expire(moto):
    spy, clock = AssumeRoleSpy(), Clock()
    accounts = Accounts(spy, clock=clock, policy=AccountPolicy(role_name=ROLE))
    clients = accounts.clients_for(OTHER)

    assert clients("sts").get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{OTHER}:assumed-role/{ROLE}/fireline")
    clients("lambda")
    clients("lambda", region="eu-west-1")
    assert len(spy.assumed) == 1

    clock.now += timedelta(minutes=54)  # an hour's credentials, six minutes left
    clients("lambda")
    assert len(spy.assumed) == 1
    clock.now += timedelta(minutes=2)  # four minutes left: renewed before they run out
    assert clients("sts").get_caller_identity()["Account"] == OTHER
    assert len(spy.assumed) == 2
    assert accounts.clients_for(HOME) is spy, "our own account: the default factory"


def test_a_role_that_cannot_be_assumed_fails_clearly(moto):
    # moto lets anyone assume any role; AWS's refusal is played by botocore's Stubber.
    sts = boto3.session.Session().client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_response("get_caller_identity", {
        "Account": HOME, "Arn": f"arn:aws:iam::{HOME}:role/fireline", "UserId": "AROA"})
    stubber.add_client_error("assume_role", service_error_code="AccessDenied",
                             service_message="not authorized to perform: sts:AssumeRole",
                             http_status_code=403)
    accounts = Accounts(lambda service, region=None: sts,
                        policy=AccountPolicy(role_name=ROLE))

    with stubber, pytest.raises(AssumeRoleFailed) as failed:
        accounts.clients_for(OTHER)("lambda")

    assert failed.value.message == (
        f"cannot act in account {OTHER}: assuming arn:aws:iam::{OTHER}:role/{ROLE}: "
        "sts:AssumeRole failed: AccessDenied: not authorized to perform: sts:AssumeRole "
        "(grant the permission for sts:AssumeRole)")


@pytest.mark.parametrize("arn", [
    "arn:aws-us-gov:lambda:us-gov-west-1:222222222222:function:fireline-alarm",
    "arn:aws:lambda:us-east-1:222222222222:function:fireline-alarm:live",
])
def test_the_function_arn_names_fireline_s_own_account_and_partition(moto, arn):
    accounts = Accounts(aws.client, policy=AccountPolicy(role_name=ROLE))

    accounts.learn_home(arn)

    assert accounts.home() == OTHER
    assert accounts.role_arn(HOME).startswith(f"arn:{arn.split(':')[1]}:iam::{HOME}:")


@pytest.mark.parametrize("arn", ["", "not-an-arn", "arn:aws:sns:us-east-1:222222222222:x",
                                 "arn:aws:lambda:us-east-1:2222:function:f"])
def test_an_arn_that_is_not_a_function_s_leaves_the_account_to_sts(moto, arn):
    accounts = Accounts(aws.client)

    accounts.learn_home(arn)

    assert accounts.home() == HOME, "moto's STS says who we are"
