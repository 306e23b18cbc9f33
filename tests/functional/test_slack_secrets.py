"""`slack_secrets`: environment first, else one JSON secret in Secrets Manager (moto)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from fireline import aws
from fireline.errors import ConfigurationError
from fireline.slack_requests import SlackSecrets, reset_secrets_cache, slack_secrets

NAME = "fireline/slack"
SIGNING = "stored-signing-secret-4f1e"
TOKEN = "xoxb-stored-bot-token-9a7c"


@pytest.fixture
def secrets(moto: None) -> Iterator[object]:
    reset_secrets_cache()
    yield aws.client("secretsmanager")
    reset_secrets_cache()


def _store(client, value: str | bytes, name: str = NAME) -> None:
    if isinstance(value, bytes):
        client.create_secret(Name=name, SecretBinary=value)
    else:
        client.create_secret(Name=name, SecretString=value)


def _plain(found: SlackSecrets) -> tuple[str | None, str | None]:
    def reveal(value):
        return value.get_secret_value() if value is not None else None

    return reveal(found.signing_secret), reveal(found.bot_token)


def test_both_values_come_from_the_named_secret(secrets, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="fireline")
    caplog.set_level(logging.DEBUG, logger="aws_lambda_powertools")
    _store(secrets, json.dumps({"bot_token": TOKEN, "signing_secret": SIGNING, "other": 1}))

    found = slack_secrets({"FIRELINE_SLACK_SECRET": NAME})

    assert _plain(found) == (SIGNING, TOKEN)
    assert SIGNING not in repr(found) and TOKEN not in repr(found)
    assert NAME in caplog.text  # the read is logged by name...
    assert SIGNING not in caplog.text and TOKEN not in caplog.text  # ...never by value


def test_the_environment_wins_and_secrets_manager_is_not_asked(secrets):
    # The named secret does not exist: reading it would raise.
    found = slack_secrets({"SLACK_SIGNING_SECRET": "env-signing", "SLACK_BOT_TOKEN": "xoxb-env",
                           "FIRELINE_SLACK_SECRET": "no-such-secret"})
    assert _plain(found) == ("env-signing", "xoxb-env")


def test_each_value_the_environment_lacks_comes_from_the_secret(secrets):
    _store(secrets, json.dumps({"bot_token": TOKEN, "signing_secret": SIGNING}))

    only_token = slack_secrets({"SLACK_BOT_TOKEN": "xoxb-env", "FIRELINE_SLACK_SECRET": NAME})
    empty_is_unset = slack_secrets({"SLACK_SIGNING_SECRET": "", "SLACK_BOT_TOKEN": "xoxb-env",
                                    "FIRELINE_SLACK_SECRET": NAME})

    assert _plain(only_token) == (SIGNING, "xoxb-env")
    assert _plain(empty_is_unset) == (SIGNING, "xoxb-env")


def test_the_process_environment_is_the_default(secrets, monkeypatch: pytest.MonkeyPatch):
    _store(secrets, json.dumps({"bot_token": TOKEN, "signing_secret": SIGNING}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "env-signing")
    monkeypatch.setenv("FIRELINE_SLACK_SECRET", NAME)

    assert _plain(slack_secrets()) == ("env-signing", TOKEN)


def test_without_any_source_both_are_none(secrets):
    assert _plain(slack_secrets({})) == (None, None)


def test_the_secret_is_cached_for_five_minutes(secrets):
    _store(secrets, json.dumps({"bot_token": TOKEN, "signing_secret": SIGNING}))
    env = {"FIRELINE_SLACK_SECRET": NAME}
    assert _plain(slack_secrets(env)) == (SIGNING, TOKEN)

    secrets.put_secret_value(SecretId=NAME, SecretString=json.dumps(
        {"bot_token": "xoxb-rotated", "signing_secret": "rotated"}))

    assert _plain(slack_secrets(env)) == (SIGNING, TOKEN)  # served from the cache
    reset_secrets_cache()
    assert _plain(slack_secrets(env)) == ("rotated", "xoxb-rotated")


def test_a_missing_secret_is_a_configuration_error_naming_it(secrets):
    with pytest.raises(ConfigurationError) as caught:
        slack_secrets({"FIRELINE_SLACK_SECRET": "fireline/absent"})
    assert "'fireline/absent'" in caught.value.message
    assert "FIRELINE_SLACK_SECRET" in caught.value.message
    assert "ResourceNotFoundException" in caught.value.message


@pytest.mark.parametrize(("stored", "problem"), [
    ('{"bot_token": "' + TOKEN + '", "signing_secret": "' + SIGNING, "is not JSON"),
    ("bot_token=" + TOKEN + "\nsigning_secret=" + SIGNING, "is not JSON"),
    ('{"bot_token": "' + TOKEN + '\\q", "signing_secret": "' + SIGNING + '"}', "is not JSON"),
    (json.dumps([TOKEN, SIGNING]), "not an object"),
    (json.dumps(TOKEN), "not an object"),
    (json.dumps({"bot_token": TOKEN}), "'signing_secret' in Slack secret"),
    (json.dumps({"bot_token": TOKEN, "signing_secret": ""}), "missing or empty"),
    (json.dumps({"bot_token": TOKEN, "signing_secret": {"value": SIGNING}}), "not a string"),
    (json.dumps({"bot_token": TOKEN, "signing_secret": SIGNING + "\n"}), "whitespace"),
    ((TOKEN + SIGNING).encode(), "binary"),
])
def test_a_malformed_secret_is_refused_without_its_value(secrets, stored, problem: str):
    _store(secrets, stored)
    with pytest.raises(ConfigurationError) as caught:
        slack_secrets({"FIRELINE_SLACK_SECRET": NAME})

    text = " ".join([str(caught.value), repr(caught.value), json.dumps(caught.value.to_dict())])
    assert problem in text
    assert repr(NAME) in text
    assert TOKEN not in text and SIGNING not in text
    # No chained exception either: a JSONDecodeError keeps the whole text in its `doc`.
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_whitespace_around_an_environment_value_is_refused_by_name():
    with pytest.raises(ConfigurationError, match="SLACK_SIGNING_SECRET has leading") as caught:
        slack_secrets({"SLACK_SIGNING_SECRET": "secret-value\n", "SLACK_BOT_TOKEN": "x"})
    assert "secret-value" not in str(caught.value)
