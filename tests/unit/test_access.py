"""The Slack access policy: the shipped example, each decision, and files that do not load."""

from __future__ import annotations

from pathlib import Path

import pytest

from fireline.access import CHANGING_VERBS, READ_ONLY_VERBS, cached_access, load_access
from fireline.config import DEFAULT_ACCESS
from fireline.errors import InvalidRunbook, NotAuthorised

FILES = Path(__file__).parent / "access"
POLICY = load_access(DEFAULT_ACCESS)  # runbooks/access.yaml, the documented example

INCIDENTS = "C0123INCIDENTS"
ELSEWHERE = "C0999RANDOM"
NONE: frozenset[str] = frozenset()
ALICE, BOB, CAROL, MALLORY = "U0123ALICE", "U0456BOB", "U0789CAROL", "U0666MALLORY"
ONCALL, LEADS, DBA = frozenset({"S0ONCALL"}), frozenset({"S0LEADS"}), frozenset({"S0DBA"})
# Verbs a responder may use that need nothing more (run and the decisions are tested apart).
RESPONDER_VERBS = ("ack", "resolve", "undo")


def refusal(policy, verb, *, user_id, groups=NONE, channel_id=INCIDENTS, playbook=None) -> str:
    with pytest.raises(NotAuthorised) as caught:
        policy.check(verb, user_id=user_id, groups=groups, channel_id=channel_id,
                     playbook=playbook)
    return caught.value.message


def approval_refusal(policy, *, user_id, playbook, requested_by, groups=NONE) -> str:
    with pytest.raises(NotAuthorised) as caught:
        policy.check_approval(user_id=user_id, groups=groups, playbook=playbook,
                              requested_by=requested_by)
    return caught.value.message


# --- the example policy -----------------------------------------------------------------------


def test_the_example_policy_loads_as_documented():
    rules = POLICY.rules

    assert POLICY.configured
    assert rules is not None
    assert rules.channels == {INCIDENTS}
    assert rules.responders.users == {ALICE, BOB}
    assert rules.approvers.groups == {"S0LEADS"}
    assert set(rules.playbooks) == {"point-in-time-restore"}
    assert POLICY.destructive == {"point-in-time-restore", "s3-static-rollback"}, \
        "the listed one, plus the playbook whose default is to require approval"
    assert not POLICY.is_destructive("lambda-alias-revert")
    assert POLICY.is_destructive(["lambda-alias-revert", "s3-static-rollback"]), "a chain"
    assert POLICY.is_destructive(None), "an unknown playbook is treated as destructive"


def test_the_cached_loader_loads_once():
    cached_access.cache_clear()

    assert cached_access(DEFAULT_ACCESS) is cached_access(DEFAULT_ACCESS)
    assert cached_access(DEFAULT_ACCESS) == POLICY


# --- read-only verbs --------------------------------------------------------------------------


@pytest.mark.parametrize("verb", sorted(READ_ONLY_VERBS))
@pytest.mark.parametrize("policy", [POLICY, load_access(FILES / "missing.yaml")],
                         ids=["policy", "no-policy"])
def test_read_only_verbs_are_for_anyone_anywhere(policy, verb):
    policy.check(verb, user_id=MALLORY, groups=NONE, channel_id=ELSEWHERE)


# --- responders -------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", RESPONDER_VERBS)
@pytest.mark.parametrize(("user_id", "groups"), [
    (ALICE, NONE),              # listed by user id
    (MALLORY, ONCALL),          # through a user group
    (CAROL, NONE),              # an approver may do what a responder may
    (MALLORY, LEADS),           # ... through the approvers' group too
])
def test_responders_may_change_things_in_the_incident_channel(verb, user_id, groups):
    POLICY.check(verb, user_id=user_id, groups=groups, channel_id=INCIDENTS)


@pytest.mark.parametrize("verb", RESPONDER_VERBS)
def test_a_non_responder_is_refused_with_what_is_missing(verb):
    message = refusal(POLICY, verb, user_id=MALLORY, groups=frozenset({"S0SOMEONEELSE"}))

    assert message == (f"`{verb}` is for responders, and you are not one in the access policy "
                       "(as a user or through a user group)")
    assert ALICE not in message and "S0ONCALL" not in message, "never says who is allowed"


@pytest.mark.parametrize("verb", sorted(CHANGING_VERBS))
def test_changing_verbs_are_refused_outside_the_listed_channels_even_to_approvers(verb):
    message = refusal(POLICY, verb, user_id=CAROL, groups=LEADS, channel_id=ELSEWHERE,
                      playbook="lambda-alias-revert")

    assert message == f"`{verb}` is only accepted in an incident channel; this channel is not one"
    assert INCIDENTS not in message


def test_without_channels_any_channel_is_accepted_and_one_word_lists_are_read():
    policy = load_access(FILES / "any_channel.yaml")

    policy.check("ack", user_id=MALLORY, groups=ONCALL, channel_id=ELSEWHERE)
    policy.check("approve", user_id=CAROL, groups=NONE, channel_id=ELSEWHERE,
                 playbook="point-in-time-restore")
    assert "responders" in refusal(policy, "ack", user_id=ALICE, channel_id=ELSEWHERE)


def test_an_empty_policy_grants_nothing():
    policy = load_access(FILES / "empty.yaml")

    assert "you are not one" in refusal(policy, "ack", user_id=ALICE, groups=ONCALL)
    assert "must be an approver" in refusal(policy, "approve", user_id=CAROL,
                                            playbook="point-in-time-restore")
    assert "must be a responder" in refusal(policy, "approve", user_id=CAROL,
                                            playbook="s3-static-rollback"), \
        "not listed as destructive here, and its own default is auto"


# --- run --------------------------------------------------------------------------------------


@pytest.mark.parametrize("playbook", ["lambda-alias-revert", "s3-static-rollback"])
def test_a_responder_may_run_or_request_a_playbook(playbook):
    POLICY.check("run", user_id=BOB, groups=NONE, channel_id=INCIDENTS, playbook=playbook)
    POLICY.check("run", user_id=MALLORY, groups=ONCALL, channel_id=INCIDENTS, playbook=playbook)


def test_a_non_responder_may_not_run_a_playbook():
    message = refusal(POLICY, "run", user_id=MALLORY, playbook="lambda-alias-revert")

    assert message.startswith("running lambda-alias-revert is for responders, and you are not")


def test_a_per_playbook_list_replaces_the_responders_for_run():
    POLICY.check("run", user_id=CAROL, groups=NONE, channel_id=INCIDENTS,
                 playbook="point-in-time-restore")
    POLICY.check("run", user_id=MALLORY, groups=DBA, channel_id=INCIDENTS,
                 playbook="point-in-time-restore")

    for user_id, groups in [(ALICE, ONCALL), (MALLORY, LEADS)]:
        message = refusal(POLICY, "run", user_id=user_id, groups=groups,
                          playbook="point-in-time-restore")
        assert message == ("running point-in-time-restore is limited to the people the access "
                           "policy lists for it, and you are not one of them")


def test_run_without_a_playbook_is_a_programming_error():
    with pytest.raises(ValueError, match="needs the playbook"):
        POLICY.check("run", user_id=ALICE, groups=NONE, channel_id=INCIDENTS)


def test_an_unknown_verb_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown verb 'reboot'"):
        POLICY.check("reboot", user_id=CAROL, groups=NONE, channel_id=INCIDENTS)


# --- approve and reject -----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_deciding_on_a_destructive_playbook_needs_an_approver(verb):
    POLICY.check(verb, user_id=CAROL, groups=NONE, channel_id=INCIDENTS,
                 playbook="s3-static-rollback")
    POLICY.check(verb, user_id=MALLORY, groups=LEADS, channel_id=INCIDENTS,
                 playbook="point-in-time-restore")

    message = refusal(POLICY, verb, user_id=ALICE, groups=ONCALL, playbook="s3-static-rollback")

    assert message == (f"to {verb} s3-static-rollback you must be an approver (it is "
                       "destructive), and you are not one in the access policy")


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_deciding_on_a_safe_playbook_is_for_any_responder_but_not_others(verb):
    POLICY.check(verb, user_id=BOB, groups=NONE, channel_id=INCIDENTS,
                 playbook="lambda-alias-revert")

    message = refusal(POLICY, verb, user_id=MALLORY, playbook="lambda-alias-revert")

    assert message.startswith(f"to {verb} lambda-alias-revert you must be a responder")


def test_deciding_without_knowing_the_playbook_needs_an_approver():
    POLICY.check("approve", user_id=CAROL, groups=NONE, channel_id=INCIDENTS)

    message = refusal(POLICY, "approve", user_id=ALICE)

    assert "must be an approver (its playbook is not known)" in message


def test_a_chain_with_one_destructive_link_needs_an_approver():
    chain = ["cache-invalidation", "s3-static-rollback"]

    message = refusal(POLICY, "approve", user_id=ALICE, playbook=chain)

    assert message.startswith("to approve cache-invalidation then s3-static-rollback you must "
                              "be an approver")


def test_a_responder_requests_a_destructive_run_and_only_an_approver_may_approve_it():
    POLICY.check("run", user_id=ALICE, groups=NONE, channel_id=INCIDENTS,
                 playbook="s3-static-rollback")

    message = approval_refusal(POLICY, user_id=BOB, playbook="s3-static-rollback",
                               requested_by=ALICE)
    assert "must be an approver (it is destructive)" in message

    POLICY.check_approval(user_id=CAROL, groups=NONE, playbook="s3-static-rollback",
                          requested_by=ALICE)
    POLICY.check_approval(user_id=MALLORY, groups=LEADS, playbook="s3-static-rollback",
                          requested_by=ALICE)


def test_a_safe_playbook_is_approved_by_any_other_responder():
    POLICY.check_approval(user_id=BOB, groups=NONE, playbook="lambda-alias-revert",
                          requested_by=ALICE)

    message = approval_refusal(POLICY, user_id=MALLORY, playbook="lambda-alias-revert",
                               requested_by=ALICE)
    assert "must be a responder" in message


@pytest.mark.parametrize(("user_id", "playbook", "requested_by"), [
    (CAROL, "s3-static-rollback", CAROL),        # an approver, but it is her own request
    (BOB, "lambda-alias-revert", BOB),
    (BOB, "lambda-alias-revert", " u0456bob "),  # compared as the engine does: trimmed, any case
])
def test_nobody_approves_their_own_request(user_id, playbook, requested_by):
    message = approval_refusal(POLICY, user_id=user_id, playbook=playbook,
                               requested_by=requested_by, groups=LEADS)

    assert message == f"you requested {playbook}; a different person must approve it"


def test_self_approval_is_refused_with_notauthorised_even_for_a_whole_chain():
    chain = ["lambda-alias-revert", "cache-invalidation"]

    message = approval_refusal(POLICY, user_id=CAROL, playbook=chain, requested_by=CAROL)

    assert message == ("you requested lambda-alias-revert then cache-invalidation; a different "
                       "person must approve it")


# --- no policy file ---------------------------------------------------------------------------


@pytest.mark.parametrize("verb", sorted(CHANGING_VERBS))
def test_without_a_policy_file_every_changing_verb_is_refused_naming_the_path(verb):
    path = FILES / "missing.yaml"
    policy = load_access(path)

    message = refusal(policy, verb, user_id=CAROL, groups=LEADS, playbook="lambda-alias-revert")

    assert not policy.configured
    assert message == (f"`{verb}` is not available from Slack: no access policy is configured "
                       f"({path} does not exist)")


def test_without_a_policy_file_approval_is_refused_and_destructive_keeps_its_default():
    policy = load_access(FILES / "missing.yaml")

    message = approval_refusal(policy, user_id=CAROL, playbook="lambda-alias-revert",
                               requested_by=ALICE)

    assert "no access policy is configured" in message
    assert policy.destructive == {"point-in-time-restore"}


# --- files that do not load -------------------------------------------------------------------


@pytest.mark.parametrize(("file", "expected"), [
    ("unknown_field.yaml", "field responders.group: unknown field"),
    ("unknown_playbook.yaml", "field destructive[1]: no playbook named 'database-nuke'"),
    ("unknown_override.yaml", "field playbooks.lambda-revert: no playbook named 'lambda-revert'"),
    ("user_name.yaml", "field approvers.users[1]: '@carol' is not a Slack user id"),
    ("group_as_user.yaml", "field responders.users[0]: 'S0ONCALL' is not a Slack user id"),
    ("channel_name.yaml", "field channels[0]: '#incidents' is not a Slack channel id"),
    ("a_list.yaml", "field (top level): a mapping of fields is expected, not list"),
    ("not_yaml.yaml", "not valid YAML"),
])
def test_invalid_policy_files_name_the_file_and_the_field(file, expected):
    with pytest.raises(InvalidRunbook) as caught:
        load_access(FILES / file)

    assert caught.value.message.startswith(f"{FILES / file}: ")
    assert expected in caught.value.message


def test_a_policy_path_that_cannot_be_read_is_an_error_not_a_default():
    with pytest.raises(InvalidRunbook, match="cannot read"):
        load_access(FILES)  # a directory
