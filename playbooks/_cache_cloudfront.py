"""Invalidation of a CloudFront distribution's edge caches (a private module of
cache-invalidation).

Steps: `invalidate` sends one CreateInvalidation per request of at most 3,000 file paths
and 15 wildcard paths (see `_cache_paths`); `wait-complete` polls GetInvalidation every
10 s until each reads Completed. Never the boto3 waiter: it blocks a driver that must
save its progress and give up the lease between polls (and it hangs under moto).

CallerReference is the incident id (then `-2`, `-3`, ... for later requests): CloudFront
returns the existing invalidation when the same reference comes again with the same
paths. moto creates a second one instead, and a process can die between the call and
saving its answer, so each request is checkpointed before it is sent and, on a retry,
found again by its reference before anything is sent twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import VerificationFailed
from fireline.playbook import Change, Outcome, Plan, PlaybookContext, StepResult, Verification
from fireline.timestamps import as_utc, iso, parse_aws_time
from playbooks._cache_common import NAME, CacheTarget, plural, refuse
from playbooks._cache_paths import describe, read_paths

POLL_SECONDS = 10
BUSY_SECONDS = 30
# How far CloudFront's CreateTime may be from our clock when a lost request is looked for.
CLOCK_SKEW = timedelta(minutes=15)


def caller_reference(run_key: str, index: int) -> str:
    """The run's key (the incident id, or with its chain link) and the request's number."""
    return run_key if index == 0 else f"{run_key}-{index + 1}"


def is_complete(status: str) -> bool:
    # AWS writes "Completed" (and "InProgress" before); moto writes "COMPLETED".
    return status.casefold() == "completed"


class CloudFrontTarget(CacheTarget):
    kind = "cloudfront"
    steps = ("invalidate", "wait-complete")

    def plan(self, ctx: PlaybookContext, params: Any) -> Plan:
        cf = ctx.clients("cloudfront")
        distribution = _resolve(cf, params.distribution_id, params.domain)
        label = _label(distribution)
        if not distribution["DistributionConfig"].get("Enabled", True):
            raise refuse(f"CloudFront distribution {label} is disabled: it serves nothing, so "
                         "there is no cache to invalidate")
        paths = read_paths(params.paths)
        warnings: list[str] = []
        status = distribution.get("Status", "")
        if status != "Deployed":
            warnings.append(
                f"distribution {label} is still deploying a configuration change (status "
                f"{status or 'unknown'}): edges that have not taken it yet may cache under "
                "the old configuration again; invalidate again once it reads Deployed if "
                "that matters")
        warnings += paths.warnings
        requests = [list(r) for r in paths.requests]
        summary = f"invalidate {describe(_paths(requests))} on CloudFront distribution {label}"
        if len(requests) > 1:
            summary += (f" in {len(requests)} requests (CloudFront takes at most 3,000 file "
                        "paths and 15 wildcard paths at a time)")
        return Plan(
            playbook=NAME,
            params=params.model_dump(include={"distribution_id", "domain", "paths"},
                                     exclude_none=True),
            summary=summary,
            changes=_changes(distribution["ARN"], requests),
            warnings=warnings,
            state={"target": self.kind, "distribution_id": distribution["Id"],
                   "arn": distribution["ARN"], "label": label, "requests": requests},
        )

    def run_step(self, ctx: PlaybookContext, state: dict[str, Any], step: str) -> StepResult:
        if step == "invalidate":
            return _invalidate(ctx, state)
        return _wait_complete(ctx, state)

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        s = plan.state
        ids = _ids(ctx.progress, s)
        paths = _paths(s["requests"])
        return Outcome(
            playbook=NAME,
            summary=f"invalidated {describe(paths)} on CloudFront distribution "
                    f"{s['label']} ({plural(len(ids), 'invalidation')}: {', '.join(ids)})",
            changes=_changes(s["arn"], s["requests"]),
            before={},
            after={"target": self.kind, "distribution_id": s["distribution_id"],
                   "arn": s["arn"], "label": s["label"], "invalidation_ids": ids,
                   "paths": paths},
            executed_at=ctx.clock(),
        )

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        a = outcome.after
        cf = ctx.clients("cloudfront")
        for invalidation_id in a["invalidation_ids"]:
            status = _status(cf, a["distribution_id"], invalidation_id, step="verify")
            if not is_complete(status):
                raise VerificationFailed(
                    f"invalidation {invalidation_id} of {a['label']} reads back as {status}, "
                    "not Completed", playbook=NAME, step="verify")
        return Verification(
            ok=True,
            summary=f"CloudFront reports {plural(len(a['invalidation_ids']), 'invalidation')} "
                    f"of {a['label']} complete ({', '.join(a['invalidation_ids'])}): "
                    f"{describe(a['paths'])} now come from the origin on their next request")

    def why_not_undone(self, outcome: Outcome) -> str:
        return (f"an invalidation cannot be undone: the objects are already gone from "
                f"{outcome.after.get('label', 'the distribution')}'s edge caches and refill "
                "from the origin on their next requests; there is nothing to put back")


# --- steps -------------------------------------------------------------------------------


def _invalidate(ctx: PlaybookContext, s: dict[str, Any]) -> StepResult:
    cf = ctx.clients("cloudfront")
    made: dict[str, str] = ctx.progress.setdefault("invalidations", {})
    # When each request was sent, kept until its answer is: a crash in between leaves it.
    sent: dict[str, str] = ctx.progress.setdefault("sent", {})
    total = len(s["requests"])
    for index, paths in enumerate(s["requests"]):
        key = str(index)
        if key in made:
            continue
        reference = caller_reference(ctx.run_key, index)
        if key in sent:
            found = _find(cf, s["distribution_id"], reference, since=parse_aws_time(sent[key]))
            if found is not None:
                made[key] = found
                del sent[key]
                continue
        sent[key] = iso(ctx.clock())
        ctx.checkpoint()
        try:
            answer = cf.create_invalidation(
                DistributionId=s["distribution_id"],
                InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": list(paths)},
                                   "CallerReference": reference})
        except ClientError as exc:
            del sent[key]  # CloudFront answered: nothing was made
            code = error_code(exc)
            if code == "TooManyInvalidationsInProgress":
                return StepResult.wait(
                    BUSY_SECONDS,
                    f"CloudFront has as many invalidations in progress on {s['label']} as it "
                    f"takes; request {index + 1} of {total} goes when some finish")
            if code == "InvalidationBatchAlreadyExists":
                raise refuse(f"CloudFront already has an invalidation with reference "
                             f"{reference} for other paths on {s['label']}; nothing was sent",
                             step="invalidate") from exc
            raise describe_aws_error("cloudfront:CreateInvalidation", exc) from exc
        except BotoCoreError as exc:
            # The request may have got through: `sent` stays, so a retry looks first.
            raise describe_aws_error("cloudfront:CreateInvalidation", exc) from exc
        made[key] = answer["Invalidation"]["Id"]
        del sent[key]
    ids = _ids(ctx.progress, s)
    return StepResult.done(f"sent {plural(len(ids), 'invalidation')} to {s['label']}: "
                           f"{', '.join(ids)}")


def _wait_complete(ctx: PlaybookContext, s: dict[str, Any]) -> StepResult:
    cf = ctx.clients("cloudfront")
    ids = _ids(ctx.progress, s)
    completed: list[str] = ctx.progress.setdefault("completed", [])
    pending: list[tuple[str, str]] = []
    for invalidation_id in ids:
        if invalidation_id in completed:
            continue
        status = _status(cf, s["distribution_id"], invalidation_id, step="wait-complete")
        if is_complete(status):
            completed.append(invalidation_id)
        else:
            pending.append((invalidation_id, status))
    if pending:
        return StepResult.wait(
            POLL_SECONDS,
            f"{len(pending)} of {plural(len(ids), 'invalidation')} of {s['label']} not "
            f"complete yet: " + ", ".join(f"{i} {status}" for i, status in pending))
    return StepResult.done(f"{plural(len(ids), 'invalidation')} of {s['label']} completed")


# --- AWS ---------------------------------------------------------------------------------


def _resolve(cf: Any, distribution_id: str | None, domain: str | None) -> dict[str, Any]:
    """The distribution by id, or the one serving `domain`; both given must agree."""
    if domain:
        found = _by_domain(cf, domain)
        if distribution_id and found != distribution_id:
            raise refuse(f"{domain} is served by CloudFront distribution {found}, not "
                         f"{distribution_id}; pass one of them")
        distribution_id = found
    try:
        return cf.get_distribution(Id=distribution_id)["Distribution"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchDistribution":
            raise refuse(f"there is no CloudFront distribution {distribution_id} in this "
                         "account") from exc
        raise describe_aws_error("cloudfront:GetDistribution", exc) from exc


def _by_domain(cf: Any, domain: str) -> str:
    exact: list[str] = []
    wildcard: list[str] = []
    parent = domain.split(".", 1)[1] if "." in domain else ""
    try:
        for page in cf.get_paginator("list_distributions").paginate():
            for item in page["DistributionList"].get("Items") or []:
                aliases = [a.lower() for a in (item.get("Aliases") or {}).get("Items") or []]
                if domain in aliases or domain == item["DomainName"].lower():
                    exact.append(item["Id"])
                elif parent and f"*.{parent}" in aliases:
                    wildcard.append(item["Id"])
    except ClientError as exc:
        raise describe_aws_error("cloudfront:ListDistributions", exc) from exc
    # As CloudFront routes: a name listed exactly wins over a wildcard alternate name.
    matches = exact or wildcard
    if not matches:
        raise refuse(f"no CloudFront distribution serves {domain}: none has it as an "
                     "alternate domain name (alias) or as its cloudfront.net name")
    if len(matches) > 1:
        raise refuse(f"{domain} matches {len(matches)} CloudFront distributions "
                     f"({', '.join(sorted(matches))}); pass distribution_id")
    return matches[0]


def _find(cf: Any, distribution_id: str, reference: str, *,
          since: datetime) -> str | None:
    """The invalidation a lost answer made, by its CallerReference, or None."""
    try:
        pages = list(cf.get_paginator("list_invalidations").paginate(
            DistributionId=distribution_id))
    except ClientError as exc:
        raise describe_aws_error("cloudfront:ListInvalidations", exc) from exc
    for page in pages:
        for summary in page["InvalidationList"].get("Items") or []:
            if as_utc(summary["CreateTime"]) < since - CLOCK_SKEW:
                continue
            try:
                invalidation = cf.get_invalidation(DistributionId=distribution_id,
                                                   Id=summary["Id"])["Invalidation"]
            except ClientError as exc:
                raise describe_aws_error("cloudfront:GetInvalidation", exc) from exc
            if invalidation["InvalidationBatch"]["CallerReference"] == reference:
                return str(invalidation["Id"])
    return None


def _status(cf: Any, distribution_id: str, invalidation_id: str, *, step: str) -> str:
    try:
        answer = cf.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)
    except ClientError as exc:
        if error_code(exc) == "NoSuchInvalidation":
            raise refuse(f"invalidation {invalidation_id} of {distribution_id} is gone",
                         step=step) from exc
        raise describe_aws_error("cloudfront:GetInvalidation", exc) from exc
    return str(answer["Invalidation"]["Status"])


# --- plumbing ----------------------------------------------------------------------------


def _ids(progress: dict[str, Any], s: dict[str, Any]) -> list[str]:
    made = progress.get("invalidations", {})
    return [made[str(n)] for n in range(len(s["requests"])) if str(n) in made]


def _paths(requests: list[list[str]]) -> list[str]:
    return [path for paths in requests for path in paths]


def _changes(arn: str, requests: list[list[str]]) -> list[Change]:
    return [Change(resource=arn, attribute="invalidation", before=None, after=list(paths))
            for paths in requests]


def _label(distribution: dict[str, Any]) -> str:
    aliases = (distribution["DistributionConfig"].get("Aliases") or {}).get("Items") or []
    return f"{distribution['Id']} ({aliases[0] if aliases else distribution['DomainName']})"
