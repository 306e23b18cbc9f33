"""Settings from the environment, and the time formats AWS sends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fireline.config import Settings
from fireline.errors import ConfigurationError
from fireline.timestamps import iso, parse_aws_time


def test_settings_read_the_documented_variables_and_hide_the_token():
    settings = Settings.from_env({
        "FIRELINE_TABLE": "incidents", "SLACK_BOT_TOKEN": "xoxb-secret-value",
        "FIRELINE_SLACK_CHANNEL": "#ops", "FIRELINE_SLACK_API_URL": "",
        "FIRELINE_TAG_LOOKUP": "false"})

    assert settings.table == "incidents"
    assert settings.slack_channel == "#ops"
    assert settings.slack_api_url is None
    assert settings.tag_lookup is False
    assert "xoxb-secret-value" not in repr(settings)
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret-value"


def test_bad_settings_name_the_variable():
    with pytest.raises(ConfigurationError, match="FIRELINE_SLACK_TIMEOUT"):
        Settings.from_env({"FIRELINE_SLACK_TIMEOUT": "soon"})


@pytest.mark.parametrize(("text", "expected"), [
    ("2021-11-10T02:45:55.640+0000", datetime(2021, 11, 10, 2, 45, 55, 640000, tzinfo=UTC)),
    ("2021-11-10T02:45:55.703Z", datetime(2021, 11, 10, 2, 45, 55, 703000, tzinfo=UTC)),
    ("2019-10-02T17:04:40Z", datetime(2019, 10, 2, 17, 4, 40, tzinfo=UTC)),
    ("2023-08-04T12: 36: 15.490+0000", datetime(2023, 8, 4, 12, 36, 15, 490000, tzinfo=UTC)),
    ("2024-02-17T12:53:08.431+0100", datetime(2024, 2, 17, 11, 53, 8, 431000, tzinfo=UTC)),
    (1576622404.0, datetime(2019, 12, 17, 22, 40, 4, tzinfo=UTC)),
])
def test_every_aws_time_format_becomes_aware_utc(text, expected):
    parsed = parse_aws_time(text)

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "09/Apr/2015:12:34:56 +0000", None, True])
def test_unparseable_times_raise_value_error(text):
    with pytest.raises(ValueError):
        parse_aws_time(text)


def test_iso_writes_milliseconds_and_z():
    assert iso(datetime(2026, 11, 23, 3, 4, 5, 678901, tzinfo=UTC)) == "2026-11-23T03:04:05.678Z"
