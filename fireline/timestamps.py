"""Every time format AWS and Slack send, parsed at the edge into aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# "+0000" (no colon) is what CloudWatch writes; docs examples add stray spaces inside.
_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_aws_time(value: str | int | float | datetime) -> datetime:
    """Parse an AWS timestamp (ISO-8601 in any of its variants, or epoch seconds).

    Raises ValueError with the offending text when nothing fits.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty timestamp")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text)
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (what AWS means); aware ones are converted."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The one way Fireline writes a time: ISO-8601 UTC with milliseconds and a Z."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
