"""Fireline's error tree: one base, one class per condition, each carrying its context.

Handlers turn these into typed answers; anything else is a bug and is logged as one.
"""

from __future__ import annotations


class FirelineError(Exception):
    """Base of every error Fireline raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        incident_id: str | None = None,
        playbook: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.incident_id = incident_id
        self.playbook = playbook
        self.step = step

    @property
    def code(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, str]:
        out = {"error": self.code, "message": self.message}
        for key in ("incident_id", "playbook", "step"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


# --- input -------------------------------------------------------------------------------


class UnrecognisedEvent(FirelineError):
    """A Lambda event that is none of the alarm delivery shapes Fireline knows."""


class MalformedEvent(FirelineError):
    """An event of a known shape whose content is wrong; `field` names what, and
    `alarm_key` the alarm when its identity could be read (its open incident notes it)."""

    def __init__(self, message: str, *, field: str | None = None,
                 alarm_key: str | None = None, **context: str | None) -> None:
        super().__init__(message, **context)
        self.field = field
        self.alarm_key = alarm_key

    def to_dict(self) -> dict[str, str]:
        out = super().to_dict()
        if self.field:
            out["field"] = self.field
        return out


class InvalidRequest(MalformedEvent):
    """A manual request (CLI, direct invoke) with a missing or wrong field."""


class SlackSignatureInvalid(FirelineError):
    """A Slack request whose signature, timestamp or headers do not check out; `reason`
    is for the log only (the caller gets a bare 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__("slack request not verified")
        self.reason = reason


class InvalidCommand(FirelineError):
    """A slash command that Fireline cannot read; the message is the usage to show."""


class NotAuthorised(FirelineError):
    """The Slack user (or channel) may not do this; the message says what is missing."""


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(FirelineError):
    """Settings from the environment are missing or invalid."""


class InvalidRunbook(FirelineError):
    """A runbook file that does not validate; the message names file, rule and field."""


class TemplateError(FirelineError):
    """A runbook parameter template refers to a field the alarm does not have."""


# --- playbooks -----------------------------------------------------------------------------


class PlaybookNotFound(FirelineError):
    """No playbook is registered under that name."""


class MalformedPlaybook(FirelineError):
    """A playbook module that does not honour the playbook contract."""


class InvalidParams(FirelineError):
    """Playbook parameters that do not validate against the playbook's Params model."""


class PreconditionFailed(FirelineError):
    """The world is not as the plan needs it (nothing to revert to, resource changed...)."""


class VerificationFailed(FirelineError):
    """After execute, the change cannot be read back as intended."""


class ApprovalRequired(FirelineError):
    """The step waits for a human approval."""


class ApprovalNotPending(FirelineError):
    """An approve or reject for an incident that is not waiting for one."""


class SelfApprovalRefused(FirelineError):
    """The requester tried to approve their own request; a second person must."""


class StepDeadlineExceeded(FirelineError):
    """A long step kept asking to wait past its playbook's deadline."""


class NotReversible(FirelineError):
    """The action has no undo."""


class AwsCallFailed(FirelineError):
    """An AWS API call failed; the message names the call and AWS's error code."""


# --- accounts ------------------------------------------------------------------------------


class CrossAccountNotConfigured(PreconditionFailed):
    """An alarm from another AWS account, and no role to act there is configured."""


class AccountNotAllowed(PreconditionFailed):
    """An alarm from an account the runbook's `defaults.accounts` does not list."""


class AssumeRoleFailed(AwsCallFailed):
    """The role in the alarm's account could not be assumed; the message names the role."""


# --- context (enrichment) ------------------------------------------------------------------


class EnrichmentSkipped(FirelineError):
    """An enrichment that cannot run here (not permitted, nothing to read); the message is
    the note the thread shows. Never an incident's error."""


# --- incidents -----------------------------------------------------------------------------


class IncidentNotFound(FirelineError):
    """No incident with that id."""


class StoreUnavailable(FirelineError):
    """The incident table cannot be reached or does not exist."""
