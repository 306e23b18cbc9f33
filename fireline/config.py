"""Settings, read once from the environment into a validated model.

A bad value fails at cold start with the variable named, never halfway through an incident.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from fireline.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNBOOK = PROJECT_ROOT / "runbooks" / "default.yaml"
DEFAULT_ACCESS = PROJECT_ROOT / "runbooks" / "access.yaml"

# Environment variable -> settings field.
ENVIRONMENT = {
    "FIRELINE_TABLE": "table",
    "FIRELINE_RUNBOOK": "runbook_path",
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "FIRELINE_SLACK_CHANNEL": "slack_channel",
    "FIRELINE_SLACK_API_URL": "slack_api_url",
    "FIRELINE_SLACK_TIMEOUT": "slack_timeout_seconds",
    "FIRELINE_TAG_LOOKUP": "tag_lookup",
    "FIRELINE_STATE_MACHINE_ARN": "state_machine_arn",
    "FIRELINE_INLINE_WAIT_SECONDS": "inline_wait_seconds",
    "FIRELINE_ACCESS": "access_path",
    "FIRELINE_SLACK_COMMAND": "slack_command",
    "FIRELINE_CROSS_ACCOUNT_ROLE": "cross_account_role",
    "FIRELINE_EXTERNAL_ID": "external_id",
    "FIRELINE_ENRICH": "enrich",
    "FIRELINE_ENRICH_BUDGET_SECONDS": "enrich_budget_seconds",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str = Field(default="fireline-incidents", min_length=3, max_length=255)
    runbook_path: Path = DEFAULT_RUNBOOK
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_api_url: str | None = None
    slack_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    tag_lookup: bool = True
    # Long-running playbooks go to this state machine; without one they run in-process.
    state_machine_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:states:")
    # In-process runs wait this long in total for slow steps, then leave the rest to
    # `fireline resume` (a Lambda must never sleep through a 20-minute restore).
    inline_wait_seconds: float = Field(default=600.0, ge=0, le=3600)
    # Who may do what from Slack; without the file, Slack may only read.
    access_path: Path = DEFAULT_ACCESS
    slack_command: str = Field(default="/fireline", pattern=r"^/[a-z0-9_-]{1,31}$")
    # The role (name, with its path if it has one) Fireline assumes in an alarm's account
    # when that is not its own; unset: alarms from other accounts are refused.
    cross_account_role: str | None = Field(default=None, max_length=512,
                                           pattern=r"^[A-Za-z0-9_+=,.@/-]+$")
    # The external id the role's trust policy asks for (a shared secret: never logged).
    external_id: SecretStr | None = Field(default=None, min_length=2, max_length=1224)
    # Context in the thread (what changed, log evidence, the metric's chart) after the
    # playbook has started; its own budget, so it never holds up a mitigation.
    enrich: bool = True
    enrich_budget_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("slack_bot_token", "slack_channel", "slack_api_url", "state_machine_arn",
                     "cross_account_role", "external_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {field: environ[var] for var, field in ENVIRONMENT.items() if var in environ}
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "?"
                var = next((v for v, f in ENVIRONMENT.items() if f == field), field)
                problems.append(f"{var}: {error['msg']}")
            raise ConfigurationError("invalid settings: " + "; ".join(problems)) from None


@cache
def settings() -> Settings:
    """The process-wide settings, read on first use (not at import)."""
    return Settings.from_env()
