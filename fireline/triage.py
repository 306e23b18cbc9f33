"""Triage: an alarm (and its tags) against the runbook rules -> a Decision. Pure.

First matching rule wins. Alarm tags `fireline:severity`, `fireline:playbook` and
`fireline:approval` override the rule, so teams can configure an alarm where they define it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from fireline import registry
from fireline.alarm import AlarmEvent
from fireline.decision import APPROVAL_MODES, SEVERITIES, ApprovalMode, Decision, PlaybookCall
from fireline.errors import FirelineError, TemplateError
from fireline.runbook import Match, Runbook

TAG_SEVERITY = "fireline:severity"
TAG_PLAYBOOK = "fireline:playbook"
TAG_APPROVAL = "fireline:approval"

# `{dimensions.FunctionName}`: a lookup in AlarmEvent.template_fields(), nothing more.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def decide(alarm: AlarmEvent, runbook: Runbook, tags: Mapping[str, str] | None = None) -> Decision:
    tags = dict(tags if tags is not None else alarm.tags or {})
    reasons: list[str] = []
    rule = next((r for r in runbook.rules if _matches(r.match, alarm, tags)), None)
    if rule is None:
        reasons.append(f"no rule matched; default severity {runbook.defaults.severity}")
        severity, approval = runbook.defaults.severity, None
        calls: list[PlaybookCall] = []
        channel = runbook.defaults.channel
    else:
        reasons.append(f"rule {rule.name!r} matched: {_explain(rule.match, alarm, tags)}")
        severity = rule.severity or runbook.defaults.severity
        approval, calls = rule.approval, rule.calls()
        channel = rule.channel or runbook.defaults.channel

    tag_severity = tags.get(TAG_SEVERITY, "").upper()
    if tag_severity in SEVERITIES:
        severity = tag_severity
        reasons.append(f"tag {TAG_SEVERITY}={tag_severity} sets the severity")
    elif tag_severity:
        reasons.append(f"tag {TAG_SEVERITY}={tags[TAG_SEVERITY]!r} ignored: not SEV-1..SEV-4")

    tag_playbook = tags.get(TAG_PLAYBOOK, "").strip()
    if tag_playbook.lower() == "none":
        calls = []
        reasons.append(f"tag {TAG_PLAYBOOK}=none: no playbook")
    elif tag_playbook:
        if registry.exists(tag_playbook):
            # The rule's params (or chain) were written for its own playbook, not this one.
            if [c.playbook for c in calls] != [tag_playbook]:
                calls = [PlaybookCall(playbook=tag_playbook)]
            reasons.append(f"tag {TAG_PLAYBOOK}={tag_playbook} sets the playbook")
        else:
            reasons.append(f"tag {TAG_PLAYBOOK}={tag_playbook!r} ignored: no such playbook")

    tag_approval = tags.get(TAG_APPROVAL, "").strip().lower()
    if tag_approval in APPROVAL_MODES:
        approval = tag_approval  # type: ignore[assignment]
        reasons.append(f"tag {TAG_APPROVAL}={tag_approval} sets the approval")
    elif tag_approval:
        reasons.append(f"tag {TAG_APPROVAL}={tags[TAG_APPROVAL]!r} ignored: "
                       f"not one of {', '.join(APPROVAL_MODES)}")

    try:
        calls = [call.model_copy(update={"params": _params(call, alarm, tags)})
                 for call in calls]
        approval = _approval(calls, approval, reasons) if calls else None
    except FirelineError as exc:
        names = " -> ".join(call.playbook for call in calls)
        reasons.append(f"playbook {names} not run: {exc.message}")
        calls, approval = [], None

    return Decision(
        severity=severity,  # type: ignore[arg-type]
        rule=rule.name if rule else None,
        playbook=calls[0].playbook if calls else None,
        params=calls[0].params if calls else {},
        chain=tuple(calls) if len(calls) > 1 else (),
        approval=approval,
        channel=channel,
        reasons=tuple(reasons),
        recovery_window_minutes=(rule and rule.recovery_window_minutes)
        or runbook.defaults.recovery_window_minutes,
        on_no_recovery=(rule and rule.on_no_recovery) or runbook.defaults.on_no_recovery,
    )


def render(template: Any, fields: Mapping[str, str]) -> Any:
    """Fill `{field}` placeholders from the alarm's fields; non-strings pass unchanged."""
    if isinstance(template, list):
        return [render(item, fields) for item in template]
    if not isinstance(template, str):
        return template

    def lookup(found: re.Match[str]) -> str:
        name = found.group(1).strip()
        if name not in fields or fields[name] == "":
            raise TemplateError(f"template {{{name}}}: the alarm has no {_field_label(name)}")
        return fields[name]

    return _PLACEHOLDER.sub(lookup, template)


def _params(call: PlaybookCall, alarm: AlarmEvent, tags: dict[str, str]) -> dict[str, Any]:
    playbook = registry.get(call.playbook)
    fields = alarm.template_fields(tags)
    params = dict(playbook.params_from_alarm(alarm))
    params.update({key: render(value, fields) for key, value in call.params.items()})
    return params


def _approval(calls: list[PlaybookCall], approval: ApprovalMode | None,
              reasons: list[str]) -> ApprovalMode:
    """The rule's approval; unset, the strictest default of the playbooks it runs (one
    approval covers a whole chain, given before its first change)."""
    if approval is not None:
        return approval
    defaults = {call.playbook: registry.get(call.playbook).default_approval for call in calls}
    strictest = max(defaults.values(), key=_STRICTNESS.index)
    owner = next(name for name, mode in defaults.items() if mode == strictest)
    reasons.append(f"approval {strictest}: the default of {owner}")
    return strictest


_STRICTNESS: list[ApprovalMode] = ["auto", "required", "monitor"]


def _field_label(name: str) -> str:
    if name.startswith("dimensions."):
        return f"dimension {name.split('.', 1)[1]}"
    if name.startswith("tags."):
        return f"tag {name.split('.', 1)[1]}"
    return f"field {name}"


def _any(patterns: list[str] | None, value: str | None, *, fold: bool = False) -> bool:
    if patterns is None:
        return True
    if value is None:
        return False
    if fold:
        return any(fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatchcase(value, p) for p in patterns)


def _matches(match: Match, alarm: AlarmEvent, tags: Mapping[str, str]) -> bool:
    return (
        alarm.state in match.state
        and _any(match.alarm_name, alarm.alarm_name, fold=True)
        and _any(match.namespace, alarm.namespace)
        and _any(match.metric, alarm.metric_name)
        and _any(match.account, alarm.account_id)
        and _any(match.region, alarm.region)
        and all(_any(p, alarm.dimensions.get(k)) for k, p in match.dimensions.items())
        and all(_any(p, tags.get(k)) for k, p in match.tags.items())
    )


def _explain(match: Match, alarm: AlarmEvent, tags: Mapping[str, str]) -> str:
    parts = [f"state {alarm.state}"]
    for label, patterns, value in (
        ("alarm name", match.alarm_name, alarm.alarm_name),
        ("namespace", match.namespace, alarm.namespace),
        ("metric", match.metric, alarm.metric_name),
        ("account", match.account, alarm.account_id),
        ("region", match.region, alarm.region),
    ):
        if patterns is not None:
            parts.append(f"{label} {value} ~ {'|'.join(patterns)}")
    for name, patterns in match.dimensions.items():
        parts.append(f"dimension {name}={alarm.dimensions.get(name)} ~ {'|'.join(patterns)}")
    for name, patterns in match.tags.items():
        parts.append(f"tag {name}={tags.get(name)} ~ {'|'.join(patterns)}")
    return ", ".join(parts)

