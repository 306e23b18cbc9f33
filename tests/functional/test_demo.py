"""`fireline demo` end to end: moto's server and the local Slack on 127.0.0.1."""

from __future__ import annotations

import io

from fireline.demo import run_demo


def test_demo_reverts_the_bad_deploy_and_shows_the_thread(aws_env):
    out = io.StringIO()

    assert run_demo("bad-deploy", out=out) == 0

    text = out.getvalue()
    assert "=== Slack thread ===" in text
    assert "point alias live from version 3 to version 2" in text
    assert "Alias live now points at version 2." in text
    # plan, execute, verified with the watch for recovery (one reply), the OK that resolves
    # it, and the alarm's context in one reply: what changed, log evidence and the chart
    # (both skipped: no log group, and moto has no GetMetricWidgetImage)
    assert text.count("└") == 5
    assert text.count("*context* · around the alarm") == 1
    # The local CloudTrail (fireline.local.cloudtrail) recorded the deploy it was shown.
    assert "what changed: 6 changes to function checkout-api" in text
    assert "UpdateFunctionCode checkout-api by ci-deploy" in text
    assert "CreateAlias checkout-api on version 3 by ci-deploy" in text
    assert "• version 3 published" in text
    assert "log evidence skipped: no log group /aws/lambda/checkout-api" in text
    assert "watching checkout-api-prod-errors until" in text
    assert "resolved: checkout-api-prod-errors is OK" in text


def test_demo_restores_the_corrupted_table_after_a_second_person_approves(aws_env):
    out = io.StringIO()

    assert run_demo("data-corruption", out=out) == 0

    text = out.getvalue()
    assert "$ fireline run point-in-time-restore" in text
    assert "Dry run: nothing changed." in text
    assert "cannot approve it too" in text  # the requester's own approval is refused
    assert "approved by alice@payments" in text
    assert "[Approve]  [Reject]" in text  # the thread's approval post has its buttons
    assert "=== Slack thread ===" in text
    assert "Demo finished: the table was restored and the function repointed." in text


def test_demo_unknown_scenario_is_refused(aws_env):
    out = io.StringIO()

    assert run_demo("nope", out=out) == 2
    assert "unknown scenario 'nope'" in out.getvalue()


def test_demo_rolls_back_the_stale_frontend_with_a_chain(aws_env):
    out = io.StringIO()

    assert run_demo("stale-frontend", out=out) == 0

    text = out.getvalue()
    assert "s3-static-rollback (1/2) · roll back 2 objects" in text
    assert "next: cache-invalidation (2 of 2)" in text
    assert "cache-invalidation (2/2) · invalidate /* on CloudFront distribution" in text
    assert "The bucket serves app.js = 'render(cart)' (release 1)" in text
    assert "Demo finished: the release was rolled back and the cache invalidated." in text
