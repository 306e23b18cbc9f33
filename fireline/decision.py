"""What triage decides for an alarm: severity, playbook, params, approval, channel, why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
SEVERITIES: tuple[Severity, ...] = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")

# auto: act at once; required: wait for a human; monitor: plan and post, never execute.
ApprovalMode = Literal["auto", "required", "monitor"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = ("auto", "required", "monitor")


class PlaybookCall(BaseModel):
    """One playbook with its params: a link of a runbook rule's `run` chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    playbook: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    rule: str | None = None
    playbook: str | None = None  # the first (or only) playbook to run
    params: dict[str, Any] = Field(default_factory=dict)
    # A rule's `run`: playbooks run in order, a failure stops the rest. Empty for one.
    chain: tuple[PlaybookCall, ...] = ()
    approval: ApprovalMode | None = None
    channel: str | None = None
    reasons: tuple[str, ...] = ()
    recovery_window_minutes: int = 10
    on_no_recovery: Literal["escalate", "undo"] = "escalate"
