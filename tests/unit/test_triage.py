"""Triage and runbook validation: pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from fireline.alarm import AlarmEvent
from fireline.config import DEFAULT_RUNBOOK
from fireline.errors import InvalidRunbook
from fireline.runbook import load_runbook, read_policy_yaml
from fireline.triage import decide

RUNBOOKS = Path(__file__).parent / "runbooks"
ACCESS = Path(__file__).parent / "access"
DEFAULT = load_runbook(DEFAULT_RUNBOOK)
CUSTOM = load_runbook(RUNBOOKS / "custom.yaml")


def lambda_alarm(name: str = "checkout-prod-errors", **fields) -> AlarmEvent:
    base = {
        "delivery": "sns", "delivery_id": "d-1", "alarm_name": name, "state": "ALARM",
        "state_changed_at": datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
        "account_id": "123456789012", "region": "us-east-1", "namespace": "AWS/Lambda",
        "metric_name": "Errors", "dimensions": {"FunctionName": "checkout"},
    }
    return AlarmEvent(**{**base, **fields})


def test_production_lambda_errors_revert_the_alias_automatically():
    decision = decide(lambda_alarm(), DEFAULT)

    assert decision.severity == "SEV-2"
    assert decision.rule == "lambda-errors-production-by-name"
    assert decision.playbook == "lambda-alias-revert"
    assert decision.params == {"function_name": "checkout"}
    assert decision.approval == "auto"
    assert any("alarm name checkout-prod-errors ~ *prod*" in r for r in decision.reasons)
    assert any("default of lambda-alias-revert" in r for r in decision.reasons)


def test_production_tag_matches_without_prod_in_the_name():
    decision = decide(lambda_alarm("checkout-errors"), DEFAULT, {"env": "production"})

    assert decision.rule == "lambda-errors-production"
    assert decision.severity == "SEV-2"


def test_other_environments_only_plan_and_post():
    decision = decide(lambda_alarm("checkout-staging-errors"), DEFAULT)

    assert decision.rule == "lambda-errors-other"
    assert decision.approval == "monitor"


def test_latency_is_sev3_without_playbook():
    decision = decide(lambda_alarm(metric_name="Duration"), DEFAULT)

    assert (decision.severity, decision.rule, decision.playbook) == ("SEV-3", "latency", None)
    assert decision.approval is None


def test_no_rule_gives_the_default_severity_and_says_so():
    decision = decide(lambda_alarm(namespace="Custom/Thing", metric_name="Widgets"), DEFAULT)

    assert decision.severity == "SEV-3"
    assert decision.rule is None and decision.playbook is None
    assert decision.reasons == ("no rule matched; default severity SEV-3",)


def test_ok_state_does_not_match_alarm_rules():
    decision = decide(lambda_alarm(state="OK"), DEFAULT)

    assert decision.playbook is None


def test_resource_dimension_gives_the_alias():
    alarm = lambda_alarm(dimensions={"FunctionName": "checkout", "Resource": "checkout:prod"})

    assert decide(alarm, DEFAULT).params == {"function_name": "checkout", "alias": "prod"}


@pytest.mark.parametrize("tags", [
    {"fireline:severity": "sev-1", "fireline:approval": "required"},
    [{"Key": "fireline:severity", "Value": "SEV-1"},
     {"Key": "fireline:approval", "Value": "required"}],
])
def test_alarm_tags_override_severity_and_approval(tags):
    as_map = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}

    decision = decide(lambda_alarm(), DEFAULT, as_map)

    assert decision.severity == "SEV-1"
    assert decision.approval == "required"
    assert any("fireline:approval=required" in r for r in decision.reasons)


def test_tag_can_switch_the_playbook_off_and_bad_tags_are_ignored_with_a_reason():
    off = decide(lambda_alarm(), DEFAULT, {"fireline:playbook": "none"})
    bad = decide(lambda_alarm(), DEFAULT, {"fireline:severity": "urgent",
                                           "fireline:playbook": "reboot"})

    assert off.playbook is None and off.approval is None
    assert bad.severity == "SEV-2" and bad.playbook == "lambda-alias-revert"
    assert any("'urgent' ignored" in r for r in bad.reasons)
    assert any("'reboot' ignored" in r for r in bad.reasons)


def test_tags_on_the_alarm_payload_are_used_when_no_tags_are_passed():
    decision = decide(lambda_alarm("checkout-errors", tags={"env": "prod"}), DEFAULT)

    assert decision.rule == "lambda-errors-production"


def test_every_match_field_and_templates_from_dimensions_and_tags():
    alarm = lambda_alarm("payments-api-errors", dimensions={"FunctionName": "payments-api"})

    decision = decide(alarm, CUSTOM, {"alias": "blue"})

    assert decision.severity == "SEV-1"
    assert decision.channel == "#payments"
    assert decision.params == {"function_name": "payments-api", "alias": "blue"}


def test_a_missing_template_field_drops_the_playbook_with_the_reason():
    alarm = lambda_alarm("payments-api-errors", dimensions={"FunctionName": "payments-api"})

    decision = decide(alarm, CUSTOM, {})

    assert decision.playbook is None
    assert any("the alarm has no tag alias" in r for r in decision.reasons)


def test_rules_for_ok_state_and_default_channel():
    decision = decide(lambda_alarm(state="OK"), CUSTOM)
    unmatched = decide(lambda_alarm(region="ap-south-1"), CUSTOM)

    assert (decision.rule, decision.severity) == ("anything-on-ok", "SEV-4")
    assert (unmatched.rule, unmatched.severity, unmatched.channel) == (None, "SEV-4", "#ops")


@pytest.mark.parametrize(("file", "expected"), [
    ("unknown_field.yaml", "rule 'lambda-errors' (rules[0]), field match.metrik: unknown field"),
    ("bad_severity.yaml", "rule 'loud-rule' (rules[1]), field severity:"),
    ("unknown_playbook.yaml",
     "rule 'reboot-everything' (rules[0]), field playbook: no playbook named 'reboot-the-world'"),
    ("unknown_param.yaml",
     "rule 'revert' (rules[0]), field params: function not a parameter of lambda-alias-revert"),
    ("chain_and_playbook.yaml",
     "rule 'both-ways' (rules[0]), field (the rule): Value error, give either playbook"),
    ("chain_unknown_param.yaml",
     "rule 'frontend' (rules[0]), field run[1].params: functoin not a parameter of "
     "lambda-alias-revert"),
    ("not_yaml.yaml", "not valid YAML"),
    ("missing.yaml", "cannot read"),
])
def test_invalid_runbook_files_name_file_rule_and_field(file, expected):
    with pytest.raises(InvalidRunbook) as caught:
        load_runbook(RUNBOOKS / file)

    assert str(RUNBOOKS / file) in caught.value.message
    assert expected in caught.value.message


def test_a_file_that_is_not_yaml_is_described_in_pure_python_pyyaml_words():
    path = RUNBOOKS / "not_yaml.yaml"
    with pytest.raises(yaml.YAMLError) as pure:
        yaml.safe_load(path.read_text())

    with pytest.raises(InvalidRunbook) as caught:
        load_runbook(path)

    assert caught.value.message == f"{path}: not valid YAML: {pure.value}"
    assert "expected ',' or '}', but got '<stream end>'" in caught.value.message


POLICY_FILES = sorted(path for path in [*RUNBOOKS.glob("*.yaml"), *ACCESS.glob("*.yaml"),
                                         *DEFAULT_RUNBOOK.parent.glob("*.yaml")]
                      if path.name != "not_yaml.yaml")


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_policy_files_read_the_same_as_with_pure_python_pyyaml(path):
    expected = yaml.safe_load(path.read_text())

    assert read_policy_yaml(path) == ({} if expected is None else expected)


def test_a_restore_chosen_by_tag_takes_its_table_from_the_alarm_and_needs_approval():
    alarm = lambda_alarm("orders-integrity", namespace="AWS/DynamoDB",
                         metric_name="UserErrors", dimensions={"TableName": "orders"})

    decision = decide(alarm, DEFAULT, {"fireline:playbook": "point-in-time-restore"})

    assert decision.playbook == "point-in-time-restore"
    assert decision.params == {"engine": "dynamodb", "source": "orders"}
    assert decision.approval == "required"
    assert any("default of point-in-time-restore" in r for r in decision.reasons)


def test_a_chain_renders_every_link_and_takes_the_strictest_approval():
    chain = load_runbook(RUNBOOKS / "chain.yaml")

    decision = decide(lambda_alarm(tags={"table": "orders"}), chain)

    assert [(c.playbook, c.params) for c in decision.chain] == [
        ("lambda-alias-revert", {"function_name": "checkout"}),
        ("point-in-time-restore", {"engine": "dynamodb", "source": "orders"}),
    ]
    assert (decision.playbook, decision.params) == ("lambda-alias-revert",
                                                    {"function_name": "checkout"})
    assert decision.approval == "required"
    assert any("approval required: the default of point-in-time-restore" in r
               for r in decision.reasons)


def test_a_chain_link_without_its_template_field_runs_nothing_and_says_why():
    chain = load_runbook(RUNBOOKS / "chain.yaml")

    decision = decide(lambda_alarm(), chain)  # no `table` tag

    assert decision.playbook is None and decision.chain == ()
    assert any("lambda-alias-revert -> point-in-time-restore not run" in r and "tag table" in r
               for r in decision.reasons)


def test_a_playbook_tag_replaces_the_rule_chain():
    chain = load_runbook(RUNBOOKS / "chain.yaml")

    decision = decide(lambda_alarm(tags={"table": "orders"}), chain,
                      {"fireline:playbook": "lambda-alias-revert"})

    assert decision.chain == ()
    assert (decision.playbook, decision.params) == ("lambda-alias-revert",
                                                    {"function_name": "checkout"})
