"""The AWS account an alarm lives in, and a client factory that acts there.

One code path for every account: Fireline's own account gets the default factory; any
other account gets a factory over a boto3 session on a role assumed in that account
(`FIRELINE_CROSS_ACCOUNT_ROLE`, with `FIRELINE_EXTERNAL_ID` when the role's trust policy
asks for one). Both build their clients the same way, so botocore's endpoint settings
(`AWS_ENDPOINT_URL`) apply to both and local runs against moto need no other code.

An assumed role's credentials are kept per account until shortly before they expire:
one STS call per account per hour, not one per step, and never an expired key mid-run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from fireline import aws
from fireline.aws import ClientFactory, describe_aws_error
from fireline.errors import AccountNotAllowed, AssumeRoleFailed, CrossAccountNotConfigured
from fireline.timestamps import as_utc, utc_now

log = logging.getLogger(__name__)

# Credentials are renewed this long before they expire, so a step that starts just before
# the expiry does not fail halfway through with an expired token.
REFRESH_BEFORE = timedelta(minutes=5)
# One hour: the longest AWS allows when the caller is itself a role (role chaining), as
# Fireline's Lambda function is.
SESSION_SECONDS = 3600
SESSION_NAME = "fireline"


class AccountPolicy(BaseModel):
    """Who Fireline may act for, and how it gets in: from settings and the runbook."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role_name: str | None = None
    external_id: SecretStr | None = None
    # None: any account the role reaches. Fireline's own account is always allowed.
    allowed: frozenset[str] | None = None
    session_seconds: int = Field(default=SESSION_SECONDS, ge=900, le=43200)


@dataclass
class _Assumed:
    """One account's assumed-role session and the clients made from it."""

    session: boto3.session.Session
    expires_at: datetime
    clients: dict[tuple[str, str | None], Any] = field(default_factory=dict)


class Accounts:
    """Client factories per AWS account, all built by one path (see the module docstring)."""

    def __init__(self, clients: ClientFactory = aws.client, *,
                 policy: AccountPolicy | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.clients = clients
        self.policy = policy or AccountPolicy()
        self.clock = clock
        self._home: str | None = None
        self._partition = "aws"
        # Guards the sessions: boto3 sessions are not thread-safe, and concurrent
        # deliveries must not assume the same role twice.
        self._lock = threading.Lock()
        self._assumed: dict[str, _Assumed] = {}

    def learn_home(self, function_arn: str) -> None:
        """Take Fireline's own account from its Lambda function's ARN, which Lambda hands
        every invocation: a cold start then makes no STS call (nor its client). An ARN
        that does not read as one leaves `home` to ask STS."""
        parts = function_arn.split(":")
        if (self._home is None and len(parts) >= 7 and parts[0] == "arn"
                and parts[2] == "lambda" and len(parts[4]) == 12 and parts[4].isdigit()):
            self._partition, self._home = parts[1], parts[4]

    def home(self) -> str:
        """Fireline's own account id (learnt from the function's ARN, else one STS call
        per process)."""
        if self._home is None:
            try:
                identity = self.clients("sts").get_caller_identity()
            except (ClientError, BotoCoreError) as exc:
                raise describe_aws_error("sts:GetCallerIdentity", exc) from exc
            arn = str(identity.get("Arn", ""))
            # aws, aws-cn, aws-us-gov: the role's ARN must be in our own partition.
            self._partition = arn.split(":")[1] if arn.count(":") >= 5 else "aws"
            self._home = str(identity["Account"])
        return self._home

    def clients_for(self, account_id: str | None, *, incident_id: str | None = None,
                    playbook: str | None = None) -> ClientFactory:
        """The factory for `account_id`; raises (a PreconditionFailed) when Fireline may
        not act there. No account (a manual run) means Fireline's own."""
        if not account_id or account_id == self.home():
            return self.clients
        self.check(account_id, incident_id=incident_id, playbook=playbook)
        return _AccountClients(self, account_id)

    def check(self, account_id: str, *, incident_id: str | None = None,
              playbook: str | None = None) -> None:
        """Refuse an account that is not configured or not allowed, saying which and why."""
        home = self.home()
        if account_id == home:
            return
        context = {"incident_id": incident_id, "playbook": playbook, "step": "plan"}
        if not self.policy.role_name:
            # A namesake in our own account is not the alarm's resource: act on nothing.
            raise CrossAccountNotConfigured(
                f"the alarm is in account {account_id} and Fireline runs in {home}; "
                "acting across accounts is not configured (FIRELINE_CROSS_ACCOUNT_ROLE), "
                "so nothing was changed", **context)
        if self.policy.allowed is not None and account_id not in self.policy.allowed:
            raise AccountNotAllowed(
                f"the alarm is in account {account_id}, which the runbook's "
                f"defaults.accounts does not list; Fireline runs in {home} and changed "
                "nothing", **context)

    def role_arn(self, account_id: str) -> str:
        return f"arn:{self._partition}:iam::{account_id}:role/{self.policy.role_name}"

    # --- the assumed sessions -------------------------------------------------------------

    def client(self, account_id: str, service: str, region: str | None = None) -> Any:
        """A client in `account_id`, from credentials renewed shortly before they expire."""
        with self._lock:
            assumed = self._assumed.get(account_id)
            if assumed is None or self.clock() >= assumed.expires_at - REFRESH_BEFORE:
                assumed = self._assume(account_id)
                self._assumed[account_id] = assumed
            key = (service, region)
            if key not in assumed.clients:
                assumed.clients[key] = assumed.session.client(
                    service, region_name=region, config=aws.RETRIES)
            return assumed.clients[key]

    def _assume(self, account_id: str) -> _Assumed:
        role = self.role_arn(account_id)
        request: dict[str, Any] = {"RoleArn": role, "RoleSessionName": SESSION_NAME,
                                   "DurationSeconds": self.policy.session_seconds}
        if self.policy.external_id is not None:
            request["ExternalId"] = self.policy.external_id.get_secret_value()
        try:
            credentials = self.clients("sts").assume_role(**request)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            error = describe_aws_error("sts:AssumeRole", exc)
            raise AssumeRoleFailed(f"cannot act in account {account_id}: assuming {role}: "
                                   f"{error.message}") from exc
        log.info("assumed %s until %s", role, credentials["Expiration"])
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"])
        return _Assumed(session=session, expires_at=as_utc(credentials["Expiration"]))


class _AccountClients:
    """A ClientFactory (`factory("lambda", region=...)`) for one other account."""

    def __init__(self, accounts: Accounts, account_id: str) -> None:
        self.accounts = accounts
        self.account_id = account_id

    def __call__(self, service: str, region: str | None = None) -> Any:
        return self.accounts.client(self.account_id, service, region)

    def __repr__(self) -> str:
        return f"<clients in account {self.account_id}>"
