"""The shipped state machine, executed by moto's Step Functions, calling our real handler.

moto runs the machine's states itself (`execute_state_machine`), but its Lambda without
Docker answers every invoke with a canned string. The bridge below is the one stand-in:
moto's Lambda `invoke` imports the function's configured `Handler` (handlers.step.handler)
and calls it in-process with the payload the state machine built, as Lambda would.
"""

from __future__ import annotations

import importlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from fireline import aws
from fireline.local.lambda_context import LambdaContext

DEFINITION = Path(__file__).resolve().parents[2] / "infra" / "state-machine.asl.json"
STEP_FUNCTION = "fireline-step"
TABLE = "fireline-test-incidents"


def _bridge(self: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any,
            headers: Any, response_headers: Any) -> bytes:
    function = self.get_function(function_name, qualifier)
    module_name, _, attribute = function.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    event = json.loads(body) if body else {}
    result = handler(event, LambdaContext(function_name=function.function_name))
    return json.dumps(result).encode()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers/step.py", "# the real code is imported in-process\n")
    return buffer.getvalue()


@pytest.fixture
def state_machine(aws_env: None, local_slack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto with Step Functions executing, the step function deployed, the machine created
    from infra/state-machine.asl.json; the handlers' environment points at all of it."""
    from handlers import _runtime

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", _bridge)
    config = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):
        aws.reset_clients()
        role = aws.client("iam").create_role(
            RoleName="fireline-step", AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": ["lambda.amazonaws.com",
                                                         "states.amazonaws.com"]}}],
            }))["Role"]["Arn"]
        function_arn = aws.client("lambda").create_function(
            FunctionName=STEP_FUNCTION, Runtime="python3.12", Role=role,
            Handler="handlers.step.handler", Code={"ZipFile": _zip()})["FunctionArn"]
        definition = DEFINITION.read_text().replace("${StepFunctionArn}", function_arn)
        machine_arn = aws.client("stepfunctions").create_state_machine(
            name="fireline-playbooks", definition=definition, roleArn=role)["stateMachineArn"]
        for key, value in {
            "FIRELINE_TABLE": TABLE, "SLACK_BOT_TOKEN": "xoxb-valid",
            "FIRELINE_SLACK_CHANNEL": "#incidents",
            "FIRELINE_SLACK_API_URL": local_slack.base_url,
            "FIRELINE_STATE_MACHINE_ARN": machine_arn,
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(key, value)
        _runtime.fireline.cache_clear()
        _runtime.fireline().store.create_table()
        yield machine_arn
        _runtime.fireline.cache_clear()
    aws.reset_clients()


def wait_for(condition: Any, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `condition()` until it returns something truthy (executions run in a thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def execution_status(execution_arn: str) -> str:
    return aws.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]


def history(execution_arn: str) -> list[dict[str, Any]]:
    return aws.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000)["events"]
