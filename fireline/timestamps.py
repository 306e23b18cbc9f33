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


_EXAMPLE = "2026-11-23T09:55:00Z"


def parse_requested_time(value: object) -> datetime | None:
    """A time a person gives (a playbook's `restore_to`): ISO-8601 with a timezone, as UTC.

    Unlike AWS's timestamps, a naive time is refused: a person at 3 a.m. may mean local
    time, and restoring to the wrong hour is worse than asking. Empty means "not given".
    Raises ValueError saying what to write instead.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time such as {_EXAMPLE}") from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no timezone: add Z for UTC or an "
                             "offset such as +01:00")
        return value.astimezone(UTC)
    raise ValueError(f"{value!r} is not an ISO-8601 time such as {_EXAMPLE}")
