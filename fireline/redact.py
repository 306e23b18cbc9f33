"""Secret-looking strings taken out of text that Fireline did not write (log lines).

Log evidence is copied into a Slack channel that more people read than the logs' owners;
a token printed by a careless `print(event)` must not travel with it. The patterns err on
the side of hiding: a hidden request id costs little, a leaked key costs a rotation.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# key=value and "key": "value" pairs whose key says secret: the key stays, the value goes.
_SECRET_PAIR = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:password|passwd|pwd|pass|secret|client[_-]?secret|token|
        access[_-]?token|refresh[_-]?token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|
        private[_-]?key|session[_-]?token|auth|authorization|credentials?)["']?)
    (?P<sep>\s*[=:]\s*["']?(?:(?:bearer|basic|token)\s+)?)
    (?P<value>[^\s"',;&}]+)
    """)
_PATTERNS = [
    # Authorization headers: "Bearer <token>", "Basic <base64>" (a word after "basic" in
    # prose has no digit or padding, and stays).
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)\bbasic\s+(?=[A-Za-z+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"),
    # Slack tokens (bot, user, app, refresh, config) and webhook paths.
    re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{6,}"),
    re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"),
    re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    # AWS access key ids (long-term and temporary).
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    # JSON Web Tokens.
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # GitHub, Stripe and similar prefixed keys.
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|sk_(?:live|test)_[A-Za-z0-9]{16,})"),
    # Long hex: keys, hashes of secrets, signatures (a UUID's dashes keep it out).
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),
]
# Long base64-looking runs (an AWS secret key is 40 of these); only redacted when they
# mix cases and digits, so a long path or a word-joined name stays readable.
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])")


def redact(text: str) -> str:
    """`text` with every secret-looking part replaced by `[redacted]`."""
    text = _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _BASE64_RUN.sub(_if_random_looking, text)


def _if_random_looking(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = (any(c.islower() for c in run) and any(c.isupper() for c in run)
             and any(c.isdigit() for c in run))
    return REDACTED if mixed else run
