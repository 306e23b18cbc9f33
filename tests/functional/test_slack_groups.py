"""Slack user groups: the local Slack's usergroups.list, and the access policy's resolver
through the real slack_sdk WebClient."""

from __future__ import annotations

import logging

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from fireline.access import groups_resolver, load_access
from fireline.config import DEFAULT_ACCESS
from fireline.errors import NotAuthorised
from fireline.local.slack_server import MISSING_SCOPE


class Clock:
    """Monotonic seconds that only move when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(url: str, token: str = "xoxb-valid") -> WebClient:
    return WebClient(token=token, base_url=url, timeout=2)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "fireline.access" and r.levelno == logging.WARNING]


@pytest.fixture
def workspace(local_slack):
    local_slack.add_usergroup("S0ONCALL", "oncall", ["U0123ALICE", "U0666MALLORY"])
    local_slack.add_usergroup("S0LEADS", "leads", ["U0789CAROL", "U0666MALLORY"])
    local_slack.add_usergroup("S0RETIRED", "retired", ["U0123ALICE"], disabled=True)
    return local_slack


# --- the local Slack --------------------------------------------------------------------------


def test_usergroups_list_shows_enabled_groups_and_their_users_when_asked(workspace):
    web = client(workspace.base_url)

    with_users = web.usergroups_list(include_users=True)["usergroups"]
    without = web.usergroups_list()["usergroups"]
    everything = web.usergroups_list(include_disabled=True, include_users=True)["usergroups"]

    assert {g["id"]: g["users"] for g in with_users} == {
        "S0ONCALL": ["U0123ALICE", "U0666MALLORY"], "S0LEADS": ["U0789CAROL", "U0666MALLORY"]}
    assert [g["handle"] for g in without] == ["oncall", "leads"]
    assert all("users" not in g for g in without)
    assert {g["id"]: g["date_delete"] > 0 for g in everything} == {
        "S0ONCALL": False, "S0LEADS": False, "S0RETIRED": True}
    assert [c.params for c in workspace.calls_to("usergroups.list")] == [
        {"include_users": "1"}, {}, {"include_disabled": "1", "include_users": "1"}]


def test_usergroups_list_without_the_scope_answers_missing_scope(workspace):
    with pytest.raises(SlackApiError) as caught:
        client(workspace.base_url, MISSING_SCOPE).usergroups_list()

    assert caught.value.response["error"] == "missing_scope"
    assert caught.value.response["needed"] == "usergroups:read"


# --- the resolver -----------------------------------------------------------------------------


def test_a_user_gets_the_ids_of_their_enabled_groups(workspace):
    groups_of = groups_resolver(client(workspace.base_url))

    assert groups_of("U0666MALLORY") == {"S0ONCALL", "S0LEADS"}
    assert groups_of("U0123ALICE") == {"S0ONCALL"}, "a disabled group is not a membership"
    assert groups_of("U0999NOBODY") == frozenset()


def test_lookups_inside_the_ttl_share_one_call_and_a_stale_list_is_fetched_again(workspace):
    clock = Clock()
    groups_of = groups_resolver(client(workspace.base_url), ttl_seconds=300, clock=clock)

    assert groups_of("U0123ALICE") == {"S0ONCALL"}
    workspace.add_usergroup("S0DBA", "dba", ["U0123ALICE"])
    clock.now += 299
    assert groups_of("U0789CAROL") == {"S0LEADS"}
    assert groups_of("U0123ALICE") == {"S0ONCALL"}, "still the kept list"
    assert workspace.request_counts()["usergroups.list"] == 1
    assert workspace.calls_to("usergroups.list")[0].params == {"include_users": "1"}

    clock.now += 1
    assert groups_of("U0123ALICE") == {"S0ONCALL", "S0DBA"}
    assert workspace.request_counts()["usergroups.list"] == 2


@pytest.mark.parametrize(("token", "reason"), [
    (MISSING_SCOPE, "missing_scope"),
    ("xoxb-invalid-auth", "invalid_auth"),
    ("xoxb-server-error", "fatal_error (HTTP 500)"),
])
def test_a_slack_error_means_no_groups_and_a_log_line(workspace, caplog, token, reason):
    groups_of = groups_resolver(client(workspace.base_url, token))

    assert groups_of("U0666MALLORY") == frozenset()
    assert warnings_of(caplog) == [
        f"slack usergroups.list failed: {reason}; user groups grant nothing until it works"]


def test_unreachable_slack_means_no_groups_and_is_asked_again_next_time(
        workspace, closed_port_url, caplog):
    web = client(closed_port_url)
    groups_of = groups_resolver(web)

    assert groups_of("U0666MALLORY") == frozenset()
    [warning] = warnings_of(caplog)
    assert warning.startswith("slack usergroups.list failed: unreachable (")

    web.base_url = workspace.base_url  # Slack is back: a failure was not kept
    assert groups_of("U0666MALLORY") == {"S0ONCALL", "S0LEADS"}
    assert workspace.request_counts()["usergroups.list"] == 1


def test_the_policy_with_groups_from_slack(workspace):
    policy = load_access(DEFAULT_ACCESS)
    groups_of = groups_resolver(client(workspace.base_url))

    policy.check("approve", user_id="U0666MALLORY", groups=groups_of("U0666MALLORY"),
                 channel_id="C0123INCIDENTS", playbook="point-in-time-restore")

    failing = groups_resolver(client(workspace.base_url, "xoxb-invalid-auth"))
    with pytest.raises(NotAuthorised, match="you must be an approver"):
        policy.check("approve", user_id="U0666MALLORY", groups=failing("U0666MALLORY"),
                     channel_id="C0123INCIDENTS", playbook="point-in-time-restore")
