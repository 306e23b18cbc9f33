"""infra/state-machine.asl.json executed by moto's Step Functions, driving a restore through
handlers.step.handler: Advance, Wait/Choice, and the approval parked on a task token."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fireline import aws
from fireline.app import RunRequest
from fireline.errors import SelfApprovalRefused
from fireline.local.database_fixture import create_pitr_table
from fireline.local.lambda_context import LambdaContext
from fireline.local.lambda_fixture import deploy_versions
from tests.support.step_functions import execution_status, history, wait_for

SOURCE = "orders"
FUNCTION = "orders-api"


@pytest.fixture
def world(state_machine: str) -> dict[str, Any]:
    table = create_pitr_table(aws.client, SOURCE, items=[{"pk": "order-1", "total": 1}])
    deploy_versions(aws.client, FUNCTION, versions=1, alias="live",
                    environment={"TABLE_NAME": SOURCE})
    return table


def _app():
    from handlers import _runtime

    return _runtime.fireline()


def _start(world: dict[str, Any]) -> Any:
    return _app().run(RunRequest(
        playbook="point-in-time-restore", requested_by="bob",
        params={"engine": "dynamodb", "source": SOURCE,
                "restore_to": world["latest"].isoformat(),
                "cutover": f"{FUNCTION}:TABLE_NAME", "alias": "live"}))


def _parked(incident_id: str) -> Any:
    return wait_for(lambda: _app().store.get(incident_id).task_token,
                    what="the machine to park on its approval task token")


def _states_entered(execution_arn: str) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in history(execution_arn)
            if "stateEnteredEventDetails" in event]


def _env() -> dict[str, str]:
    return aws.client("lambda").get_function_configuration(
        FunctionName=FUNCTION, Qualifier="live")["Environment"]["Variables"]


def test_the_machine_runs_a_restore_from_start_to_done_through_the_approval(world):
    started = _start(world)
    incident = _app().store.get(started.incident_id)
    assert incident.execution_arn, "a long-running playbook goes to the state machine"
    _parked(started.incident_id)
    assert execution_status(incident.execution_arn) == "RUNNING"
    with pytest.raises(SelfApprovalRefused):
        _app().approve(started.incident_id, "bob")

    _app().approve(started.incident_id, "alice")

    wait_for(lambda: execution_status(incident.execution_arn) != "RUNNING",
             what="the execution to end")
    assert execution_status(incident.execution_arn) == "SUCCEEDED"
    done = _app().store.get(started.incident_id)
    assert (done.status, done.playbook_state, done.approved_by) == ("mitigated", "done", "alice")
    assert _env()["TABLE_NAME"] == done.outcome["after"]["target"]
    states = _states_entered(incident.execution_arn)
    assert states[:3] == ["Advance", "Route", "AwaitApproval"]
    assert states[-1] == "Done"
    # plan, then restore, wait-available, reapply-settings, cutover, verify: one Advance each
    assert states.count("Advance") == 6
    waits = [e for e in history(incident.execution_arn) if e["type"] == "TaskSubmitted"]
    assert waits, "the approval task was submitted and waited for its token"


def test_the_thread_is_saved_before_the_machine_starts(world, local_slack):
    """The machine's steps post from other invocations: they find the thread on the
    incident, so the run has one thread, however fast the machine starts."""
    threads_at_start: list[Any] = []
    aws.reset_clients()  # clients copy their session's handlers when made: make them anew
    aws._session().events.register(
        "before-parameter-build.sfn.StartExecution",
        lambda params, **_: threads_at_start.append(
            _app().store.get(json.loads(params["input"])["incident_id"]).slack))

    started = _start(world)

    assert threads_at_start and threads_at_start[0] is not None
    _parked(started.incident_id)
    assert len(list(local_slack.threads())) == 1


def test_a_rejection_ends_the_machine_without_changing_anything(world):
    started = _start(world)
    execution_arn = _app().store.get(started.incident_id).execution_arn
    _parked(started.incident_id)

    _app().reject(started.incident_id, "alice")

    wait_for(lambda: execution_status(execution_arn) != "RUNNING", what="the execution to end")
    assert execution_status(execution_arn) == "SUCCEEDED"
    assert _states_entered(execution_arn)[-1] == "Rejected"
    assert _env()["TABLE_NAME"] == SOURCE
    assert not [t for t in aws.client("dynamodb").list_tables()["TableNames"]
                if t.startswith(f"{SOURCE}-restored-")]


def test_an_approval_before_the_machine_parks_is_not_lost(world):
    from fireline.incidents import Incident

    # The approval lands first; the machine's park call then finds nothing to wait for
    # and releases itself with the token it was given.
    started = _start(world)
    execution_arn = _app().store.get(started.incident_id).execution_arn
    _parked(started.incident_id)

    def forget_token(current: Incident) -> Incident:
        current.task_token = None
        return current

    token = _app().store.get(started.incident_id).task_token
    _app().store.update(started.incident_id, forget_token)
    _app().approve(started.incident_id, "alice")  # no token: nothing to send
    assert execution_status(execution_arn) == "RUNNING"

    from handlers.step import handler

    answer = handler({"action": "await-approval", "incident_id": started.incident_id,
                      "task_token": token}, LambdaContext(function_name="fireline-step"))

    assert answer["status"] == "parked"
    wait_for(lambda: execution_status(execution_arn) != "RUNNING", what="the execution to end")
    assert execution_status(execution_arn) == "SUCCEEDED"


@pytest.mark.parametrize(("event", "error"), [
    ({"action": "explode", "incident_id": "INC-1"}, "InvalidRequest"),
    ({"action": "await-approval", "incident_id": "INC-1"}, "InvalidRequest"),
    ("not an object", "InvalidRequest"),
    ({"action": "advance", "incident_id": "INC-20991231-000000"}, "IncidentNotFound"),
])
def test_the_step_handler_answers_bad_events_with_a_typed_failure(state_machine, event, error):
    from handlers.step import handler

    answer = handler(event, LambdaContext(function_name="fireline-step"))

    assert answer["status"] == "failed"
    assert answer["error"] == error
