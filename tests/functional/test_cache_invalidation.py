"""The cache-invalidation playbook, against moto: through its public steps, and through the
app with an injected clock. moto lacks API Gateway's two flush calls, so botocore's Stubber
plays exactly those (and asserts their parameters); everything else is moto."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from fireline import aws, registry
from fireline.alarm import AlarmEvent
from fireline.app import Fireline, RunRequest
from fireline.config import Settings
from fireline.errors import (
    InvalidParams,
    NotReversible,
    PreconditionFailed,
    VerificationFailed,
)
from fireline.local.cdn_fixture import create_cached_stage, create_distribution
from fireline.playbook import Change, PlaybookContext, StepResult
from tests.support.events import load_event, requires_corpus
from tests.support.marks import Marks
from tests.support.runs import Clock, Crash

PLAYBOOK = registry.get("cache-invalidation")
INCIDENT = "INC-test"


class CloudFrontSpy:
    """aws.client, with CloudFront's CreateInvalidation calls counted (their
    CallerReferences) and GetInvalidation calls counted. Options: `crash` the process right
    `before` or `after` the create call numbered `crash_at` (1-based); answer
    TooManyInvalidationsInProgress to the first `busy` creates; make every invalidation
    read as `status` (moto's are COMPLETED at once); make the distribution read as
    `distribution_status`."""

    def __init__(self, *, crash: str | None = None, crash_at: int = 1, busy: int = 0,
                 status: str | None = None, distribution_status: str | None = None) -> None:
        self.references: list[str] = []
        self.polls = 0
        self.crash, self.crash_at, self.busy = crash, crash_at, busy
        self.status, self.distribution_status = status, distribution_status

    def __call__(self, service: str, **kwargs: Any) -> Any:
        client = aws.client(service, **kwargs)
        return _CloudFront(client, self) if service == "cloudfront" else client


class _CloudFront:
    def __init__(self, client: Any, spy: CloudFrontSpy) -> None:
        self._client, self._spy = client, spy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_invalidation(self, **kwargs: Any) -> Any:
        spy = self._spy
        if spy.busy:
            spy.busy -= 1
            raise ClientError({"Error": {"Code": "TooManyInvalidationsInProgress",
                                         "Message": "too many"}}, "CreateInvalidation")
        attempt = len(spy.references) + 1
        if spy.crash == "before" and attempt == spy.crash_at:
            spy.crash = None
            raise Crash
        answer = self._client.create_invalidation(**kwargs)
        spy.references.append(kwargs["InvalidationBatch"]["CallerReference"])
        if spy.crash == "after" and attempt == spy.crash_at:
            spy.crash = None
            raise Crash
        return answer

    def get_invalidation(self, **kwargs: Any) -> Any:
        self._spy.polls += 1
        answer = self._client.get_invalidation(**kwargs)
        if self._spy.status:
            answer["Invalidation"]["Status"] = self._spy.status
        return answer

    def get_distribution(self, **kwargs: Any) -> Any:
        answer = self._client.get_distribution(**kwargs)
        if self._spy.distribution_status:
            answer["Distribution"]["Status"] = self._spy.distribution_status
        return answer


@pytest.fixture
def ctx(moto) -> PlaybookContext:
    return PlaybookContext(clients=aws.client, marks=Marks(), incident_id=INCIDENT)


@pytest.fixture
def site(moto) -> dict[str, Any]:
    return create_distribution(aws.client, aliases=["www.example.com", "example.com"])


def _params(**raw: Any) -> Any:
    return PLAYBOOK.parse_params(raw)


def _run(ctx: PlaybookContext, plan: Any) -> list[StepResult]:
    return [PLAYBOOK.run_step(ctx, plan, step) for step in PLAYBOOK.steps(plan)]


def _invalidations(distribution_id: str) -> list[dict[str, Any]]:
    cf = aws.client("cloudfront")
    items = cf.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    return [cf.get_invalidation(DistributionId=distribution_id, Id=i["Id"])["Invalidation"]
            for i in items.get("Items") or []]


def _references(distribution_id: str) -> list[str]:
    return [i["InvalidationBatch"]["CallerReference"] for i in _invalidations(distribution_id)]


# --- CloudFront: the plan ----------------------------------------------------------------


def test_the_default_is_everything_and_the_plan_changes_nothing(ctx, site):
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"]))

    assert plan.summary == (f"invalidate /* on CloudFront distribution {site['Id']} "
                            "(www.example.com)")
    assert plan.changes == [Change(resource=site["ARN"], attribute="invalidation",
                                   before=None, after=["/*"])]
    assert PLAYBOOK.steps(plan) == ["invalidate", "wait-complete"]
    [warning] = plan.warnings
    assert "/* empties the distribution's whole cache" in warning
    assert "origin takes the full load" in warning
    assert _invalidations(site["Id"]) == []


def test_paths_are_tidied_and_the_tidying_is_said(ctx, site):
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"],
                                      paths=" index.html, /app.js ,/app.js,/app.js*"))

    assert plan.changes[0].after == ["/app.js*", "/index.html"]
    assert "paths start with /: read index.html as /index.html" in plan.warnings
    assert "1 repeated path sent once" in plan.warnings
    assert "/app.js* already covers /app.js, so /app.js is left out" in plan.warnings
    # /app.js* only catches the file's query-string variants: no origin-load warning.
    assert not [w for w in plan.warnings if "origin" in w]


@pytest.mark.parametrize(("paths", "why"), [
    ("/images/*/logo.png", "has a * before its end"),
    ("/a,,/b", "'' is empty"),
    ([], "no paths given"),
    ("/two words.html", "has whitespace or a control character"),
    (["/tab\there"], "has whitespace or a control character"),
    ("https://www.example.com/index.html", "is a URL; give the path only"),
    ("/café.html", "URL-encode them yourself"),
])
def test_invalid_paths_are_refused_before_anything_is_read(paths, why):
    with pytest.raises(InvalidParams, match=r"paths: .*(refused|no paths given)") as caught:
        _params(distribution_id="E2QWRUHAPOMQZL", paths=paths)

    assert why in caught.value.message


def test_a_wildcard_covers_the_paths_under_it(ctx, site):
    everything = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"],
                                            paths="/a.js,/*,/img/*"))
    images = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"],
                                        paths="/img/a.png,/img/*,/img/b/c.png,/css/x.css"))

    assert everything.changes[0].after == ["/*"]
    assert ("/* already invalidates everything, so the other 2 paths (/a.js, /img/*) are "
            "left out") in everything.warnings
    assert images.changes[0].after == ["/img/*", "/css/x.css"]
    assert "/img/* already covers /img/a.png, so /img/a.png is left out" in images.warnings
    assert any(w.startswith("/img/* empties everything cached under /img/")
               for w in images.warnings)


def test_many_paths_warn_of_their_cost_and_name_a_wildcard(ctx, site):
    paths = [f"/assets/{n}.js" for n in range(1200)] + [f"/img/{n}.png" for n in range(50)]
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"], paths=paths))
    free = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"], paths=paths[:1000]))

    [cost] = [w for w in plan.warnings if "$" in w]
    assert cost.startswith("1,250 file paths: AWS charges $0.005 a path past the first 1,000")
    assert "costs at least $1.25 and up to $6.25" in cost
    assert "/assets/* would cover 1,200 of these" in cost
    assert not [w for w in free.warnings if "$" in w], "1,000 paths fit the free paths"


def test_more_paths_than_a_request_takes_are_split_and_all_sent(ctx, site):
    wildcards = [f"/section-{n}/*" for n in range(20)]
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"],
                                      paths=[*wildcards, "/index.html"]))

    assert [len(c.after) for c in plan.changes] == [16, 5]
    assert plan.changes[0].after == [*wildcards[:15], "/index.html"]
    assert "in 2 requests" in plan.summary
    results = _run(ctx, plan)
    outcome = PLAYBOOK.outcome(ctx, plan)

    assert [r.status for r in results] == ["done", "done"]
    assert sorted(_references(site["Id"])) == [INCIDENT, f"{INCIDENT}-2"]
    sent = {i["Id"]: sorted(i["InvalidationBatch"]["Paths"]["Items"])
            for i in _invalidations(site["Id"])}
    assert [sent[i] for i in outcome.after["invalidation_ids"]] == \
        [sorted(c.after) for c in plan.changes]


@pytest.mark.parametrize(("paths", "why"), [
    ([f"/f{n}" for n in range(3001)], "3,001 paths is more than 3,000"),
    ([f"/w{n}/*" for n in range(46)], "46 wildcard paths is more than 45"),
    ([f"/{'x' * 60}/{n}.html" for n in range(1000)], "more than the 40,000 an incident"),
])
def test_more_paths_than_can_be_carried_are_refused(paths, why):
    with pytest.raises(InvalidParams, match=why):
        _params(distribution_id="E2QWRUHAPOMQZL", paths=paths)


def test_a_missing_or_disabled_distribution_is_refused(ctx, site):
    off = create_distribution(aws.client, aliases=["old.example.com"], enabled=False)

    with pytest.raises(PreconditionFailed, match="there is no CloudFront distribution "
                                                 "E000NOTHERE in this account"):
        PLAYBOOK.plan(ctx, _params(distribution_id="E000NOTHERE"))
    with pytest.raises(PreconditionFailed,
                       match=re.escape("no CloudFront distribution serves shop.example.org")):
        PLAYBOOK.plan(ctx, _params(domain="shop.example.org"))
    with pytest.raises(PreconditionFailed, match=f"{off['Id']} \\(old.example.com\\) is "
                                                 "disabled: it serves nothing"):
        PLAYBOOK.plan(ctx, _params(domain="old.example.com"))


def test_a_distribution_still_deploying_is_planned_with_a_warning(site):
    ctx = PlaybookContext(clients=CloudFrontSpy(distribution_status="InProgress"),
                          marks=Marks(), incident_id=INCIDENT)

    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"]))

    assert any("still deploying a configuration change (status InProgress)" in w
               for w in plan.warnings)


def test_a_domain_is_resolved_by_alias_by_cloudfront_name_and_by_wildcard(ctx, site):
    api = create_distribution(aws.client, aliases=["api.example.com"])
    shop = create_distribution(aws.client, aliases=["*.shop.example.com"])

    def resolved(domain: str) -> str:
        return PLAYBOOK.plan(ctx, _params(domain=domain)).state["distribution_id"]

    assert resolved("WWW.Example.com.") == site["Id"]
    assert resolved("example.com") == site["Id"]
    assert resolved(api["DomainName"]) == api["Id"]
    assert resolved("eu.shop.example.com") == shop["Id"]
    with pytest.raises(PreconditionFailed, match=f"is served by CloudFront distribution "
                                                 f"{site['Id']}, not {api['Id']}"):
        PLAYBOOK.plan(ctx, _params(domain="www.example.com", distribution_id=api["Id"]))
    # Both given and agreeing (an alarm's DistributionId with a rule's domain) is fine.
    assert PLAYBOOK.plan(ctx, _params(domain="www.example.com", distribution_id=site["Id"]))


def test_a_domain_on_several_distributions_is_refused(ctx, site):
    # AWS refuses a second distribution with the same alias (CNAMEAlreadyExists); moto
    # does not, which lets the ambiguity be shown.
    twin = create_distribution(aws.client, aliases=["www.example.com"])

    with pytest.raises(PreconditionFailed,
                       match=re.escape("www.example.com matches 2 CloudFront distributions")
                       ) as caught:
        PLAYBOOK.plan(ctx, _params(domain="www.example.com"))

    assert site["Id"] in caught.value.message and twin["Id"] in caught.value.message


# --- CloudFront: the steps ---------------------------------------------------------------


def test_the_invalidate_step_run_again_sends_nothing_again(site):
    spy = CloudFrontSpy()
    ctx = PlaybookContext(clients=spy, marks=Marks(), incident_id=INCIDENT)
    plan = PLAYBOOK.plan(ctx, _params(domain="www.example.com", paths="/index.html"))

    first = PLAYBOOK.run_step(ctx, plan, "invalidate")
    again = PLAYBOOK.run_step(ctx, plan, "invalidate")

    assert first.status == again.status == "done"
    assert spy.references == [INCIDENT]
    assert _references(site["Id"]) == [INCIDENT]
    assert first.message == again.message


@pytest.mark.parametrize(("moment", "requests"), [("after", 1), ("after", 2), ("before", 2)])
def test_a_crash_around_the_create_call_is_resumed_without_a_second_invalidation(
        site, moment, requests):
    spy = CloudFrontSpy(crash=moment, crash_at=requests)
    saved: dict[str, Any] = {}
    ctx = PlaybookContext(clients=spy, marks=Marks(), incident_id=INCIDENT)
    ctx.checkpoint = lambda: saved.update(copy.deepcopy(ctx.progress))
    paths = [f"/s{n}/*" for n in range(15 * (requests - 1) + 1)]
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"], paths=paths))
    assert len(plan.changes) == requests

    with pytest.raises(Crash):
        PLAYBOOK.run_step(ctx, plan, "invalidate")
    # A new process starts from what was checkpointed; what was only in memory is gone.
    resumed = PlaybookContext(clients=spy, marks=Marks(), incident_id=INCIDENT,
                              progress=copy.deepcopy(saved))
    result = PLAYBOOK.run_step(resumed, plan, "invalidate")

    expected = [INCIDENT, f"{INCIDENT}-2"][:requests]
    assert result.status == "done"
    assert spy.references == expected, "every request sent exactly once"
    assert sorted(_references(site["Id"])) == expected
    made = {i["InvalidationBatch"]["CallerReference"]: i["Id"]
            for i in _invalidations(site["Id"])}
    assert PLAYBOOK.outcome(resumed, plan).after["invalidation_ids"] == \
        [made[r] for r in expected]


def test_a_busy_distribution_makes_the_step_wait_then_send(site):
    spy = CloudFrontSpy(busy=1)
    ctx = PlaybookContext(clients=spy, marks=Marks(), incident_id=INCIDENT)
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"]))

    waiting = PLAYBOOK.run_step(ctx, plan, "invalidate")
    sent = PLAYBOOK.run_step(ctx, plan, "invalidate")

    assert (waiting.status, waiting.wait_seconds) == ("wait", 30)
    assert "request 1 of 1 goes when some finish" in waiting.message
    assert sent.status == "done" and spy.references == [INCIDENT]


def test_wait_complete_waits_while_in_progress_and_verify_reads_it_back(site):
    spy = CloudFrontSpy(status="InProgress")
    ctx = PlaybookContext(clients=spy, marks=Marks(), incident_id=INCIDENT)
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"]))
    PLAYBOOK.run_step(ctx, plan, "invalidate")
    [invalidation_id] = ctx.progress["invalidations"].values()

    waiting = PLAYBOOK.run_step(ctx, plan, "wait-complete")
    outcome = PLAYBOOK.outcome(ctx, plan)

    assert (waiting.status, waiting.wait_seconds) == ("wait", 10)
    assert f"{invalidation_id} InProgress" in waiting.message
    with pytest.raises(VerificationFailed, match=f"{invalidation_id} .* reads back as "
                                                 "InProgress"):
        PLAYBOOK.verify(ctx, outcome)
    spy.status = None  # moto: COMPLETED
    assert PLAYBOOK.run_step(ctx, plan, "wait-complete").status == "done"
    assert PLAYBOOK.verify(ctx, outcome).ok


@requires_corpus
def test_aws_own_answers_in_progress_then_completed_drive_the_steps(ctx, site):
    # A real CreateInvalidation answer (aws-cli docs) says InProgress; AWS then says
    # Completed, where moto says COMPLETED. The Stubber plays AWS for both steps.
    recorded = load_event("aws_api_responses/cloudfront_create_invalidation_cli_example1.json")
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"],
                                      paths=recorded["Invalidation"]["InvalidationBatch"]
                                      ["Paths"]["Items"]))
    invalidation = recorded["Invalidation"]
    cf = aws._session().client("cloudfront")
    stubber = Stubber(cf)
    stubber.add_response("create_invalidation", recorded, {
        "DistributionId": site["Id"],
        "InvalidationBatch": {"Paths": {"Quantity": 2, "Items": plan.changes[0].after},
                              "CallerReference": INCIDENT}})
    read = {"DistributionId": site["Id"], "Id": invalidation["Id"]}
    stubber.add_response("get_invalidation", {"Invalidation": invalidation}, read)
    stubber.add_response("get_invalidation",
                         {"Invalidation": {**invalidation, "Status": "Completed"}}, read)
    aws_ctx = PlaybookContext(clients=lambda service, **_: cf, marks=Marks(),
                              incident_id=INCIDENT)

    with stubber:
        sent = PLAYBOOK.run_step(aws_ctx, plan, "invalidate")
        waiting = PLAYBOOK.run_step(aws_ctx, plan, "wait-complete")
        done = PLAYBOOK.run_step(aws_ctx, plan, "wait-complete")

    stubber.assert_no_pending_responses()
    assert sent.message.endswith(invalidation["Id"])
    assert waiting.status == "wait" and done.status == "done"


def test_an_invalidation_cannot_be_undone_and_says_why(ctx, site):
    plan = PLAYBOOK.plan(ctx, _params(distribution_id=site["Id"]))
    _run(ctx, plan)
    outcome = PLAYBOOK.outcome(ctx, plan)

    assert outcome.before == {}
    assert PLAYBOOK.reversible is False
    with pytest.raises(NotReversible, match="an invalidation cannot be undone: the objects "
                                            "are already gone") as caught:
        PLAYBOOK.undo(ctx, outcome)
    assert "refill from the origin" in caught.value.message


# --- through the app ---------------------------------------------------------------------


def _app(settings: Settings, clock: Clock, clients: Any = aws.client,
         **overrides: Any) -> Fireline:
    app = Fireline(settings.model_copy(update=overrides), clients=clients, clock=clock,
                   sleep=clock.sleep)
    app.store.create_table()
    return app


def test_a_run_through_the_app_invalidates_waits_verifies_and_is_mitigated(site, settings):
    spy = CloudFrontSpy()
    app = _app(settings, Clock(), clients=spy)

    result = app.run(RunRequest(playbook="cache-invalidation", requested_by="bob",
                                params={"domain": "www.example.com",
                                        "paths": "/index.html,/app.js"}))

    assert result.status == "mitigated", result.error
    timeline = app.store.timeline(result.incident_id)
    assert [e.kind for e in timeline] == ["opened", "plan", "step", "step", "execute",
                                          "verify"]
    assert [e.text.split(":")[0] for e in timeline if e.kind == "step"] == \
        ["invalidate", "wait-complete"]
    assert spy.references == [result.incident_id]
    assert _references(site["Id"]) == [result.incident_id]
    assert "/index.html, /app.js" in timeline[-1].text
    # Undo says why not, on the thread, and changes nothing.
    with pytest.raises(NotReversible, match="can be undone"):
        app.undo(result.incident_id, "carol")
    assert any("an invalidation cannot be undone" in e.text
               for e in app.store.timeline(result.incident_id) if e.kind == "undo")
    assert spy.references == [result.incident_id]


def test_an_invalidation_that_never_completes_fails_at_the_deadline(site, settings):
    clock = Clock()
    stuck = CloudFrontSpy(status="InProgress")
    app = _app(settings, clock, clients=stuck, inline_wait_seconds=3600)

    result = app.run(RunRequest(playbook="cache-invalidation", requested_by="bob",
                                params={"distribution_id": site["Id"]}))

    incident = app.store.get(result.incident_id)
    assert (incident.status, incident.playbook_state) == ("failed", "failed")
    assert incident.error.startswith("wait-complete: wait-complete still not finished after "
                                     "15 minutes")
    assert "InProgress" in incident.error and "look at it by hand" in incident.error
    # A poll every 10 s for 15 minutes, then it stops: no real sleep, no endless loop.
    assert 90 <= stuck.polls <= 92
    assert set(clock.slept) == {10}
    [failed] = [e for e in app.store.timeline(result.incident_id) if e.kind == "failed"]
    assert "failed at wait-complete" in failed.text


# --- API Gateway -------------------------------------------------------------------------


class StubbedFlush:
    """moto's apigateway client, but for the two flush calls, which a Stubber'd client
    answers. A Stubber'd client answers only what is stubbed, so the reads (get_stage in
    plan and verify) go to moto and only the flushes to the stub: two clients, honestly."""

    def __init__(self) -> None:
        self.moto = aws.client("apigateway")
        self.stubbed = aws._session().client("apigateway")
        self.stubber = Stubber(self.stubbed)

    def expect(self, operation: str, api_id: str, stage: str) -> None:
        self.stubber.add_response(operation, {}, {"restApiId": api_id, "stageName": stage})

    def clients(self, service: str, **kwargs: Any) -> Any:
        return self if service == "apigateway" else aws.client(service, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("flush_"):
            return getattr(self.stubbed, name)
        return getattr(self.moto, name)


@pytest.fixture
def api(moto) -> dict[str, Any]:
    return create_cached_stage(aws.client, api_name="orders-api", stage="prod", ttl_seconds=120)


def test_a_stage_cache_and_its_authorizers_are_flushed(api):
    flush = StubbedFlush()
    flush.expect("flush_stage_cache", api["id"], "prod")
    flush.expect("flush_stage_authorizers_cache", api["id"], "prod")
    ctx = PlaybookContext(clients=flush.clients, marks=Marks(), incident_id=INCIDENT)
    plan = PLAYBOOK.plan(ctx, _params(api_name="orders-api", stage="prod",
                                      flush_authorizers="true"))
    arn = f"arn:aws:apigateway:us-east-1::/restapis/{api['id']}/stages/prod"

    assert PLAYBOOK.steps(plan) == ["flush"]
    assert plan.changes == [
        Change(resource=arn, attribute="cache", before=None, after="flushed"),
        Change(resource=arn, attribute="authorizers-cache", before=None, after="flushed")]
    assert any("takes the full load until the cache refills (up to 120 s" in w
               for w in plan.warnings)
    with flush.stubber:
        result = PLAYBOOK.run_step(ctx, plan, "flush")
        again = PLAYBOOK.run_step(ctx, plan, "flush")  # a retry flushes nothing twice
    flush.stubber.assert_no_pending_responses()
    outcome = PLAYBOOK.outcome(ctx, plan)
    verification = PLAYBOOK.verify(ctx, outcome)

    assert result.status == again.status == "done"
    assert outcome.after["flushed"] == ["cache", "authorizers"]
    assert "still has its 0.5 GB cache cluster (AVAILABLE)" in verification.summary
    assert "no call that reads a flush back" in verification.summary
    with pytest.raises(NotReversible, match="a flushed cache cannot be put back"):
        PLAYBOOK.undo(ctx, outcome)


def test_a_stage_flush_through_the_app_is_mitigated(api, settings):
    flush = StubbedFlush()
    flush.expect("flush_stage_cache", api["id"], "prod")
    app = _app(settings, Clock(), clients=flush.clients)

    with flush.stubber:
        result = app.run(RunRequest(playbook="cache-invalidation", requested_by="bob",
                                    params={"rest_api_id": api["id"], "stage": "prod"}))

    flush.stubber.assert_no_pending_responses()
    assert result.status == "mitigated", result.error
    assert [e.kind for e in app.store.timeline(result.incident_id)] == \
        ["opened", "plan", "execute", "verify"]


def test_a_stage_without_a_cache_is_refused_unless_only_authorizers_are_asked(moto, ctx):
    bare = create_cached_stage(aws.client, api_name="bare-api", cache=False)
    what = f"stage prod of API bare-api \\({bare['id']}\\)"

    with pytest.raises(PreconditionFailed, match=f"{what} has no cache cluster; there is "
                                                 "nothing to flush"):
        PLAYBOOK.plan(ctx, _params(api_name="bare-api", stage="prod"))
    plan = PLAYBOOK.plan(ctx, _params(api_name="bare-api", stage="prod",
                                      flush_authorizers=True))
    assert [c.attribute for c in plan.changes] == ["authorizers-cache"]
    assert any("only the authorizers' cache is flushed" in w for w in plan.warnings)


def test_api_and_stage_lookups_are_refused_clearly(api, ctx):
    create_cached_stage(aws.client, api_name="twin-api")
    create_cached_stage(aws.client, api_name="twin-api")

    with pytest.raises(PreconditionFailed, match="no REST API named nope-api in us-east-1 "
                                                 r"\(REST APIs there: orders-api, twin-api\)"):
        PLAYBOOK.plan(ctx, _params(api_name="nope-api", stage="prod"))
    with pytest.raises(PreconditionFailed, match="2 REST APIs in us-east-1 are named "
                                                 "twin-api"):
        PLAYBOOK.plan(ctx, _params(api_name="twin-api", stage="prod"))
    with pytest.raises(PreconditionFailed, match=f"API orders-api \\({api['id']}\\) has no "
                                                 r"stage beta \(its stages: prod\)"):
        PLAYBOOK.plan(ctx, _params(rest_api_id=api["id"], stage="beta"))
    with pytest.raises(PreconditionFailed, match="there is no REST API abc123 in us-east-1"):
        PLAYBOOK.plan(ctx, _params(rest_api_id="abc123", stage="prod"))


# --- params ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "why"), [
    ({"distribution_id": "E2QWRUHAPOMQZL", "api_name": "orders-api", "stage": "prod"},
     "give one target: a CloudFront distribution .* or an API Gateway stage .*, not both"),
    ({}, "no target: give a CloudFront distribution"),
    ({"paths": "/index.html"}, "no target"),
    ({"api_name": "orders-api"}, "stage is needed with rest_api_id or api_name"),
    ({"api_name": "orders-api", "stage": "prod", "paths": "/*"}, "paths are for CloudFront"),
    ({"domain": "www.example.com", "stage": "prod"}, "stage and flush_authorizers are for"),
    ({"domain": "https://www.example.com/"}, "is not a host name such as www.example.com"),
    ({"distribution_id": "E2QW", "colour": "red"}, "colour: Extra inputs are not permitted"),
])
def test_params_name_exactly_one_target(raw, why):
    with pytest.raises(InvalidParams, match=why):
        PLAYBOOK.parse_params(raw)


def _alarm(**dimensions: str) -> AlarmEvent:
    return AlarmEvent.model_validate({
        "delivery": "sns", "delivery_id": "d", "alarm_name": "a", "state": "ALARM",
        "state_changed_at": "2026-11-23T03:00:00Z", "dimensions": dimensions})


def test_params_default_from_the_alarm_dimensions():
    cloudfront = PLAYBOOK.params_from_alarm(_alarm(DistributionId="E2QWRUHAPOMQZL",
                                                   Region="Global"))
    stage = PLAYBOOK.params_from_alarm(_alarm(ApiName="orders-api", Stage="prod"))

    assert cloudfront == {"distribution_id": "E2QWRUHAPOMQZL"}
    assert stage == {"api_name": "orders-api", "stage": "prod"}
    assert PLAYBOOK.params_from_alarm(_alarm(ApiName="orders-api")) == {"api_name": "orders-api"}
    assert PLAYBOOK.params_from_alarm(_alarm(FunctionName="checkout")) == {}
    assert PLAYBOOK.parse_params(cloudfront).paths == ["/*"]
