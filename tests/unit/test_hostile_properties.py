"""Property tests (Hypothesis) of what reads hostile input: the alarm event parser, the
slash-command parser, and runbook parameter templates. Pure: no AWS, no Slack.

The handler over the same hostile deliveries, with the store and Slack behind it, is in
tests/functional/test_hostile_input.py; fixed garbage in every field is in test_events.py and
test_commands.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fireline.alarm import AlarmEvent
from fireline.commands import Command, parse_command
from fireline.config import DEFAULT_RUNBOOK
from fireline.errors import FirelineError, InvalidCommand, TemplateError
from fireline.events import parse_alarm_message, parse_deliveries, parse_event
from fireline.runbook import Runbook, load_runbook
from fireline.triage import decide, render
from tests.support.hostile import NASTY, json_values, mutated_events, seed_events, text

BOUNDED = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = seed_events()


def _check_alarms(alarms: list[AlarmEvent]) -> None:
    """What a parse hands on is writable as it is: stored, posted and logged in UTF-8."""
    for alarm in alarms:
        assert isinstance(alarm, AlarmEvent)
        alarm.model_dump_json().encode("utf-8")
        alarm.key.encode("utf-8")
        assert len(alarm.reason) <= 2048 and len(alarm.description or "") <= 2048


def _only_typed_errors(event: Any) -> None:
    try:
        alarms, refused = parse_deliveries(event)
    except FirelineError as exc:
        assert exc.message and len(exc.message) < 600
        exc.message.encode("utf-8")
        return
    _check_alarms(alarms)
    for refusal in refused:
        assert isinstance(refusal.error, FirelineError)
        refusal.error.message.encode("utf-8")


# --- alarm events --------------------------------------------------------------------------


def test_the_seeds_are_real_deliveries_that_parse():
    parsed = 0
    for seed in SEEDS:
        try:
            parsed += bool(parse_event(seed))
        except FirelineError:
            continue  # the corpus's counterexamples
    assert parsed >= 5


@BOUNDED
@given(event=json_values)
def test_any_json_value_parses_or_is_refused_with_a_typed_error(event):
    _only_typed_errors(event)
    _only_typed_errors(json.dumps(event, ensure_ascii=True))


@BOUNDED
@given(event=mutated_events(SEEDS))
def test_mutated_real_deliveries_parse_or_are_refused_with_a_typed_error(event):
    _only_typed_errors(event)


@BOUNDED
@given(message=st.one_of(json_values, st.dictionaries(
    st.sampled_from(["AlarmName", "NewStateValue", "AlarmArn", "Trigger", "Region",
                     "StateChangeTime", "NewStateReason", "AlarmTags", "AWSAccountId"]),
    json_values)))
@example(message={"AlarmName": "x\ud800", "NewStateValue": "ALARM"})
@example(message={"AlarmName": "x", "NewStateValue": "ALARM", "NewStateReason": "\udfff" * 9})
def test_a_bare_alarm_message_parses_or_is_refused_with_a_typed_error(message):
    for form in (message, json.dumps(message)):
        try:
            alarm = parse_alarm_message(form)
        except FirelineError:
            continue
        _check_alarms([alarm])


# --- slash commands ------------------------------------------------------------------------


VERBS = ["help", "list", "status", "run", "ack", "resolve", "undo", "approve", "reject",
         "RUN", "Approve"]
command_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=300),
    st.builds(lambda verb, rest: f"{verb} {' '.join(rest)}", st.sampled_from(VERBS),
              st.lists(st.one_of(text, st.sampled_from(
                  ["INC-20261123-ab12cd", "inc-20261123-AB12CD", "lambda-alias-revert",
                   "function_name=checkout", "--dry-run", "a='b c'", 'a="', "k=v=w", "=",
                   "&amp;", "&lt;@U123&gt;"])), max_size=6)))


@BOUNDED
@given(text=command_text)
def test_any_slash_command_text_is_a_command_or_a_usage_line(text):
    try:
        command = parse_command(text)
    except InvalidCommand as exc:
        assert exc.message and len(exc.message) < 200 and "\n" not in exc.message
        exc.message.encode("utf-8")
        return
    assert isinstance(command, Command)
    command.model_dump_json().encode("utf-8")


# --- runbook parameter templates -----------------------------------------------------------


def _alarm(**fields: Any) -> AlarmEvent:
    base = {"delivery": "sns", "delivery_id": "d-1", "alarm_name": "checkout-prod-errors",
            "state": "ALARM", "state_changed_at": datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
            "account_id": "123456789012", "region": "us-east-1", "namespace": "AWS/Lambda",
            "metric_name": "Errors", "dimensions": {"FunctionName": "checkout"},
            "tags": {"team": "payments"}}
    return AlarmEvent(**{**base, **fields})


FIELDS = _alarm().template_fields()
# Format-string escapes: attributes, items, conversions, format specs, positions, nesting.
ESCAPES = [
    "{alarm.__class__}", "{alarm.name.__class__.__mro__}", "{0.__globals__}", "{0}",
    "{alarm.name!r}", "{region:>30}", "{tags.team[0]}", "{dimensions.FunctionName.upper}",
    "{__import__}", "{alarm}", "{self}", "{{region}}x", "{region:{account}}", "{ region!s }",
    "{alarm.name.__len__}", "{tags}", "{dimensions}", "{fields}", "{__builtins__}",
    "{alarm.__dict__}", "{account.__class__.__base__.__subclasses__}",
]


def _renders_only_text_and_fields(template: str) -> None:
    """The model: every innermost {...} is looked up as a whole, stripped name in the flat
    fields, once; any other name is a TemplateError. Never an attribute, an index, a
    conversion or a format spec, whatever the braces around it."""
    placeholders = re.findall(r"\{([^{}]*)\}", template)
    known = {name for name, value in FIELDS.items() if value}  # an empty field is no field
    try:
        rendered = render(template, FIELDS)
    except TemplateError as exc:
        assert "the alarm has no" in exc.message
        assert any(name.strip() not in known for name in placeholders)
        return
    assert all(name.strip() in known for name in placeholders)
    assert rendered == re.sub(r"\{([^{}]*)\}", lambda m: FIELDS[m.group(1).strip()], template)


@pytest.mark.parametrize("template", ESCAPES)
def test_format_string_escapes_read_nothing_but_the_alarm_fields(template):
    _renders_only_text_and_fields(template)
    if "__" in template or "!" in template or "[" in template:
        with pytest.raises(TemplateError):
            render(template, FIELDS)


placeholder = st.one_of(st.sampled_from(sorted(FIELDS)), st.sampled_from(ESCAPES).map(
    lambda e: e.strip("{}")), text)
template = st.lists(st.one_of(text, placeholder.map(lambda name: "{" + name + "}")),
                    max_size=6).map("".join)


@BOUNDED
@given(template=template)
@example(template="{alarm.arn}")  # empty on this alarm: as good as missing
def test_a_rendered_template_is_its_text_with_exact_field_names_filled_in(template):
    _renders_only_text_and_fields(template)


def test_a_field_value_with_braces_is_not_rendered_again():
    alarm = _alarm(alarm_name="{account}{tags.team}",
                   tags={"team": "{alarm.__class__}", "secret": "hunter2"})
    fields = alarm.template_fields()

    assert render("{alarm.name}/{tags.team}", fields) == "{account}{tags.team}/{alarm.__class__}"


def _runbook(params: dict[str, Any]) -> Runbook:
    return Runbook.model_validate({"rules": [{
        "name": "templated", "match": {"namespace": "AWS/Lambda"}, "severity": "SEV-2",
        "playbook": "lambda-alias-revert", "params": params}]})


@pytest.mark.parametrize("escape", ESCAPES[:10])
def test_a_rule_with_a_template_escape_runs_nothing_and_says_why(escape):
    decision = decide(_alarm(), _runbook({"function_name": escape}), {})

    assert decision.playbook is None and decision.params == {}
    [why] = [r for r in decision.reasons if "not run" in r]
    assert "the alarm has no" in why
    for leak in ("<class", "<function", "<built-in", "object at 0x", "__globals__'"):
        assert leak not in " ".join(decision.reasons)


@BOUNDED
@given(value=text, name=st.sampled_from(["FunctionName", "Resource"]))
def test_hostile_alarm_values_only_ever_become_parameters_verbatim(value, name):
    """Whatever an alarm's dimension says, triage passes it as a value (validated by the
    playbook's Params) or runs nothing; it is never read as a template or a path."""
    assume(value.strip())
    alarm = _alarm(dimensions={"FunctionName": "checkout", name: value})
    decision = decide(alarm, load_runbook(DEFAULT_RUNBOOK), {})
    if decision.playbook is not None:
        assert decision.params["function_name"] in {"checkout", value}
    json.dumps(decision.model_dump(mode="json"), ensure_ascii=False)


def test_nasty_strings_are_in_the_generators():
    """The strategies above draw these on purpose: what Hypothesis rarely makes alone."""
    assert "\ud800" in NASTY and "{alarm.__class__}" in NASTY
