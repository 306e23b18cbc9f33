"""cache-invalidation: empty a cache that serves stale or broken responses.

Targets, exactly one:
- a CloudFront distribution (`distribution_id`, or `domain`: an alternate domain name or
  its cloudfront.net name): invalidates `paths` (default `/*`), split into requests of at
  most 3,000 file paths and 15 wildcard paths, CloudFront's limits in progress at a time;
- an API Gateway REST stage (`rest_api_id` or `api_name`, with `stage`): flushes the stage
  cache, and the authorizers' cache if `flush_authorizers`.

Changes: nothing is modified; cached copies are dropped, and the next requests go to the
origin (or backend). The plan warns when that load is large (a wildcard that empties a
whole tree, a whole stage) and when many paths cost money.

Execute: CloudFront runs two steps, `invalidate` (one CreateInvalidation per request, its
CallerReference the incident id, checkpointed first so a retry never sends it twice) and
`wait-complete` (polls GetInvalidation every 10 s; a step still waiting after 15 minutes
fails, and says so). API Gateway runs one, `flush`.

Verify: each invalidation reads Completed; a flushed stage still has its cache cluster
(there is no call that reads a flush back). Undo: none, and it says why: what was dropped
refills from the origin by itself.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fireline.alarm import AlarmEvent
from fireline.errors import NotReversible
from fireline.playbook import Outcome, Plan, Playbook, PlaybookContext, StepResult, Verification
from playbooks._cache_apigateway import ApiGatewayTarget
from playbooks._cache_cloudfront import CloudFrontTarget
from playbooks._cache_common import NAME, CacheTarget
from playbooks._cache_paths import EVERYTHING, read_paths, split_paths

TARGETS: dict[str, CacheTarget] = {"cloudfront": CloudFrontTarget(),
                                   "apigateway": ApiGatewayTarget()}

_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                   r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLOUDFRONT = "a CloudFront distribution (distribution_id or domain)"
_APIGATEWAY = "an API Gateway stage (rest_api_id or api_name, with stage)"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distribution_id: str | None = Field(default=None, min_length=1, max_length=128,
                                        pattern=r"^[A-Za-z0-9]+$",
                                        description="CloudFront distribution id")
    domain: str | None = Field(default=None, max_length=253,
                               description="a domain the distribution serves (alias or "
                                           "*.cloudfront.net name)")
    paths: list[str] = Field(default_factory=lambda: [EVERYTHING],
                             description='paths to invalidate: a list, or "/a,/b"')
    rest_api_id: str | None = Field(default=None, min_length=1, max_length=64,
                                    pattern=r"^[A-Za-z0-9]+$",
                                    description="API Gateway REST API id")
    api_name: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="API Gateway REST API name")
    stage: str | None = Field(default=None, min_length=1, max_length=128,
                              pattern=r"^[A-Za-z0-9_-]+$", description="REST API stage")
    flush_authorizers: bool = Field(default=False,
                                    description="also flush the stage's authorizers' cache")

    @field_validator("domain")
    @classmethod
    def _host_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = value.strip().lower().rstrip(".")
        if not _HOST.match(host):
            raise ValueError(f"{value!r} is not a host name such as www.example.com (give the "
                             "name alone, without scheme, port or path)")
        return host

    @field_validator("paths", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        return split_paths(value)

    @field_validator("paths")
    @classmethod
    def _valid_paths(cls, value: list[str]) -> list[str]:
        read_paths(value)  # refuses here, before an incident opens; the plan tidies
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Params:
        cloudfront = bool(self.distribution_id or self.domain)
        apigateway = bool(self.rest_api_id or self.api_name)
        if cloudfront and apigateway:
            raise ValueError(f"give one target: {_CLOUDFRONT} or {_APIGATEWAY}, not both")
        if not cloudfront and not apigateway:
            raise ValueError(f"no target: give {_CLOUDFRONT} or {_APIGATEWAY}")
        if cloudfront and (self.stage or self.flush_authorizers):
            raise ValueError("stage and flush_authorizers are for an API Gateway stage, not "
                             "a CloudFront distribution")
        if apigateway and not self.stage:
            raise ValueError("stage is needed with rest_api_id or api_name")
        if apigateway and "paths" in self.model_fields_set:
            raise ValueError("paths are for CloudFront; a stage cache flush empties the whole "
                             "stage")
        return self

    @property
    def target(self) -> str:
        return "cloudfront" if self.distribution_id or self.domain else "apigateway"


class CacheInvalidation(Playbook):
    name = NAME
    summary = "Invalidate a CloudFront distribution's paths or flush an API Gateway stage cache"
    Params = Params
    default_approval = "auto"
    reversible = False
    long_running = False
    # Invalidations take seconds to minutes; one still running after 15 has gone wrong.
    step_deadline: ClassVar[timedelta] = timedelta(minutes=15)

    def params_from_alarm(self, alarm: AlarmEvent) -> dict[str, Any]:
        dimensions = alarm.dimensions
        if dimensions.get("DistributionId"):
            return {"distribution_id": dimensions["DistributionId"]}
        if dimensions.get("ApiName"):
            params = {"api_name": dimensions["ApiName"]}
            if dimensions.get("Stage"):
                params["stage"] = dimensions["Stage"]
            return params
        return {}

    def plan(self, ctx: PlaybookContext, params: Params) -> Plan:
        return TARGETS[params.target].plan(ctx, params)

    def steps(self, plan: Plan) -> list[str]:
        return list(_target(plan.state).steps)

    def run_step(self, ctx: PlaybookContext, plan: Plan, step: str) -> StepResult:
        return _target(plan.state).run_step(ctx, plan.state, step)

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        return _target(plan.state).outcome(ctx, plan)

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        return _target(outcome.after).verify(ctx, outcome)

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        raise NotReversible(_target(outcome.after).why_not_undone(outcome),
                            playbook=self.name, step="undo")


def _target(recorded: dict[str, Any]) -> CacheTarget:
    return TARGETS[recorded.get("target", "cloudfront")]
