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
    assert text.count("└") == 3  # plan, execute, verify as thread replies
