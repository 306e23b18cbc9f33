"""The s3-static-rollback playbook against moto: step by step as the engine drives it, and
through the app. A site is released twice (release 1, a moment, release 2 that changes
some files, adds one and drops one) and rolled back to the moment in between.

moto keeps LastModified in whole seconds, as S3 does: `pause_between_releases` waits for
the next second (at most one) so that the moment lies strictly between the releases.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fireline import aws, registry
from fireline.alarm import AlarmEvent
from fireline.app import Fireline, RunRequest
from fireline.config import Settings
from fireline.errors import AwsCallFailed, InvalidParams, PreconditionFailed, VerificationFailed
from fireline.local.static_site_fixture import (
    all_versions,
    create_versioned_bucket,
    delete_files,
    pause_between_releases,
    read_site,
    upload_release,
)
from fireline.playbook import Outcome, Plan, PlaybookContext
from fireline.timestamps import utc_now
from playbooks import _s3_apply, _s3_versions, s3_static_rollback
from playbooks._s3_versions import History, Version, decide
from tests.support.runs import Clock, Crash, Saved

PLAYBOOK = registry.get("s3-static-rollback")
BUCKET = "www-example-com"
PREFIX = "site/"
RELEASE_1 = {"index.html": "<h1>release 1</h1>", "app.js": "console.log(1)",
             "style.css": "body{color:black}", "about.html": "<p>about us</p>"}
RELEASE_2 = {"index.html": "<h1>release 2</h1>", "app.js": "console.log(2)",
             "new.js": "console.log('new in 2')"}
DROPPED = ["about.html"]  # release 2 deletes it


class Spy:
    """aws.client with the S3 client's writes recorded as (call, key, answer).

    `crash_after` = (call, n): the n-th such call reaches moto, then the process dies
    before the playbook sees the answer. `fail` = {(call, n): code}: the n-th attempt of
    that call is answered with that AWS error instead. `before_head(key)` runs before each
    HeadObject (a race). `etag` rewrites a copy's ETag, as S3 does for multipart and KMS
    objects.
    """

    def __init__(self, *, crash_after: tuple[str, int] | None = None,
                 fail: dict[tuple[str, int], str] | None = None, before_head=None,
                 etag: str | None = None) -> None:
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.attempts: Counter[str] = Counter()
        self.crash_after, self.fail = crash_after, fail or {}
        self.before_head, self.etag = before_head, etag

    def __call__(self, service: str, region: str | None = None) -> Any:
        client = aws.client(service, region)
        return _SpiedS3(client, self) if service == "s3" else client

    def keys(self, call: str) -> Counter[str]:
        return Counter(key for name, key, _ in self.writes if name == call)


class _SpiedS3:
    def __init__(self, client: Any, spy: Spy) -> None:
        self._client, self._spy = client, spy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def head_object(self, **kwargs: Any) -> Any:
        if self._spy.before_head:
            self._spy.before_head(kwargs["Key"])
        return self._client.head_object(**kwargs)

    def copy_object(self, **kwargs: Any) -> Any:
        return self._write("copy_object", kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        return self._write("delete_object", kwargs)

    def _write(self, name: str, kwargs: dict[str, Any]) -> Any:
        spy = self._spy
        spy.attempts[name] += 1
        code = spy.fail.get((name, spy.attempts[name]))
        if code:
            raise ClientError({"Error": {"Code": code, "Message": "refused by the test"}},
                              name)
        answer = getattr(self._client, name)(**kwargs)
        spy.writes.append((name, kwargs["Key"], answer))
        if spy.crash_after == (name, spy.attempts[name]):
            raise Crash(name)
        if name == "copy_object" and spy.etag:
            answer["CopyObjectResult"]["ETag"] = spy.etag
        return answer


@pytest.fixture
def world(moto) -> dict[str, Any]:
    """Release 1, a moment, release 2; `other/keep.txt` (outside the prefix) changes too."""
    create_versioned_bucket(aws.client, BUCKET)
    first = upload_release(aws.client, BUCKET, RELEASE_1, prefix=PREFIX,
                           metadata={"release": "1"})
    upload_release(aws.client, BUCKET, {"keep.txt": "outside 1"}, prefix="other/")
    between = pause_between_releases()
    second = upload_release(aws.client, BUCKET, RELEASE_2, prefix=PREFIX,
                            metadata={"release": "2"})
    upload_release(aws.client, BUCKET, {"keep.txt": "outside 2"}, prefix="other/")
    dropped = delete_files(aws.client, BUCKET, DROPPED, prefix=PREFIX)
    return {"between": between, "first": first, "second": second, "dropped": dropped}


def _plan(ctx: PlaybookContext, world: dict[str, Any] | None = None, **raw: Any) -> Plan:
    raw = {"bucket": BUCKET, "prefix": PREFIX, **raw}
    if world is not None:
        raw.setdefault("restore_to", world["between"].isoformat())
    plan = PLAYBOOK.plan(ctx, PLAYBOOK.parse_params(raw))
    return Plan.model_validate(plan.model_dump(mode="json"))  # as the incident stores it


def _drive(ctx: PlaybookContext, plan: Plan) -> Outcome:
    """Every step in order, as the engine runs them; progress persisted after each."""
    for step in PLAYBOOK.steps(plan):
        assert PLAYBOOK.run_step(ctx, plan, step).status == "done"
        ctx.progress = json.loads(json.dumps(ctx.progress))
    outcome = PLAYBOOK.outcome(ctx, plan)
    return Outcome.model_validate(outcome.model_dump(mode="json"))


def _site(changes: dict[str, str | None] | None = None) -> dict[str, bytes]:
    """Release 1 as served, with `changes` (name -> content; None: absent), and the object
    outside the prefix as release 2 left it."""
    site: dict[str, str | None] = {**RELEASE_1, **(changes or {})}
    served = {f"{PREFIX}{name}": body for name, body in site.items() if body is not None}
    return {key: body.encode() for key, body in {**served, "other/keep.txt": "outside 2"}.items()}


RELEASE_2_SITE = _site({**RELEASE_2, "about.html": None})
ROLLED_BACK_SITE = _site({"new.js": RELEASE_2["new.js"]})  # the added file left alone


def _head(key: str) -> dict[str, Any]:
    return aws.client("s3").head_object(Bucket=BUCKET, Key=key)


# --- plan ------------------------------------------------------------------------------


def test_the_plan_lists_each_object_to_roll_back_and_changes_nothing(world):
    ctx = Saved("INC-s3").context()
    before = all_versions(aws.client, BUCKET)

    plan = _plan(ctx, world)

    first, second, dropped = world["first"], world["second"], world["dropped"]
    changes = {c.resource: (c.attribute, c.before, c.after) for c in plan.changes}
    assert changes == {
        f"s3://{BUCKET}/site/about.html": ("VersionId",
                                           f"delete-marker:{dropped['site/about.html']}",
                                           first["site/about.html"]["VersionId"]),
        f"s3://{BUCKET}/site/app.js": ("VersionId", second["site/app.js"]["VersionId"],
                                       first["site/app.js"]["VersionId"]),
        f"s3://{BUCKET}/site/index.html": ("VersionId", second["site/index.html"]["VersionId"],
                                           first["site/index.html"]["VersionId"]),
    }
    assert plan.summary.startswith(f"roll back 3 objects under s3://{BUCKET}/site/ to ")
    assert "copy back 2 changed, bring back 1 deleted; 1 unchanged" in plan.summary
    [warning] = plan.warnings
    assert warning.startswith("1 object created after ") and "site/new.js" in warning
    assert "delete_new=true" in warning
    assert [a["key"] for a in plan.state["actions"]] == ["site/about.html", "site/app.js",
                                                         "site/index.html"]
    assert plan.state["actions"][1]["current"] == second["site/app.js"]["VersionId"]
    assert PLAYBOOK.steps(plan) == ["rollback"]
    assert all_versions(aws.client, BUCKET) == before


def test_default_restore_to_is_lookback_minutes_before_the_trouble(moto):
    create_versioned_bucket(aws.client, BUCKET)
    upload_release(aws.client, BUCKET, RELEASE_1, prefix=PREFIX)
    now = utc_now()
    ctx = Saved("INC-s3").context(clock=lambda: now, reference_time=now - timedelta(minutes=1))

    # 15 minutes before the alarm, nothing had been uploaded yet.
    with pytest.raises(PreconditionFailed, match=r"no object under s3://www-example-com/site/ "
                                                 r"existed at .* a rollback would leave "
                                                 r"nothing") as refused:
        _plan(ctx, lookback_minutes=15)

    sixteen_before = (now - timedelta(minutes=16)).replace(microsecond=0)
    assert f"existed at {sixteen_before:%Y-%m-%dT%H:%M:%S}" in refused.value.message


def test_refused_when_nothing_changed_since_the_time(moto):
    create_versioned_bucket(aws.client, BUCKET)
    upload_release(aws.client, BUCKET, RELEASE_1, prefix=PREFIX)
    upload_release(aws.client, BUCKET, {"after.js": "x"}, prefix=PREFIX)
    ctx = Saved("INC-s3").context()

    with pytest.raises(PreconditionFailed) as refused:
        _plan(ctx, restore_to=utc_now().isoformat())

    assert refused.value.message.startswith(
        "nothing to roll back: every object under s3://www-example-com/site/ is as it was at ")
    with pytest.raises(PreconditionFailed, match="there is no object under s3://www-example-com"
                                                 "/elsewhere/"):
        _plan(ctx, prefix="elsewhere/", restore_to=utc_now().isoformat())


def test_refused_when_the_time_is_in_the_future(moto):
    create_versioned_bucket(aws.client, BUCKET)
    upload_release(aws.client, BUCKET, RELEASE_1, prefix=PREFIX)
    now = utc_now()

    with pytest.raises(PreconditionFailed, match=r"restore_to .* is in the future \(it is "):
        _plan(Saved("INC-s3").context(clock=lambda: now),
              restore_to=(now + timedelta(minutes=5)).isoformat())


@pytest.mark.parametrize(("versioning", "refusal"), [
    (None, "bucket www-example-com is not versioned; an older version cannot be restored"),
    ("Suspended", "bucket www-example-com has versioning suspended: a copy would overwrite "
                  "each object's null version"),
])
def test_a_bucket_without_versioning_enabled_is_refused(moto, versioning, refusal):
    create_versioned_bucket(aws.client, BUCKET, versioning=versioning)
    upload_release(aws.client, BUCKET, RELEASE_1, prefix=PREFIX)
    before = all_versions(aws.client, BUCKET)

    with pytest.raises(PreconditionFailed) as refused:
        _plan(Saved("INC-s3").context(), restore_to=utc_now().isoformat())

    assert refused.value.message.startswith(refusal)
    assert all_versions(aws.client, BUCKET) == before


def test_a_missing_bucket_is_refused(moto):
    with pytest.raises(PreconditionFailed, match="bucket www-example-com does not exist"):
        _plan(Saved("INC-s3").context(), restore_to=utc_now().isoformat())


def test_params_are_checked():
    with pytest.raises(InvalidParams, match=r"restore_to: .*has no timezone"):
        PLAYBOOK.parse_params({"bucket": BUCKET, "restore_to": "2026-11-23T09:55:00"})
    with pytest.raises(InvalidParams, match="bucket: String should match pattern"):
        PLAYBOOK.parse_params({"bucket": "s3://www-example-com/site/"})
    with pytest.raises(InvalidParams, match="keys: Extra inputs are not permitted"):
        PLAYBOOK.parse_params({"bucket": BUCKET, "keys": ["a"]})
    params = PLAYBOOK.parse_params({"bucket": BUCKET, "restore_to": "2026-11-23T10:55:00+01:00"})
    assert params.restore_to == datetime(2026, 11, 23, 9, 55, tzinfo=UTC)
    assert (params.prefix, params.lookback_minutes, params.delete_new, params.max_objects) == \
        ("", 10, False, 10_000)
    assert PLAYBOOK.default_approval == "auto" and PLAYBOOK.reversible


def test_the_bucket_comes_from_an_s3_alarm():
    alarm = AlarmEvent.model_validate({
        "delivery": "sns", "delivery_id": "d", "alarm_name": "site-4xx", "state": "ALARM",
        "state_changed_at": "2026-11-23T03:00:00Z",
        "dimensions": {"BucketName": BUCKET, "FilterId": "EntireBucket"}})

    assert PLAYBOOK.params_from_alarm(alarm) == {"bucket": BUCKET}


def test_more_changes_than_max_objects_or_a_record_holds_and_archived_versions_are_refused(
        moto, monkeypatch):
    create_versioned_bucket(aws.client, BUCKET)
    aws.client("s3").put_object(Bucket=BUCKET, Key="site/video.mp4", Body=b"1",
                                StorageClass="GLACIER")
    upload_release(aws.client, BUCKET, {"index.html": "1", "app.js": "1"}, prefix=PREFIX)
    between = pause_between_releases()
    upload_release(aws.client, BUCKET, {"index.html": "2", "app.js": "2"}, prefix=PREFIX)
    ctx = Saved("INC-s3").context()

    with pytest.raises(PreconditionFailed, match=re.escape(
            "would change 2 objects under s3://www-example-com/site/, more than "
            "max_objects=1; narrow the prefix or raise max_objects")):
        _plan(ctx, restore_to=between.isoformat(), max_objects=1)
    assert len(_plan(ctx, restore_to=between.isoformat(), max_objects=2).changes) == 2
    with monkeypatch.context() as patched, pytest.raises(
            PreconditionFailed, match=r"rolling back 2 objects under s3://www-example-com/site/ "
                                      r"needs about \d+ KB of incident record, and one record "
                                      r"holds 3 KB \(about 1 objects with these names\)"):
        patched.setattr(s3_static_rollback, "RECORD_BUDGET", 3_000)
        _plan(ctx, restore_to=between.isoformat())
    upload_release(aws.client, BUCKET, {"video.mp4": "2"}, prefix=PREFIX)
    with pytest.raises(PreconditionFailed, match=re.escape(
            "of site/video.mp4 (GLACIER) is in an archive storage class")):
        _plan(ctx, restore_to=between.isoformat())


def test_acls_enabled_on_the_bucket_are_warned_about(world):
    aws.client("s3").delete_bucket_ownership_controls(Bucket=BUCKET)

    plan = _plan(Saved("INC-s3").context(), world)

    assert any(w.startswith("bucket www-example-com has ACLs enabled: a copied version gets "
                            "the default (private) ACL") for w in plan.warnings)


# --- execute, verify, undo -------------------------------------------------------------


def test_rollback_brings_release_1_back_and_undo_brings_release_2_back(world):
    ctx = Saved("INC-s3").context()
    plan = _plan(ctx, world)
    before = all_versions(aws.client, BUCKET)
    untouched = {key: _head(key)["VersionId"] for key in ("site/style.css", "site/new.js",
                                                          "other/keep.txt")}

    outcome = _drive(ctx, plan)
    verification = PLAYBOOK.verify(ctx, outcome)

    # release 1's files are back; the file added in 2 stays (with a warning); outside too
    assert read_site(aws.client, BUCKET) == ROLLED_BACK_SITE
    assert {key: _head(key)["VersionId"] for key in untouched} == untouched
    # ... as new versions carrying release 1's content type and metadata
    index = _head("site/index.html")
    assert (index["ContentType"], index["Metadata"]) == ("text/html", {"release": "1"})
    assert outcome.after["keys"]["site/index.html"] == index["VersionId"]
    assert index["VersionId"] not in {world["first"]["site/index.html"]["VersionId"],
                                      world["second"]["site/index.html"]["VersionId"]}
    after = all_versions(aws.client, BUCKET)
    assert before["versions"] < after["versions"] and before["markers"] == after["markers"]
    assert len(after["versions"] - before["versions"]) == 3
    assert outcome.before["keys"] == {
        "site/about.html": f"delete-marker:{world['dropped']['site/about.html']}",
        "site/app.js": world["second"]["site/app.js"]["VersionId"],
        "site/index.html": world["second"]["site/index.html"]["VersionId"]}
    assert outcome.before["restore_to"] == plan.state["restore_to"]
    assert [c.resource for c in outcome.changes] == [
        f"s3://{BUCKET}/site/about.html", f"s3://{BUCKET}/site/app.js",
        f"s3://{BUCKET}/site/index.html"]
    assert "copied back 2 changed, brought back 1 deleted" in outcome.summary
    assert verification.ok and verification.summary.startswith(
        f"3 objects under s3://{BUCKET}/site/ read back as at ")

    undone = PLAYBOOK.undo(ctx, outcome)

    assert read_site(aws.client, BUCKET) == RELEASE_2_SITE
    assert _head("site/index.html")["Metadata"] == {"release": "2"}
    final = all_versions(aws.client, BUCKET)
    assert after["versions"] < final["versions"]  # undo copies too; nothing is deleted
    assert after["markers"] < final["markers"]  # about.html is deleted again: a new marker
    assert undone.summary == f"put back 3 objects under s3://{BUCKET}/site/ as they were " \
                             "before the rollback"
    assert undone.after["keys"]["site/about.html"].startswith("delete-marker:")


def test_delete_new_hides_added_files_and_undo_removes_only_that_marker(world):
    ctx = Saved("INC-s3").context()
    plan = _plan(ctx, world, delete_new=True)
    before = all_versions(aws.client, BUCKET)

    assert plan.warnings == []
    assert (f"s3://{BUCKET}/site/new.js", "delete marker") in [
        (c.resource, c.after) for c in plan.changes]
    outcome = _drive(ctx, plan)
    PLAYBOOK.verify(ctx, outcome)

    assert read_site(aws.client, BUCKET) == _site()
    marker = outcome.after["keys"]["site/new.js"]
    assert marker.startswith("delete-marker:")
    after = all_versions(aws.client, BUCKET)
    assert after["markers"] - before["markers"] == {("site/new.js",
                                                    marker.removeprefix("delete-marker:"))}
    assert before["versions"] < after["versions"]

    PLAYBOOK.undo(ctx, outcome)

    assert read_site(aws.client, BUCKET) == RELEASE_2_SITE
    final = all_versions(aws.client, BUCKET)
    assert after["versions"] <= final["versions"], "no data version is ever deleted"
    # Only our own marker went; about.html got a new one (it was deleted before).
    assert after["markers"] - final["markers"] == {("site/new.js",
                                                   marker.removeprefix("delete-marker:"))}
    assert {key for key, _ in final["markers"] - after["markers"]} == {"site/about.html"}


def test_many_objects_are_listed_page_by_page_and_rolled_back_in_several_steps(
        moto, monkeypatch):
    monkeypatch.setattr(_s3_versions, "PAGE_SIZE", 3)
    monkeypatch.setattr(s3_static_rollback, "STEP_SIZE", 4)
    monkeypatch.setattr(_s3_apply, "INTENT_CHUNK", 2)
    names = [f"page-{n:02}.html" for n in range(10)]
    create_versioned_bucket(aws.client, BUCKET)
    upload_release(aws.client, BUCKET, {name: f"{name} 1" for name in names}, prefix=PREFIX)
    between = pause_between_releases()
    upload_release(aws.client, BUCKET, {name: f"{name} 2" for name in names[:9]},
                   prefix=PREFIX)
    delete_files(aws.client, BUCKET, names[9:], prefix=PREFIX)
    pages: list[str] = []
    aws.client("s3").meta.events.register(
        "before-call.s3.ListObjectVersions", lambda params, **_: pages.append(
            params.get("query_string", {}).get("key-marker", "")))
    checkpoints = 0

    def checkpoint() -> None:
        nonlocal checkpoints
        checkpoints += 1

    ctx = Saved("INC-s3").context()
    plan = _plan(ctx, restore_to=between.isoformat())
    ctx.checkpoint = checkpoint

    assert len(pages) == 7  # 20 entries (19 versions and a marker), 3 a page
    assert sorted(c.resource.rsplit("/", 1)[1] for c in plan.changes) == names
    assert PLAYBOOK.steps(plan) == ["rollback-1-of-3", "rollback-2-of-3", "rollback-3-of-3"]
    outcome = _drive(ctx, plan)

    assert checkpoints == 5  # chunks of 2 in steps of 4, 4 and 2 objects
    assert read_site(aws.client, BUCKET) == {f"{PREFIX}{name}": f"{name} 1".encode()
                                             for name in names}
    assert len(outcome.after["keys"]) == 10
    assert PLAYBOOK.verify(ctx, outcome).ok


@pytest.mark.parametrize("call", ["copy_object", "delete_object"])
def test_a_crash_right_after_a_call_resumes_without_making_it_twice(world, call):
    saved = Saved("INC-s3")
    plan = _plan(saved.context(), world, delete_new=True)
    crashing = Spy(crash_after=(call, 1))

    with pytest.raises(Crash):
        PLAYBOOK.run_step(saved.context(crashing), plan, "rollback")

    [(_, crashed_key, answer)] = [w for w in crashing.writes if w[0] == call]
    assert crashed_key in saved.progress["inflight"]  # checkpointed before the call
    assert crashed_key not in saved.progress.get("done", {})
    resumed = saved.context(crashing)  # a new process, from what was checkpointed
    assert PLAYBOOK.run_step(resumed, plan, "rollback").status == "done"
    outcome = PLAYBOOK.outcome(resumed, plan)

    assert crashing.keys("copy_object") == {"site/about.html": 1, "site/app.js": 1,
                                            "site/index.html": 1}
    assert crashing.keys("delete_object") == {"site/new.js": 1}
    made = answer["VersionId"]
    assert outcome.after["keys"][crashed_key].removeprefix("delete-marker:") == made
    assert resumed.progress["inflight"] == []
    assert PLAYBOOK.verify(resumed, outcome).ok
    assert read_site(aws.client, BUCKET) == _site()


def test_a_change_between_plan_and_execute_is_refused_with_nothing_changed(world):
    ctx = Saved("INC-s3").context(Spy())
    plan = _plan(ctx, world)
    upload_release(aws.client, BUCKET, {"app.js": "console.log('hotfix')"}, prefix=PREFIX)
    before = all_versions(aws.client, BUCKET)

    with pytest.raises(PreconditionFailed) as refused:
        PLAYBOOK.run_step(ctx, plan, "rollback")

    assert refused.value.message.startswith(
        f"1 object under s3://{BUCKET}/site/ changed since the plan: site/app.js (now version ")
    assert refused.value.message.endswith("nothing was changed, plan again")
    assert ctx.clients("s3")._spy.writes == []
    assert all_versions(aws.client, BUCKET) == before


def test_a_key_changed_during_the_run_is_skipped_and_verify_names_it(world):
    def race(key: str) -> None:
        if key == "site/index.html":
            aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"<h1>hotfix</h1>")

    ctx = Saved("INC-s3").context(Spy(before_head=race))
    plan = _plan(ctx, world)

    outcome = _drive(ctx, plan)

    assert read_site(aws.client, BUCKET)["site/index.html"] == b"<h1>hotfix</h1>"
    assert set(outcome.after["keys"]) == {"site/about.html", "site/app.js"}
    assert outcome.after["skipped"]["site/index.html"].startswith(
        "changed since the plan: now version ")
    with pytest.raises(VerificationFailed, match=re.escape("site/index.html was skipped")):
        PLAYBOOK.verify(ctx, outcome)
    PLAYBOOK.undo(ctx, outcome)  # the recorded part can still be undone
    assert read_site(aws.client, BUCKET)["site/app.js"] == RELEASE_2["app.js"].encode()


def test_throttling_waits_and_a_refused_first_call_fails_with_nothing_changed(world):
    spy = Spy(fail={("copy_object", 1): "SlowDown", ("copy_object", 2): "AccessDenied"})
    ctx = Saved("INC-s3").context(spy)
    plan = _plan(ctx, world)
    before = all_versions(aws.client, BUCKET)

    waited = PLAYBOOK.run_step(ctx, plan, "rollback")

    assert (waited.status, waited.wait_seconds) == ("wait", 30)
    assert waited.message.startswith("s3:PutObject on site/about.html failed: SlowDown; "
                                     "trying again in 30 s (0 of 3 objects done)")
    with pytest.raises(AwsCallFailed, match=re.escape(
            "s3:PutObject failed: AccessDenied: refused by the test (grant the permission for "
            "s3:PutObject) (on site/about.html); nothing was changed")):
        PLAYBOOK.run_step(ctx, plan, "rollback")
    assert all_versions(aws.client, BUCKET) == before


def test_s3_refusing_a_later_call_skips_that_key_and_the_run_stays_undoable(world):
    ctx = Saved("INC-s3").context(Spy(fail={("copy_object", 2): "AccessDenied"}))
    plan = _plan(ctx, world)

    outcome = _drive(ctx, plan)

    assert set(outcome.after["keys"]) == {"site/about.html", "site/index.html"}
    assert outcome.after["skipped"] == {"site/app.js": "s3:PutObject failed: AccessDenied: "
                                                       "refused by the test (grant the "
                                                       "permission for s3:PutObject)"}
    assert outcome.summary.endswith("; 1 skipped: site/app.js")
    with pytest.raises(VerificationFailed, match=re.escape("site/app.js was skipped")):
        PLAYBOOK.verify(ctx, outcome)
    PLAYBOOK.undo(ctx, outcome)
    assert read_site(aws.client, BUCKET) == RELEASE_2_SITE


def test_copies_whose_etag_changes_are_verified_by_version_id(world):
    ctx = Saved("INC-s3").context(Spy(etag='"0123456789abcdef0123456789abcdef-2"'))
    outcome = _drive(ctx, _plan(ctx, world))

    assert outcome.after["unchecked"] == ["site/about.html", "site/app.js", "site/index.html"]
    verification = PLAYBOOK.verify(ctx, outcome)
    assert "(3 by version id only: multipart or KMS objects get a new ETag" in \
        verification.summary


def test_verify_and_undo_notice_a_change_made_after_the_rollback(world):
    ctx = Saved("INC-s3").context()
    outcome = _drive(ctx, _plan(ctx, world))
    upload_release(aws.client, BUCKET, {"app.js": "console.log('release 3')"}, prefix=PREFIX)
    before = all_versions(aws.client, BUCKET)

    with pytest.raises(VerificationFailed, match=r"1 object under s3://www-example-com/site/ "
                                                 r"is not as at .*: site/app.js is now version"):
        PLAYBOOK.verify(ctx, outcome)
    with pytest.raises(PreconditionFailed) as refused:
        PLAYBOOK.undo(ctx, outcome)

    assert refused.value.message.startswith(
        f"1 object under s3://{BUCKET}/site/ changed since the rollback: site/app.js (now ")
    assert "nothing was undone (undo puts back all or nothing)" in refused.value.message
    assert all_versions(aws.client, BUCKET) == before


def test_an_undo_that_failed_half_way_finishes_when_run_again(world):
    ctx = Saved("INC-s3").context()
    outcome = _drive(ctx, _plan(ctx, world, delete_new=True))
    failing = Spy(fail={("copy_object", 2): "AccessDenied"})

    with pytest.raises(AwsCallFailed, match=re.escape(
            "(on site/index.html); 2 of 4 objects were put back before it; run undo again "
            "to finish")):
        PLAYBOOK.undo(Saved("INC-s3").context(failing), outcome)
    again = Spy()
    undone = PLAYBOOK.undo(Saved("INC-s3").context(again), outcome)

    assert read_site(aws.client, BUCKET) == RELEASE_2_SITE
    assert undone.after["already"] == ["site/about.html", "site/app.js"]
    assert set(undone.after["keys"]) == {"site/index.html", "site/new.js"}
    # nothing done twice: about.html's marker came from the first attempt only
    assert failing.keys("delete_object") + again.keys("delete_object") == {
        "site/about.html": 1, "site/new.js": 1}


# --- deciding from versions (pure) ----------------------------------------------------


def _entry(key: str, second: int, *, marker: bool = False, latest: bool = False,
           version: str | None = None) -> Version:
    return Version(key=key, version_id=version or f"{'m' if marker else 'v'}{second}",
                   last_modified=datetime(2026, 11, 23, 9, 0, second, tzinfo=UTC),
                   is_latest=latest, is_marker=marker, etag=f'"{second}"')


def test_a_version_and_a_marker_in_the_same_second_are_ambiguous_only_where_it_matters():
    history = _s3_versions._history(
        "a.html", [_entry("a.html", 30, latest=True), _entry("a.html", 10)],
        [_entry("a.html", 10, marker=True)])
    at = datetime(2026, 11, 23, 9, 0, 20, tzinfo=UTC)

    decision = decide([history], at, delete_new=False)

    assert decision.ambiguous == ["a.html (09:00:10)"] and decision.actions == []
    later = decide([history], at.replace(second=35), delete_new=False)
    assert (later.unchanged, later.ambiguous) == (1, [])
    # The latest is known to be newest, whatever its second.
    settled = _s3_versions._history(
        "b.html", [_entry("b.html", 10)], [_entry("b.html", 10, marker=True, latest=True)])
    assert settled.entries[0].is_marker
    assert decide([settled], at, delete_new=False).unchanged == 1


def test_what_each_key_gets_from_its_history():
    at = datetime(2026, 11, 23, 9, 0, 20, tzinfo=UTC)
    histories = [
        History("changed", (_entry("changed", 30, latest=True), _entry("changed", 10))),
        History("same", (_entry("same", 10, latest=True),)),
        History("deleted", (_entry("deleted", 30, marker=True, latest=True),
                            _entry("deleted", 10))),
        History("added", (_entry("added", 30, latest=True),)),
        History("gone-then", (_entry("gone-then", 30, latest=True),
                              _entry("gone-then", 15, marker=True), _entry("gone-then", 5))),
        History("gone-both", (_entry("gone-both", 30, marker=True, latest=True),
                              _entry("gone-both", 15, marker=True), _entry("gone-both", 5))),
        History("future", (_entry("future", 30, marker=True, latest=True),
                           _entry("future", 25))),
    ]

    kept = decide(histories, at, delete_new=False)
    hidden = decide(histories, at, delete_new=True)

    assert [(a.key, a.kind, a.current, a.target) for a in kept.actions] == [
        ("changed", "restore", "v30", "v10"), ("deleted", "undelete", "m30", "v10")]
    assert kept.added == ["added", "gone-then"] and kept.unchanged == 3
    assert [(a.key, a.kind) for a in hidden.actions] == [
        ("added", "hide"), ("changed", "restore"), ("deleted", "undelete"),
        ("gone-then", "hide")]


# --- through the app -------------------------------------------------------------------


def _app(settings: Settings, clock: Clock, clients: Any = aws.client) -> Fireline:
    app = Fireline(settings, clients=clients, clock=clock, sleep=clock.sleep)
    app.store.create_table()
    return app


def _request(world: dict[str, Any]) -> RunRequest:
    return RunRequest(playbook="s3-static-rollback", requested_by="bob", params={
        "bucket": BUCKET, "prefix": PREFIX, "restore_to": world["between"].isoformat()})


def test_through_the_app_the_run_is_mitigated_at_once_and_can_be_undone(world, settings):
    app = _app(settings, Clock())

    result = app.run(_request(world))

    assert result.status == "mitigated", result.error
    assert read_site(aws.client, BUCKET) == ROLLED_BACK_SITE
    timeline = app.store.timeline(result.incident_id)
    assert [e.kind for e in timeline] == ["opened", "plan", "execute", "verify"]
    assert "site/new.js" in timeline[1].data["warnings"][0]
    assert len(timeline[2].data["changes"]) == 3

    app.undo(result.incident_id, "carol")

    assert read_site(aws.client, BUCKET) == RELEASE_2_SITE
    assert app.store.timeline(result.incident_id)[-1].kind == "undo"


def test_through_the_app_a_crash_after_a_copy_resumes_without_a_second_copy(world, settings):
    clock = Clock()
    crashing = Spy(crash_after=("copy_object", 2))
    app = _app(settings, clock, clients=crashing)

    with pytest.raises(Crash):
        app.run(_request(world))

    [stalled] = app.store.list()
    assert (stalled.playbook_state, stalled.step_index) == ("running", 0)
    assert crashing.keys("copy_object").total() == 2
    # A new process picks it up; the dead one's lease runs out first (the clock sleeps).
    done = _app(settings, clock, clients=crashing).resume(stalled.incident_id)

    assert done.status == "mitigated", done.error
    assert clock.slept and clock.slept[0] > 0
    assert crashing.keys("copy_object") == {"site/about.html": 1, "site/app.js": 1,
                                            "site/index.html": 1}
    assert read_site(aws.client, BUCKET) == ROLLED_BACK_SITE
