"""What triage decides for an alarm: severity, playbook, params, approval, channel, why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["SEV-1", "SEV-2", "SEV-3", "SEV-4"]
SEVERITIES: tuple[Severity, ...] = ("SEV-1", "SEV-2", "SEV-3", "SEV-4")

# auto: act at once; required: wait for a human; monitor: plan and post, never execute.
ApprovalMode = Literal["auto", "required", "monitor"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = ("auto", "required", "monitor")


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    rule: str | None = None
    playbook: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    approval: ApprovalMode | None = None
    channel: str | None = None
    reasons: tuple[str, ...] = ()
