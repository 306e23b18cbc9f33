"""Secret-looking strings are taken out of log lines before they reach the thread."""

from __future__ import annotations

import pytest

from fireline.redact import redact


@pytest.mark.parametrize(("line", "expected"), [
    ("login failed password=hunter2 for bob", "login failed password=[redacted] for bob"),
    ('{"api_key": "abc123", "user": "bob"}', '{"api_key": "[redacted]", "user": "bob"}'),
    ("Authorization: Bearer abc.def.ghi123456", "Authorization: Bearer [redacted]"),
    ("retrying with bearer 0123456789abcdefXYZ", "retrying with [redacted]"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [redacted]"),
    ("posting with xoxb-1234-5678-abcdefghijkl", "posting with [redacted]"),
    ("key AKIAIOSFODNN7EXAMPLE used", "key [redacted] used"),
    ("temporary ASIAY34FZKBOKMUTVV7A key", "temporary [redacted] key"),
    ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end", "secret [redacted] end"),
    ("sig 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ok",
     "sig [redacted] ok"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "jwt [redacted] here"),
])
def test_secret_looking_strings_are_redacted(line, expected):
    assert redact(line) == expected


@pytest.mark.parametrize("line", [
    "Task timed out after 3.00 seconds",
    "request 3f1e2d4c-1111-2222-3333-444455556666 took 3 ms",
    'File "/var/task/src/handlers/checkout_service/payments_module.py", line 3',
    "Basic authentication failed for the upstream",
    "KeyError: 'cart'",
    "passed=3 bypass=1",
])
def test_ordinary_log_text_is_left_alone(line):
    assert redact(line) == line
