"""Making and unmaking an s3-static-rollback's changes, crash-safe (a private module).

The playbook (`s3_static_rollback.py`) plans and reports; this module makes the calls.
What is recorded in `ctx.progress` while a rollback step runs:

    checked    every planned key was found as the plan saw it (before the first change)
    inflight   keys whose calls may have been sent: checkpointed before the calls
    done       key -> the version the rollback made ("delete-marker:<id>" for a marker)
    skipped    key -> why it was left as it was (changed by someone; refused by S3)
    unchecked  copies whose ETag differs from the source's (multipart or KMS objects)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fireline.aws import describe_aws_error, error_code
from fireline.errors import AwsCallFailed, PreconditionFailed
from fireline.playbook import PlaybookContext, StepResult
from fireline.timestamps import as_utc, iso
from playbooks._s3_versions import (
    ARCHIVED,
    MARKER,
    NAME,
    Action,
    History,
    Latest,
    Version,
    head_latest,
    list_versions,
)

# Objects per execute step: each step is one driver's advance, renewing the lease as it
# checkpoints; several steps keep a large rollback within one Lambda invocation each.
STEP_SIZE = 100
# Keys whose intent is checkpointed together, before their calls are made.
INTENT_CHUNK = 25
# Throttling or a lost connection: the step waits this long and runs again.
RETRY_SECONDS = 30
_TRANSIENT = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
                        "Throttling", "ThrottlingException", "RequestTimeTooSkewed",
                        "500", "503"})


def refuse(message: str, *, step: str = "plan") -> PreconditionFailed:
    return PreconditionFailed(message, playbook=NAME, step=step)


def when(moment: datetime) -> str:
    """A time for people: whole seconds when that is exact, else milliseconds."""
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if not moment.microsecond else iso(moment)


def where(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def some(items: Iterable[str], limit: int = 10) -> str:
    """The first `limit` items, and how many more: a message stays readable in Slack."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def describe(latest: Version | Latest | None) -> str:
    if latest is None:
        return "absent"
    return f"{'delete marker' if latest.is_marker else 'version'} {latest.version_id}"


def versions(s3: Any, bucket: str, prefix: str, *, step: str = "plan") -> dict[str, History]:
    """`list_versions`, its failures as Fireline errors."""
    try:
        return list_versions(s3, bucket, prefix)
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            raise refuse(f"bucket {bucket} does not exist", step=step) from exc
        raise _named(describe_aws_error("s3:ListBucketVersions", exc), step) from exc
    except BotoCoreError as exc:
        raise _named(describe_aws_error("s3:ListBucketVersions", exc), step) from exc


def check_versioning(s3: Any, bucket: str, *, step: str = "plan") -> None:
    """Refuse unless versioning is Enabled: without it no old version exists, and while
    it is Suspended a copy overwrites the `null` version instead of adding one."""
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as exc:
        if error_code(exc) in {"NoSuchBucket", "404"}:
            raise refuse(f"bucket {bucket} does not exist", step=step) from exc
        raise _named(describe_aws_error("s3:GetBucketVersioning", exc), step) from exc
    except BotoCoreError as exc:
        raise _named(describe_aws_error("s3:GetBucketVersioning", exc), step) from exc
    if status == "Suspended":
        raise refuse(f"bucket {bucket} has versioning suspended: a copy would overwrite each "
                     "object's null version instead of adding a new one, so nothing is "
                     "rolled back; enable versioning first", step=step)
    if status != "Enabled":
        raise refuse(f"bucket {bucket} is not versioned; an older version cannot be restored",
                     step=step)


# --- execute --------------------------------------------------------------------------


def run_rollback(ctx: PlaybookContext, state: dict[str, Any], batch: list[Action],
                 everything: list[Action], *, step: str) -> StepResult:
    """Make `batch`'s changes, idempotently; see the module's docstring for the progress.

    Keys an earlier attempt left in flight are read back first, so that every call made
    afterwards knows whether anything has changed yet."""
    s3 = ctx.clients("s3")
    bucket = state["bucket"]
    progress = ctx.progress
    done: dict[str, str] = progress.setdefault("done", {})
    skipped: dict[str, str] = progress.setdefault("skipped", {})
    unchecked: list[str] = progress.setdefault("unchecked", [])
    inflight: list[str] = progress.setdefault("inflight", [])
    made: list[str] = []
    left: list[str] = []
    try:
        check_versioning(s3, bucket, step=step)
        if not progress.get("checked"):
            _check_unchanged(s3, state, everything, step=step)
            progress["checked"] = True
        by_key = {a.key: a for a in everything}
        for key in list(inflight):
            action = by_key.get(key)
            found = (None if action is None or key in done or key in skipped
                     else _recover(s3, bucket, action))
            if isinstance(found, _Done):
                done[key] = found.made
                made.append(by_key[key].kind)
            elif isinstance(found, _Skipped):
                skipped[key] = found.reason
                left.append(key)
            inflight.remove(key)  # not made: it is planned again below, with its intent
        todo = [a for a in batch if a.key not in done and a.key not in skipped]
        for start in range(0, len(todo), INTENT_CHUNK):
            chunk = todo[start:start + INTENT_CHUNK]
            inflight[:] = sorted(set(inflight) | {a.key for a in chunk})
            ctx.checkpoint()
            for action in chunk:
                result = _apply(s3, bucket, action, first=not done, step=step)
                if isinstance(result, _Skipped):
                    skipped[action.key] = result.reason
                    left.append(action.key)
                else:
                    done[action.key] = result.made
                    made.append(action.kind)
                    if not result.same_etag:
                        unchecked.append(action.key)
                inflight.remove(action.key)
    except _Wait as wait:
        return StepResult.wait(RETRY_SECONDS, f"{wait.reason}; trying again in "
                                              f"{RETRY_SECONDS} s ({len(done)} of "
                                              f"{len(everything)} objects done)")
    message = counts(made) if made else "nothing left to do"
    if left:
        message += f"; skipped {some(left)}"
    return StepResult.done(message)


@dataclass(frozen=True)
class _Done:
    made: str
    same_etag: bool = True


@dataclass(frozen=True)
class _Skipped:
    reason: str


class _Wait(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _recover(s3: Any, bucket: str, action: Action) -> _Done | _Skipped | None:
    """Did an earlier attempt's call for `action` get through? None: it did not."""
    try:
        latest = head_latest(s3, bucket, action.key)
    except (ClientError, BotoCoreError) as exc:
        if _transient(exc):
            raise _Wait(f"s3:GetObject on {action.key} failed: {error_code(exc)}") from exc
        return _Skipped(f"cannot tell whether an interrupted call got through: "
                        f"{describe_aws_error('s3:GetObject', exc).message}")
    if latest is not None and latest.version_id == action.current:
        return None
    if _ours(action, latest):
        assert latest is not None
        return _Done(f"{MARKER}{latest.version_id}" if latest.is_marker else latest.version_id)
    return _Skipped(f"changed since the plan: now {describe(latest)}")


def _apply(s3: Any, bucket: str, action: Action, *, first: bool, step: str) -> _Done | _Skipped:
    call = "s3:GetObject"  # HeadObject of the latest version
    try:
        latest = head_latest(s3, bucket, action.key)
        if latest is None or latest.version_id != action.current:
            return _Skipped(f"changed since the plan: now {describe(latest)}")
        if action.kind == "hide":
            call = "s3:DeleteObject"
            answer = s3.delete_object(Bucket=bucket, Key=action.key)
            return _Done(f"{MARKER}{answer['VersionId']}")
        call = "s3:PutObject"  # CopyObject; s3:GetObjectVersion on the source as well
        answer = s3.copy_object(**_copy_request(bucket, action.key, action.target or "",
                                                action.storage_class))
        etag = answer.get("CopyObjectResult", {}).get("ETag", "")
        return _Done(answer["VersionId"], same_etag=bool(etag) and etag == action.etag)
    except (ClientError, BotoCoreError) as exc:
        if _transient(exc):
            raise _Wait(f"{call} on {action.key} failed: {error_code(exc)}") from exc
        error = describe_aws_error(call, exc)
        if first:
            raise AwsCallFailed(f"{error.message} (on {action.key}); nothing was changed",
                                playbook=NAME, step=step) from exc
        # Something changed already: carry on, so the outcome is recorded and undoable.
        return _Skipped(error.message)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, BotoCoreError) or error_code(exc) in _TRANSIENT


def _ours(action: Action, latest: Latest | None) -> bool:
    """Is `latest` what our own earlier call for `action` made?"""
    if latest is None:
        return False
    if action.kind == "hide":
        return latest.is_marker
    return not latest.is_marker and bool(action.etag) and latest.etag == action.etag


def _check_unchanged(s3: Any, state: dict[str, Any], everything: list[Action], *,
                     step: str) -> None:
    histories = versions(s3, state["bucket"], state["prefix"], step=step)
    changed = []
    for action in everything:
        history = histories.get(action.key)
        latest = history.latest if history else None
        if latest is None or latest.version_id != action.current:
            changed.append(f"{action.key} (now {describe(latest)})")
    if changed:
        place = where(state["bucket"], state["prefix"])
        raise refuse(f"{len(changed)} object{'s'[:len(changed) != 1]} under {place} changed "
                     f"since the plan: {some(changed)}; nothing was changed, plan again",
                     step=step)


def counts(kinds: list[str], *, past: bool = True) -> str:
    """What was (or will be) done, by kind: "copied back 2 changed, brought back 1 deleted"."""
    words = {"restore": ("copy back {} changed", "copied back {} changed"),
             "undelete": ("bring back {} deleted", "brought back {} deleted"),
             "hide": ("put a delete marker on {} added", "put a delete marker on {} added")}
    parts = [words[kind][past].format(kinds.count(kind)) for kind in words if kind in kinds]
    return ", ".join(parts) or "nothing"


# --- undo -----------------------------------------------------------------------------


def undo_rollback(ctx: PlaybookContext, bucket: str, prefix: str, before: dict[str, str],
                  after: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Put back every key of `after` as `before` had it, all or nothing (checked first).

    Returns what was made per key, and the keys that already were as before."""
    s3 = ctx.clients("s3")
    histories = versions(s3, bucket, prefix, step="undo")
    todo: list[tuple[str, str, Version | None]] = []
    already: list[str] = []
    changed: list[str] = []
    for key, made in after.items():
        history = histories.get(key)
        latest = history.latest if history else None
        was = before[key]
        if made.startswith(MARKER):  # a delete marker we made: remove it
            marker = made.removeprefix(MARKER)
            if latest is not None and latest.is_marker and latest.version_id == marker:
                todo.append((key, "unhide", latest))
            elif (latest is not None and latest.version_id == was and history is not None
                  and history.find(marker) is None):
                already.append(key)
            else:
                changed.append(f"{key} (now {describe(latest)}; the rollback left {made})")
        elif was.startswith(MARKER):  # it was deleted before: delete it again
            if latest is not None and latest.version_id == made:
                todo.append((key, "delete", None))
            elif latest is not None and latest.is_marker:
                already.append(key)
            else:
                changed.append(f"{key} (now {describe(latest)}; the rollback left {made})")
        else:  # copy the version before back over ours
            source = history.find(was) if history else None
            if source is None or source.is_marker:
                changed.append(f"{key} (its version {was} from before the rollback is gone)")
            elif source.storage_class in ARCHIVED:
                changed.append(f"{key} (its version {was} is in {source.storage_class}; "
                               "restore it from the archive first)")
            elif latest is not None and latest.version_id == made:
                todo.append((key, "copy", source))
            elif (latest is not None and not latest.is_marker and source.etag
                  and latest.etag == source.etag):
                already.append(key)
            else:
                changed.append(f"{key} (now {describe(latest)}; the rollback left {made})")
    if changed:
        raise refuse(f"{len(changed)} object{'s'[:len(changed) != 1]} under "
                     f"{where(bucket, prefix)} changed since the rollback: {some(changed)}; "
                     "nothing was undone (undo puts back all or nothing): put them back by "
                     "hand, see runbooks/s3-static-rollback.md", step="undo")
    return _undo_calls(s3, bucket, todo, before), sorted(already)


def _undo_calls(s3: Any, bucket: str, todo: list[tuple[str, str, Version | None]],
                before: dict[str, str]) -> dict[str, str]:
    made: dict[str, str] = {}
    for key, how, version in todo:
        call = {"unhide": "s3:DeleteObjectVersion", "delete": "s3:DeleteObject",
                "copy": "s3:PutObject"}[how]
        try:
            if how == "unhide":
                assert version is not None and version.is_marker  # never a version with data
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version.version_id)
                made[key] = before[key]
            elif how == "delete":
                made[key] = MARKER + s3.delete_object(Bucket=bucket, Key=key)["VersionId"]
            else:
                assert version is not None
                made[key] = s3.copy_object(**_copy_request(
                    bucket, key, version.version_id, version.storage_class))["VersionId"]
        except (ClientError, BotoCoreError) as exc:
            error = describe_aws_error(call, exc)
            raise AwsCallFailed(
                f"{error.message} (on {key}); {len(made)} of {len(todo)} objects were put "
                "back before it; run undo again to finish (what is put back already is "
                "recognised and left alone)", playbook=NAME, step="undo") from exc
    return made


def _copy_request(bucket: str, key: str, version_id: str, storage_class: str) -> dict[str, Any]:
    """CopyObject of one version over its own key: content type, cache headers, metadata
    and tags as they were (MetadataDirective COPY); the storage class kept too."""
    request: dict[str, Any] = {
        "Bucket": bucket, "Key": key, "MetadataDirective": "COPY",
        "CopySource": {"Bucket": bucket, "Key": key, "VersionId": version_id}}
    if storage_class != "STANDARD":
        request["StorageClass"] = storage_class
    return request


def _named(error: AwsCallFailed, step: str) -> AwsCallFailed:
    return AwsCallFailed(error.message, playbook=NAME, step=step)
