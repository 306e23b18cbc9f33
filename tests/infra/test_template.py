"""The SAM template against the code it deploys.

cfn-lint checks the template twice: as written (cfn-lint runs SAM's translator itself) and
as CloudFormation will see it after SAM's translator, where the IAM roles, the Function URL
and the state machine's inline definition (validated against the ASL schema) exist. The IAM
checks compare the roles with the boto3 calls found in the source (tests/support/boto_calls.py),
so a new call without a grant fails here, not in an incident.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from fireline.config import ENVIRONMENT
from fireline.incidents import TTL_ATTRIBUTE, table_definition
from tests.support.boto_calls import Call, calls_by_module, calls_from
from tests.support.template import TEMPLATE, lint_problems, source, translated

EVERYTHING_ON = {
    "AlarmTopicArns": ["arn:aws:sns:eu-west-1:123456789012:checkout-alarms",
                       "arn:aws:sns:eu-west-1:123456789012:search-alarms"],
    "CreateAlarmTopic": "true",
    "EnableEventBridgeRule": "true",
    "ManagedBucketArns": ["arn:aws:s3:::shop-site", "arn:aws:s3:::docs-site"],
    "CrossAccountRoleName": "fireline-responder",
    "CrossAccountExternalId": "ext-123",
    "OpsEmail": "oncall@example.com",
    "EnableTracing": "true",
}
PARAMETER_SETS = {"defaults": {}, "everything-on": EVERYTHING_ON}

# IAM names for the operations whose action is not `<prefix>:<Operation>`, and the actions
# an operation needs besides its own (a restore writes into the table it creates).
IAM_PREFIX = {"stepfunctions": "states"}
IAM_ACTIONS: dict[tuple[str, str], set[str]] = {
    ("lambda", "Invoke"): {"lambda:InvokeFunction"},
    ("sts", "GetCallerIdentity"): set(),  # needs no permission
    ("s3", "ListObjectVersions"): {"s3:ListBucketVersions"},
    ("s3", "HeadObject"): {"s3:GetObject", "s3:GetObjectVersion"},
    ("s3", "CopyObject"): {"s3:GetObjectVersion", "s3:PutObject"},
    ("s3", "DeleteObject"): {"s3:DeleteObject", "s3:DeleteObjectVersion"},
    ("dynamodb", "RestoreTableToPointInTime"): {
        "dynamodb:RestoreTableToPointInTime", "dynamodb:BatchWriteItem", "dynamodb:PutItem",
        "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query",
        "dynamodb:Scan"},
    ("rds", "RestoreDBClusterToPointInTime"): {
        "rds:RestoreDBClusterToPointInTime", "rds:AddTagsToResource"},
    ("rds", "RestoreDBInstanceToPointInTime"): {
        "rds:RestoreDBInstanceToPointInTime", "rds:AddTagsToResource"},
    ("rds", "CreateDBInstance"): {"rds:CreateDBInstance", "rds:AddTagsToResource"},
}
# API Gateway's management API is authorised by HTTP verb on the resource path.
APIGATEWAY_VERB = {"Get": "apigateway:GET", "Flush": "apigateway:DELETE"}

# Called only where no deployed function runs it: `fireline init-table` and the demo create
# the table; in AWS the template does.
NOT_IN_AWS = {("dynamodb", "CreateTable")}
# Added by SAM itself for the alarm path's on-failure destination.
ADDED_BY_SAM = {"sqs:SendMessage"}

READ_ONLY = re.compile(r":(Get|List|Describe|Lookup|BatchGet|Query|Scan|Search)")
# Not reads, but IAM has no resource to scope them to and they change nothing of the user's:
# StopQuery ends Fireline's own Logs Insights query when its time budget runs out.
UNSCOPABLE_HARMLESS = {"logs:StopQuery"}

HANDLERS = {
    "AlarmFunction": "handlers.alarm",
    "SlackFunction": "handlers.slack",
    "InvokeFunction": "handlers.invoke",
    "StepFunction": "handlers.step",
}


def iam_actions(call: Call | tuple[str, str]) -> set[str]:
    service, operation = (call.service, call.operation) if isinstance(call, Call) else call
    if (service, operation) in IAM_ACTIONS:
        return IAM_ACTIONS[(service, operation)]
    if service == "apigateway":
        verb = next(v for prefix, v in APIGATEWAY_VERB.items() if operation.startswith(prefix))
        return {verb}
    return {f"{IAM_PREFIX.get(service, service)}:{operation}"}


def _branches(node: Any) -> list[Any]:
    """Both sides of every Fn::If: a grant counts if any configuration can make it."""
    if isinstance(node, dict) and "Fn::If" in node:
        _, yes, no = node["Fn::If"]
        return [*_branches(yes), *_branches(no)]
    if node == {"Ref": "AWS::NoValue"}:
        return []
    return [node]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for statement in document["Statement"]:
        found.extend(_branches(statement))
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    role_ref = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_ref]["Properties"]
    found = []
    for policy in role.get("Policies", []):
        found.extend(statements(policy["PolicyDocument"]))
    for arn in role.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            found.extend(statements(resources[arn["Ref"]]["Properties"]["PolicyDocument"]))
    return found


def granted_actions(template: dict[str, Any], function: str) -> set[str]:
    return {action for s in role_statements(template, function) if s["Effect"] == "Allow"
            for action in _listed(s["Action"])}


def required_actions(handler_module: str) -> set[str]:
    calls = {c for c in calls_from(handler_module) if (c.service, c.operation) not in NOT_IN_AWS}
    return set().union(*(iam_actions(c) for c in calls))


def evaluate(node: Any, parameters: dict[str, Any]) -> Any:
    """The few intrinsic functions the alarm-topic slots use, as CloudFormation applies them."""
    if not isinstance(node, dict):
        return node
    (function, args), = node.items()
    if function == "Ref":
        return parameters.get(args, "" if args != "AlarmTopicArns" else [""])
    if function == "Fn::Join":
        return args[0].join(evaluate(args[1], parameters))
    if function == "Fn::Split":
        return evaluate(args[1], parameters).split(args[0])
    if function == "Fn::Select":
        return evaluate(args[1], parameters)[int(args[0])]
    if function == "Fn::Sub":
        text, names = args
        for name, value in names.items():
            text = text.replace("${" + name + "}", evaluate(value, parameters))
        return text
    if function == "Fn::Equals":
        return evaluate(args[0], parameters) == evaluate(args[1], parameters)
    if function == "Fn::Not":
        return not evaluate(args[0], parameters)
    raise AssertionError(f"no evaluator for {function}")


@pytest.fixture(scope="module", params=list(PARAMETER_SETS))
def template(request: pytest.FixtureRequest) -> dict[str, Any]:
    return translated(PARAMETER_SETS[request.param])


@pytest.fixture(scope="module")
def full_template() -> dict[str, Any]:
    return translated(EVERYTHING_ON)


# --- cfn-lint -----------------------------------------------------------------------------

def test_cfn_lint_passes_on_the_sam_template() -> None:
    assert lint_problems(TEMPLATE.read_text()) == []


def test_cfn_lint_passes_on_the_translated_template(template: dict[str, Any]) -> None:
    assert lint_problems(json.dumps(template)) == []


def test_cfn_lint_would_catch_a_broken_template() -> None:
    """The check above can fail: a wrong property in the translated template is reported."""
    broken = translated()
    broken["Resources"]["IncidentsTable"]["Properties"]["BillingMode"] = "FREE"
    assert any("E3030" in p or "BillingMode" in p for p in lint_problems(json.dumps(broken)))


# --- the functions ------------------------------------------------------------------------

def test_every_handler_points_at_an_importable_function(template: dict[str, Any]) -> None:
    functions = {name: r["Properties"] for name, r in template["Resources"].items()
                 if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == set(HANDLERS)
    for name, properties in functions.items():
        module_name, _, attribute = properties["Handler"].rpartition(".")
        assert module_name == HANDLERS[name]
        handler = getattr(importlib.import_module(module_name), attribute)
        assert callable(handler), f"{name}: {properties['Handler']} is not callable"
        assert properties["Runtime"] in {"python3.12", "python3.13"}
        assert properties["Architectures"] == ["arm64"]


def test_no_invocation_outlives_a_slack_catch_up_s_hold(template: dict[str, Any]) -> None:
    """A live catch-up is never overtaken (nothing posted twice): its hold on the thread
    lasts as long as any function may run."""
    from fireline.timeline import CATCH_UP_LEASE

    timeouts = {name: r["Properties"].get("Timeout", 3) for name, r in template["Resources"].items()
                if r["Type"] == "AWS::Lambda::Function"}
    assert timeouts and all(
        seconds <= CATCH_UP_LEASE.total_seconds() for seconds in timeouts.values()), timeouts


def test_every_environment_variable_the_template_sets_is_read_by_the_code(
        full_template: dict[str, Any]) -> None:
    code = "\n".join(path.read_text() for package in ("fireline", "handlers")
                     for path in (TEMPLATE.parents[1] / package).rglob("*.py"))
    for name, resource in full_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        for variable in resource["Properties"]["Environment"]["Variables"]:
            if variable.startswith("POWERTOOLS_"):
                continue  # read by Powertools
            assert variable in ENVIRONMENT or f'"{variable}"' in code, (
                f"{name} sets {variable}, which nothing reads")


# --- least privilege ----------------------------------------------------------------------

def test_the_source_scan_finds_the_calls_it_must() -> None:
    """Guards the scan itself: if it found nothing, the IAM checks would pass vacuously."""
    alarm_calls = {(c.service, c.operation) for c in calls_from("handlers.alarm")}
    assert {("lambda", "UpdateAlias"), ("dynamodb", "PutItem"),
            ("stepfunctions", "StartExecution"), ("apigateway", "FlushStageCache"),
            ("s3", "CopyObject"), ("rds", "RestoreDBClusterToPointInTime")} <= alarm_calls
    assert ("lambda", "Invoke") in {(c.service, c.operation)
                                    for c in calls_from("handlers.slack")}
    by_module = calls_by_module()
    # Powertools' SecretsProvider makes its call on the client it is handed; a pydantic
    # SecretStr's get_secret_value() is no call at all.
    assert {(c.service, c.operation) for c in by_module["fireline.slack_requests"]} == {
        ("secretsmanager", "GetSecretValue")}
    assert by_module["fireline.notify"] == set()
    everywhere = {(c.service, c.operation) for calls in by_module.values() for c in calls}
    assert everywhere >= NOT_IN_AWS, "an exemption for a call the code no longer makes"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_every_call_the_code_makes_is_granted_to_the_function_that_makes_it(
        template: dict[str, Any], function: str) -> None:
    missing = required_actions(HANDLERS[function]) - granted_actions(template, function)
    assert not missing, f"{function} calls but may not: {sorted(missing)}"


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_no_function_is_granted_an_action_its_code_never_calls(
        full_template: dict[str, Any], function: str) -> None:
    extra = (granted_actions(full_template, function) - required_actions(HANDLERS[function])
             - ADDED_BY_SAM)
    extra = {a for a in extra if not a.startswith(("logs:", "xray:"))}  # AWS managed policies
    assert not extra, f"{function} may but never does: {sorted(extra)}"


def test_no_write_action_is_allowed_on_every_resource_without_a_condition(
        template: dict[str, Any]) -> None:
    for name, resource in template["Resources"].items():
        documents = []
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents = [properties["PolicyDocument"]]
        for statement in (s for d in documents for s in statements(d)):
            if statement["Effect"] != "Allow" or "Condition" in statement:
                continue
            if "*" not in _listed(statement["Resource"]):
                continue
            writes = [a for a in _listed(statement["Action"])
                      if not READ_ONLY.search(a) and a not in UNSCOPABLE_HARMLESS]
            assert not writes, f"{name} allows {writes} on * without a condition"


def test_changes_to_existing_resources_need_the_managed_tag(full_template: dict[str, Any]) -> None:
    policy = full_template["Resources"]["RemediationPolicy"]["Properties"]["PolicyDocument"]
    tagged = next(s for s in statements(policy) if s.get("Sid") == "ChangeTaggedResources")
    assert tagged["Condition"] == {
        "StringEquals": {"aws:ResourceTag/fireline:managed": "true"}}
    assert "lambda:UpdateAlias" in tagged["Action"]


def test_the_cross_account_role_is_granted_only_when_named() -> None:
    def assumable(template: dict[str, Any]) -> list[dict[str, Any]]:
        policy = template["Resources"]["CorePolicy"]["Properties"]["PolicyDocument"]
        return [s for s in statements(policy) if "sts:AssumeRole" in _listed(s["Action"])]

    (grant,) = assumable(translated(EVERYTHING_ON))
    assert grant["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${CrossAccountRoleName}"}
    conditions = source()["Conditions"]
    assert conditions["HasCrossAccountRole"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CrossAccountRoleName"}, ""]}]}


# --- the store ----------------------------------------------------------------------------

def test_the_incidents_table_is_the_one_the_store_uses(template: dict[str, Any]) -> None:
    table = template["Resources"]["IncidentsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    expected = table_definition("unused")
    assert properties["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == expected["KeySchema"]
    assert (sorted(properties["AttributeDefinitions"], key=str)
            == sorted(expected["AttributeDefinitions"], key=str))
    assert properties["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE,
                                                     "Enabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


# --- wiring -------------------------------------------------------------------------------

def test_alarms_reach_the_alarm_handler_every_way(full_template: dict[str, Any]) -> None:
    resources = full_template["Resources"]
    subscriptions = [r["Properties"] for r in resources.values()
                     if r["Type"] == "AWS::SNS::Subscription"
                     and r["Properties"]["Protocol"] == "lambda"]
    topics = [s["TopicArn"] for s in subscriptions]
    assert {"Ref": "AlarmTopic"} in topics
    slots = [evaluate(t, EVERYTHING_ON) for t in topics if t != {"Ref": "AlarmTopic"}]
    assert slots == [*EVERYTHING_ON["AlarmTopicArns"], "", "", ""]
    # An empty slot's subscription and permission exist only when their condition holds.
    conditions = full_template["Conditions"]
    assert [evaluate(conditions[f"HasAlarmTopic{n}"], EVERYTHING_ON) for n in range(1, 6)] == [
        True, True, False, False, False]
    assert not any(evaluate(conditions[f"HasAlarmTopic{n}"], {}) for n in range(1, 6))
    assert all(s["Endpoint"] == {"Fn::GetAtt": ["AlarmFunction", "Arn"]} for s in subscriptions)
    principals = {r["Properties"]["Principal"] for r in resources.values()
                  if r["Type"] == "AWS::Lambda::Permission"
                  and r["Properties"]["FunctionName"] == {"Ref": "AlarmFunction"}}
    assert principals == {"sns.amazonaws.com", "events.amazonaws.com",
                          "lambda.alarms.cloudwatch.amazonaws.com"}
    pattern = resources["AlarmStateChangeRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    on_failure = resources["AlarmFunctionEventInvokeConfig"]["Properties"]["DestinationConfig"]
    assert on_failure["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["AlarmDeadLetterQueue", "Arn"]}


def test_fireline_watches_itself_on_a_topic_it_never_handles(
        full_template: dict[str, Any]) -> None:
    resources = full_template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items()
              if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {json.dumps(d["Value"]) for a in alarms.values() for d in a["Dimensions"]}
    for function in HANDLERS:
        assert json.dumps({"Ref": function}) in watched, f"no alarm on {function}"
    assert json.dumps({"Fn::GetAtt": ["AlarmDeadLetterQueue", "QueueName"]}) in watched
    for name, alarm in alarms.items():
        assert alarm["AlarmName"]["Fn::Sub"].startswith("fireline-self-"), name
        actions = alarm.get("AlarmActions", []) + alarm.get("OKActions", [])
        assert actions and all(a == {"Ref": "OpsTopic"} for a in actions), name
    # The EventBridge rule leaves Fireline's own alarms out, so they never come back in.
    pattern = resources["AlarmStateChangeRule"]["Properties"]["EventPattern"]
    assert pattern["detail"]["alarmName"] == [{"anything-but": {"prefix": "fireline-self-"}}]


def test_the_state_machine_is_the_tested_definition_bound_to_the_step_handler(
        full_template: dict[str, Any]) -> None:
    machine = full_template["Resources"]["PlaybookStateMachine"]["Properties"]
    definition = machine["Definition"] if "Definition" in machine else machine["DefinitionString"]
    text = json.dumps(definition)
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(machine["DefinitionSubstitutions"]) == {"StepFunctionArn"}
    assert machine["DefinitionSubstitutions"]["StepFunctionArn"] == {
        "Fn::GetAtt": ["StepFunction", "Arn"]}
    # The functions find the machine by the name the template gives it.
    name = machine["StateMachineName"]["Fn::Sub"]
    env = full_template["Resources"]["AlarmFunction"]["Properties"]["Environment"]["Variables"]
    assert env["FIRELINE_STATE_MACHINE_ARN"]["Fn::Sub"].endswith(f":stateMachine:{name}")


def test_the_watch_check_runs_every_minute(full_template: dict[str, Any]) -> None:
    rule = full_template["Resources"]["StepFunctionEveryMinute"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Targets"]
    assert json.loads(target["Input"]) == {"action": "check"}


def test_outputs_give_what_the_user_needs_next(full_template: dict[str, Any]) -> None:
    outputs = full_template["Outputs"]
    assert outputs["SlackRequestUrl"]["Value"] == {
        "Fn::GetAtt": ["SlackFunctionUrl", "FunctionUrl"]}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert outputs["IncidentsTableName"]["Value"] == {"Ref": "IncidentsTable"}
    url = full_template["Resources"]["SlackFunctionUrl"]["Properties"]
    assert url["AuthType"] == "NONE"  # requests are signature-verified by the handler


def _machine_template(definition: dict[str, Any]) -> str:
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Machine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "Definition": definition,
            "DefinitionSubstitutions": {
                "StepFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:step"},
            "RoleArn": "arn:aws:iam::123456789012:role/fireline-machine"}}}})


def test_the_state_machine_definition_is_valid_asl() -> None:
    """cfn-lint's E3601 checks a Definition against the States Language schema: every
    state's type and fields, and every Next and StartAt naming a state that exists. (It
    executes in moto in tests/functional/test_state_machine.py.)"""
    definition = json.loads((TEMPLATE.parent / "state-machine.asl.json").read_text())
    assert lint_problems(_machine_template(definition)) == []

    dangling = {**definition, "StartAt": "Nowhere"}
    assert any(p.startswith("E3601") for p in lint_problems(_machine_template(dangling)))


def test_sam_build_finds_a_make_target_for_every_function() -> None:
    """`sam build` (BuildMethod: makefile) runs `make build-<Function>`; a function without
    its target fails the build, not this test suite, unless this checks it."""
    functions = [name for name, r in source()["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"]
    assert sorted(functions) == sorted(HANDLERS)
    for name in functions:
        assert source()["Resources"][name]["Metadata"] == {"BuildMethod": "makefile"}
    makefile = (TEMPLATE.parents[1] / "Makefile").read_text()
    listed = re.search(r"^FUNCTIONS := (.+)$", makefile, re.MULTILINE)
    assert listed and sorted(listed.group(1).split()) == sorted(functions)
    assert "$(addprefix build-,$(FUNCTIONS)):" in makefile
