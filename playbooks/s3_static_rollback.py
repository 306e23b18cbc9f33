"""s3-static-rollback: put a static site in a versioned S3 bucket back as it was at a time.

Changes: every object under `prefix` whose latest version is not the one current at
`restore_to` (default: `lookback_minutes` before the trouble began). The old version is
copied over it (`CopyObject` from that VersionId, `MetadataDirective=COPY`, so content
type, cache headers and metadata come back too): a new version with the old content. An
object deleted since comes back the same way. An object created since is left alone and
the plan warns, or, with `delete_new`, it gets a delete marker. Nothing is deleted: every
version stays; the one version Fireline ever removes is a delete marker it put there
itself (by undo). Objects under the prefix that the plan did not list are never touched.

Refuses, changing nothing: a missing bucket; versioning not Enabled (never enabled: no
older version to restore; Suspended: a copy would overwrite the `null` version instead of
adding one); `restore_to` in the future; no object under the prefix at `restore_to`;
nothing to roll back; more changes than `max_objects`, or than one incident record can
hold (plan, progress, outcome and undo all list every key); an old version in Glacier or
Deep Archive (it must be restored first); a key whose state at `restore_to` depends on the
order of a version and a delete marker made in the same second (S3 reports seconds).

Execute runs as steps of up to 100 objects (`rollback`, or `rollback-1-of-N`), keys in
order. Before the first change every planned key is checked against the plan: if any
changed since, the run fails naming them and nothing was changed. The keys of each batch
of calls are checkpointed in `ctx.progress` before the calls; after a crash those keys are
read back first: still the version seen at plan time -> the call is made now; the old
content on top (same ETag), or a delete marker where one was to go -> that was our call,
which is never repeated. A key that changes after the check, or that S3 refuses once
something has changed, is skipped and named, so the outcome is recorded and can be undone;
verify then fails and names it. Throttling or a lost connection waits and runs the step
again from its progress.

Verify: each key's latest version is the one the rollback created, and a copy has the
old version's ETag (except where the copy's ETag already differed from the source's:
multipart and KMS-encrypted objects get new ETags when copied; those count by version id).

Undo: all or nothing. If any key changed since the rollback (its latest is no longer what
the rollback made), undo refuses, names them and changes nothing. Otherwise, per key: the
version current before the rollback is copied over again; a key the rollback brought back
from deleted gets a delete marker again; each delete marker the rollback made is removed
(that brings the object back; it deletes no data). A key already as it was before the
rollback is left alone, so an undo that failed half-way can simply be run again.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fireline.alarm import AlarmEvent
from fireline.aws import error_code
from fireline.errors import VerificationFailed
from fireline.playbook import (
    Change,
    Outcome,
    Plan,
    Playbook,
    PlaybookContext,
    StepResult,
    Verification,
)
from fireline.timestamps import parse_aws_time, parse_requested_time
from playbooks._s3_apply import (
    STEP_SIZE,
    check_versioning,
    counts,
    describe,
    refuse,
    run_rollback,
    some,
    undo_rollback,
    versions,
    when,
    where,
)
from playbooks._s3_versions import ARCHIVED, MARKER, NAME, Action, decide

_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# The incident record is one DynamoDB item (400 KB). Progress, outcome and an undo's
# outcome repeat each key about twice more than the plan does (measured: ~2.9x).
RECORD_BUDGET = 360_000
RECORD_FACTOR = 3


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(pattern=_BUCKET, description="bucket name (not an s3:// URL)")
    prefix: str = Field(default="", max_length=1024,
                        description="key prefix; end it with / for a folder ('' = the bucket)")
    restore_to: datetime | None = Field(
        default=None, description="ISO-8601 time with a timezone; default: "
                                  "lookback_minutes before the trouble began")
    lookback_minutes: int = Field(default=10, ge=1, le=1440)
    delete_new: bool = Field(default=False, description="put a delete marker on objects "
                                                        "created after restore_to")
    max_objects: int = Field(default=10_000, ge=1, le=100_000,
                             description="refuse a plan that changes more objects")

    @field_validator("restore_to", mode="before")
    @classmethod
    def _aware_time(cls, value: object) -> object:
        return parse_requested_time(value)


class S3StaticRollback(Playbook):
    name = NAME
    summary = "Put every object under an S3 prefix back to its version at a given time"
    Params = Params
    default_approval = "auto"
    reversible = True

    def params_from_alarm(self, alarm: AlarmEvent) -> dict[str, Any]:
        # S3 request metrics (4xxErrors, 5xxErrors) carry the bucket.
        bucket = alarm.dimensions.get("BucketName")
        return {"bucket": bucket} if bucket else {}

    def plan(self, ctx: PlaybookContext, params: Params) -> Plan:
        s3 = ctx.clients("s3")
        place = where(params.bucket, params.prefix)
        check_versioning(s3, params.bucket)
        restore_to = _restore_time(ctx, params)
        histories = versions(s3, params.bucket, params.prefix)
        if not histories:
            raise refuse(f"nothing to roll back: there is no object under {place}")
        decision = decide(histories.values(), restore_to, delete_new=params.delete_new)
        if decision.ambiguous:
            raise refuse(
                f"cannot tell which came first for {some(decision.ambiguous)}: a version and a "
                f"delete marker were made in the same second, and S3 reports whole seconds; "
                f"pass a restore_to a second earlier or later than {when(restore_to)}")
        if decision.archived:
            raise refuse(
                f"the version at {when(restore_to)} of {some(decision.archived)} is in an "
                f"archive storage class ({'/'.join(sorted(ARCHIVED))}) and cannot be copied "
                "until it is restored; restore it first, or roll back by hand")
        if not decision.existed:
            oldest = min(e.last_modified for h in histories.values() for e in h.entries)
            raise refuse(
                f"no object under {place} existed at {when(restore_to)} (the oldest version "
                f"is from {when(oldest)}): a rollback would leave nothing; pass a later "
                "restore_to")
        added_note = _added_warning(decision.added, restore_to)
        if not decision.actions:
            raise refuse(f"nothing to roll back: every object under {place} is as it was at "
                         f"{when(restore_to)}" + (f"; {added_note}" if added_note else ""))
        actions = decision.actions
        if len(actions) > params.max_objects:
            raise refuse(f"the rollback would change {len(actions)} objects under {place}, "
                         f"more than max_objects={params.max_objects}; narrow the prefix or "
                         "raise max_objects")
        warnings = [added_note] if added_note else []
        warnings += _acl_warning(s3, params.bucket)
        plan = Plan(
            playbook=self.name,
            params=params.model_dump(mode="json"),
            summary=_plan_summary(actions, place, restore_to, decision.unchanged),
            changes=[_planned_change(params.bucket, a) for a in actions],
            warnings=warnings,
            state={"bucket": params.bucket, "prefix": params.prefix,
                   "restore_to": restore_to.isoformat(), "delete_new": params.delete_new,
                   "step_size": STEP_SIZE, "actions": [a.to_state() for a in actions]},
        )
        _check_record_size(plan, place)
        return plan

    def steps(self, plan: Plan) -> list[str]:
        size = plan.state.get("step_size", STEP_SIZE)
        count = max(1, math.ceil(len(plan.state["actions"]) / size))
        return ["rollback"] if count == 1 else [f"rollback-{n}-of-{count}"
                                                for n in range(1, count + 1)]

    def run_step(self, ctx: PlaybookContext, plan: Plan, step: str) -> StepResult:
        size = plan.state.get("step_size", STEP_SIZE)
        index = self.steps(plan).index(step)
        actions = [Action.from_state(a) for a in plan.state["actions"]]
        batch = actions[index * size:(index + 1) * size]
        return run_rollback(ctx, plan.state, batch, actions, step=step)

    def outcome(self, ctx: PlaybookContext, plan: Plan) -> Outcome:
        s = plan.state
        actions = {a["key"]: Action.from_state(a) for a in s["actions"]}
        done: dict[str, str] = dict(sorted(ctx.progress.get("done", {}).items()))
        skipped: dict[str, str] = ctx.progress.get("skipped", {})
        before = {key: actions[key].before for key in done}
        kinds = [actions[key].kind for key in done]
        place = where(s["bucket"], s["prefix"])
        summary = (f"rolled back {len(done)} object{'s'[:len(done) != 1]} under {place} to "
                   f"{when(parse_aws_time(s['restore_to']))}: " + counts(kinds, past=True))
        if skipped:
            summary += f"; {len(skipped)} skipped: {some(sorted(skipped))}"
        return Outcome(
            playbook=self.name,
            summary=summary,
            changes=[Change(resource=_uri(s["bucket"], key), attribute="VersionId",
                            before=before[key], after=made) for key, made in done.items()],
            before={"bucket": s["bucket"], "prefix": s["prefix"],
                    "restore_to": s["restore_to"], "keys": before},
            after={"keys": done,
                   "restored_from": {key: actions[key].target for key in done
                                     if actions[key].target},
                   "skipped": skipped,
                   "unchecked": sorted(ctx.progress.get("unchecked", []))},
            executed_at=ctx.clock(),
        )

    def verify(self, ctx: PlaybookContext, outcome: Outcome) -> Verification:
        b, a = outcome.before, outcome.after
        place, moment = where(b["bucket"], b["prefix"]), when(parse_aws_time(b["restore_to"]))
        histories = versions(ctx.clients("s3"), b["bucket"], b["prefix"], step="verify")
        unchecked = set(a.get("unchecked", []))
        problems = [f"{key} was skipped ({why})" for key, why in a.get("skipped", {}).items()]
        for key, made in a["keys"].items():
            history = histories.get(key)
            latest = history.latest if history else None
            if latest is None or latest.version_id != made.removeprefix(MARKER):
                problems.append(f"{key} is now {describe(latest)}, not {made}")
                continue
            source_id = a["restored_from"].get(key)
            source = history.find(source_id) if history and source_id else None
            if source_id and key not in unchecked and (source is None
                                                       or source.etag != latest.etag):
                problems.append(f"{key} does not have the content of version {source_id}")
        if problems:
            raise VerificationFailed(
                f"{len(problems)} object{'s'[:len(problems) != 1]} under {place} "
                f"{'is' if len(problems) == 1 else 'are'} not as at {moment}: {some(problems)}",
                playbook=self.name, step="verify")
        count = len(a["keys"])
        summary = f"{count} object{'s'[:count != 1]} under {place} read back as at {moment}"
        if unchecked:
            summary += (f" ({len(unchecked)} by version id only: multipart or KMS objects "
                        "get a new ETag when copied)")
        return Verification(ok=True, summary=summary)

    def undo(self, ctx: PlaybookContext, outcome: Outcome) -> Outcome:
        b, a = outcome.before, outcome.after
        made, already = undo_rollback(ctx, b["bucket"], b["prefix"], b["keys"], a["keys"])
        place = where(b["bucket"], b["prefix"])
        summary = (f"put back {len(made)} object{'s'[:len(made) != 1]} under {place} as they "
                   "were before the rollback")
        if already:
            summary += f"; {len(already)} already were: {some(already)}"
        return Outcome(
            playbook=self.name,
            summary=summary,
            changes=[Change(resource=_uri(b["bucket"], key), attribute="VersionId",
                            before=a["keys"][key], after=new) for key, new in made.items()],
            before={"bucket": b["bucket"], "prefix": b["prefix"], "keys": a["keys"]},
            after={"keys": made, "already": already},
            executed_at=ctx.clock(),
        )


def _check_record_size(plan: Plan, place: str) -> None:
    """Refuse a plan whose run cannot be recorded whole: the plan, the progress, the outcome
    and an undo's outcome all go into one incident record (a DynamoDB item), and a run
    whose outcome cannot be saved could no longer be undone by Fireline."""
    needed = len(plan.model_dump_json()) * RECORD_FACTOR
    if needed > RECORD_BUDGET:
        count = len(plan.state["actions"])
        fits = int(count * RECORD_BUDGET / needed)
        raise refuse(f"rolling back {count} objects under {place} needs about "
                     f"{needed // 1000} KB of incident record, and one record holds "
                     f"{RECORD_BUDGET // 1000} KB (about {fits} objects with these names); "
                     "narrow the prefix (roll back folder by folder), or roll back by hand "
                     "(runbooks/s3-static-rollback.md)")


def _restore_time(ctx: PlaybookContext, params: Params) -> datetime:
    now = ctx.clock()
    chosen = params.restore_to or ctx.reference_time - timedelta(
        minutes=params.lookback_minutes)
    if chosen > now:
        raise refuse(f"restore_to {when(chosen)} is in the future (it is {when(now)})")
    return chosen


def _acl_warning(s3: Any, bucket: str) -> list[str]:
    """A copy gets the bucket's default ACL, not the old version's: say so where ACLs
    still count (buckets made before April 2023 often serve sites by public-read ACLs)."""
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    except ClientError as exc:
        if error_code(exc) != "OwnershipControlsNotFoundError":
            return [f"could not read the ownership controls of bucket {bucket} "
                    f"({error_code(exc)}); if objects carry their own ACLs, copies get the "
                    "default ACL"]
        rules = []
    except BotoCoreError:
        return []
    if any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules):
        return []
    return [f"bucket {bucket} has ACLs enabled: a copied version gets the default (private) "
            "ACL, not the old version's; if the site relies on public-read object ACLs, "
            "serve it through a bucket policy first"]


def _added_warning(added: list[str], moment: datetime) -> str:
    if not added:
        return ""
    one = len(added) == 1
    return (f"{len(added)} object{'' if one else 's'} created after {when(moment)} "
            f"{'is' if one else 'are'} left alone: {some(added)} (delete_new=true puts a "
            f"delete marker on {'it' if one else 'them'})")


def _plan_summary(actions: list[Action], place: str, moment: datetime,
                  unchanged: int) -> str:
    summary = (f"roll back {len(actions)} object{'s'[:len(actions) != 1]} under {place} to "
               f"{when(moment)}: " + counts([a.kind for a in actions], past=False))
    return summary + (f"; {unchanged} unchanged" if unchanged else "")


def _planned_change(bucket: str, action: Action) -> Change:
    after = "delete marker" if action.kind == "hide" else action.target
    return Change(resource=_uri(bucket, action.key), attribute="VersionId",
                  before=action.before, after=after)


def _uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"

