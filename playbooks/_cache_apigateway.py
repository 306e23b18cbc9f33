"""Flush of an API Gateway REST stage's cache (a private module of cache-invalidation).

One step, `flush`: FlushStageCache, and FlushStageAuthorizersCache when asked. Flushing
twice does no harm, so a retry after a crash flushes again rather than guess; what went
through is kept in `ctx.progress` so a retry skips it.

API Gateway has no call that reads a flush back: verify can only confirm that the stage
still has its cache cluster, and says so.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import VerificationFailed
from fireline.playbook import Change, Outcome, Plan, PlaybookContext, StepResult, Verification
from playbooks._cache_common import NAME, CacheTarget, refuse

# cacheClusterStatus values a flush cannot act on, and why.
_NOT_FLUSHABLE = {
    "CREATE_IN_PROGRESS": "it is being created or resized, which empties it anyway",
    "DELETE_IN_PROGRESS": "it is being deleted",
    "NOT_AVAILABLE": "it is not available",
}
_SHOWN = 10


class ApiGatewayTarget(CacheTarget):
    kind = "apigateway"
    steps = ("flush",)

    def plan(self, ctx: PlaybookContext, params: Any) -> Plan:
        ag = ctx.clients("apigateway")
        api_id, api_name = _resolve_api(ag, params.rest_api_id, params.api_name)
        stage = _get_stage(ag, api_id, api_name, params.stage)
        what = f"stage {params.stage} of API {api_name} ({api_id})"
        arn = (f"arn:{ag.meta.partition}:apigateway:{ag.meta.region_name}::/restapis/"
               f"{api_id}/stages/{params.stage}")
        warnings: list[str] = []
        flush_cache = bool(stage.get("cacheClusterEnabled"))
        status = stage.get("cacheClusterStatus", "")
        if not flush_cache:
            if not params.flush_authorizers:
                raise refuse(f"{what} has no cache cluster; there is nothing to flush (if it "
                             "is the authorizers' cached results that are stale, pass "
                             "flush_authorizers=true)")
            warnings.append(f"{what} has no cache cluster: only the authorizers' cache is "
                            "flushed")
        elif status in _NOT_FLUSHABLE:
            raise refuse(f"the cache cluster of {what} is {status}: {_NOT_FLUSHABLE[status]}; "
                         "nothing was flushed")
        else:
            if status == "FLUSH_IN_PROGRESS":
                warnings.append(f"the cache of {what} is already being flushed; it is "
                                "flushed again")
            warnings += _load_warnings(stage, what)
        flushed = [*(["cache"] if flush_cache else []),
                   *(["authorizers"] if params.flush_authorizers else [])]
        return Plan(
            playbook=NAME,
            params=params.model_dump(include={"rest_api_id", "api_name", "stage",
                                              "flush_authorizers"}, exclude_none=True),
            summary=f"flush {_describe(flushed)} of {what}",
            changes=_changes(arn, flushed),
            warnings=warnings,
            state={"target": self.kind, "rest_api_id": api_id, "api_name": api_name,
                   "stage": params.stage, "stage_arn": arn, "what": what, "flush": flushed,
                   "cache_size": stage.get("cacheClusterSize")},
        )

    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        ag = ctx.clients("apigateway")
        done: list[str] = ctx.progress.setdefault("flushed", [])
        where = f"/restapis/{state['rest_api_id']}/stages/{state['stage']}"
        calls = {"cache": (ag.flush_stage_cache, f"apigateway:DELETE {where}/cache/data"),
                 "authorizers": (ag.flush_stage_authorizers_cache,
                                 f"apigateway:DELETE {where}/cache/authorizers")}
        for part in state["flush"]:
            if part in done:
                continue
            call, name = calls[part]
            try:
                call(restApiId=state["rest_api_id"], stageName=state["stage"])
            except (ClientError, BotoCoreError) as exc:
                raise describe_aws_error(name, exc) from exc
            done.append(part)
        return StepResult.done(f"flushed {_describe(state['flush'])} of {state['what']}")

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        s = plan.state
        return Outcome(
            playbook=NAME,
            summary=f"flushed {_describe(s['flush'])} of {s['what']}",
            changes=_changes(s["stage_arn"], s["flush"]),
            before={},
            after={"target": self.kind, "rest_api_id": s["rest_api_id"],
                   "api_name": s["api_name"], "stage": s["stage"], "stage_arn": s["stage_arn"],
                   "what": s["what"], "flushed": list(ctx.progress.get("flushed", s["flush"]))},
            executed_at=ctx.clock(),
        )

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        a = outcome.after
        stage = _get_stage(ctx.clients("apigateway"), a["rest_api_id"], a["api_name"],
                           a["stage"], step="verify")
        unseen = ("API Gateway has no call that reads a flush back, so its acceptance of the "
                  "flush is the evidence")
        if "cache" not in a["flushed"]:
            return Verification(ok=True, summary=f"API Gateway accepted the flush of the "
                                                 f"authorizers' cache of {a['what']}; {unseen}")
        if not stage.get("cacheClusterEnabled"):
            raise VerificationFailed(f"{a['what']} no longer has a cache cluster",
                                     playbook=NAME, step="verify")
        size = stage.get("cacheClusterSize")
        return Verification(
            ok=True,
            summary=f"{a['what']} still has its {size + ' GB ' if size else ''}cache cluster "
                    f"({stage.get('cacheClusterStatus', 'status unknown')}); {unseen}")

    def why_not_undone(self, outcome: Outcome) -> str:
        return (f"a flushed cache cannot be put back: {outcome.after.get('what', 'the stage')} "
                "refills from the backend as requests come in")


def _resolve_api(ag: Any, rest_api_id: str | None, api_name: str | None) -> tuple[str, str]:
    """(id, name) of the REST API; when both are given they must name the same one."""
    region = ag.meta.region_name
    if api_name:
        try:
            apis = [api for page in ag.get_paginator("get_rest_apis").paginate()
                    for api in page.get("items", [])]
        except ClientError as exc:
            raise describe_aws_error("apigateway:GET /restapis", exc) from exc
        ids = [api["id"] for api in apis if api.get("name") == api_name]
        if not ids:
            names = sorted({str(api.get("name")) for api in apis})
            known = (f" (REST APIs there: {', '.join(names[:_SHOWN])}"
                     f"{', ...' if len(names) > _SHOWN else ''})" if names else "")
            raise refuse(f"there is no REST API named {api_name} in {region}{known}")
        if len(ids) > 1:
            raise refuse(f"{len(ids)} REST APIs in {region} are named {api_name} "
                         f"({', '.join(sorted(ids))}); pass rest_api_id")
        if rest_api_id and ids[0] != rest_api_id:
            raise refuse(f"the REST API named {api_name} is {ids[0]}, not {rest_api_id}; "
                         "pass one of them")
        return ids[0], api_name
    try:
        api = ag.get_rest_api(restApiId=rest_api_id)
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            raise refuse(f"there is no REST API {rest_api_id} in {region}") from exc
        raise describe_aws_error(f"apigateway:GET /restapis/{rest_api_id}", exc) from exc
    return str(rest_api_id), str(api.get("name", rest_api_id))


def _get_stage(ag: Any, api_id: str, api_name: str, stage: str, *,
               step: str = "plan") -> dict[str, Any]:
    try:
        return ag.get_stage(restApiId=api_id, stageName=stage)
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise describe_aws_error(f"apigateway:GET /restapis/{api_id}/stages/{stage}",
                                     exc) from exc
        try:
            names = sorted(s["stageName"] for s in ag.get_stages(restApiId=api_id)["item"])
        except (ClientError, KeyError):
            names = []
        known = f" (its stages: {', '.join(names)})" if names else ""
        raise refuse(f"API {api_name} ({api_id}) has no stage {stage}{known}",
                     step=step) from exc


def _load_warnings(stage: dict[str, Any], what: str) -> list[str]:
    settings = stage.get("methodSettings") or {}
    cached = [s for s in settings.values() if s.get("cachingEnabled")]
    if not cached:
        return [f"no method of {what} has caching enabled, so its cache cluster should hold "
                "nothing; the flush is harmless but will not change what callers see"]
    ttl = max(int(s.get("cacheTtlInSeconds", 300)) for s in cached)
    return [f"every cached response of {what} is fetched from the backend again: the backend "
            f"takes the full load until the cache refills (up to {ttl} s, the longest TTL)"]


def _changes(arn: str, flushed: list[str]) -> list[Change]:
    attributes = {"cache": "cache", "authorizers": "authorizers-cache"}
    return [Change(resource=arn, attribute=attributes[part], before=None, after="flushed")
            for part in flushed]


def _describe(flushed: list[str]) -> str:
    names = {"cache": "the cache", "authorizers": "the authorizers' cache"}
    return " and ".join(names[part] for part in flushed)
