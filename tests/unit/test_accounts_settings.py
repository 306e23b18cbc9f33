"""The settings and runbook fields for many accounts and for context, read strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from fireline.config import Settings
from fireline.errors import ConfigurationError, InvalidRunbook
from fireline.runbook import load_runbook

RUNBOOKS = Path(__file__).parent / "runbooks"


def test_the_cross_account_and_context_settings_are_read_and_the_external_id_hidden():
    settings = Settings.from_env({
        "FIRELINE_CROSS_ACCOUNT_ROLE": "incident-response/fireline-responder",
        "FIRELINE_EXTERNAL_ID": "ext-7f3a9c", "FIRELINE_ENRICH": "off",
        "FIRELINE_ENRICH_BUDGET_SECONDS": "4.5"})

    assert settings.cross_account_role == "incident-response/fireline-responder"
    assert settings.external_id.get_secret_value() == "ext-7f3a9c"
    assert "ext-7f3a9c" not in repr(settings)
    assert (settings.enrich, settings.enrich_budget_seconds) == (False, 4.5)


def test_by_default_no_role_and_context_on():
    settings = Settings.from_env({"FIRELINE_CROSS_ACCOUNT_ROLE": ""})

    assert settings.cross_account_role is None and settings.external_id is None
    assert (settings.enrich, settings.enrich_budget_seconds) == (True, 10.0)


@pytest.mark.parametrize(("variable", "value"), [
    ("FIRELINE_CROSS_ACCOUNT_ROLE", "arn:aws:iam::222222222222:role/x"),  # a name, not an ARN
    ("FIRELINE_CROSS_ACCOUNT_ROLE", "role with spaces"),
    ("FIRELINE_ENRICH", "sometimes"),
    ("FIRELINE_ENRICH_BUDGET_SECONDS", "0"),
    ("FIRELINE_ENRICH_BUDGET_SECONDS", "600"),
])
def test_bad_values_name_their_variable(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize(("file", "expected"), [
    ("accounts_leading_zero.yaml", "field defaults.accounts: Value error, 1402433619 is not "
                                   "an AWS account id: write it as 12 digits in quotes"),
    ("accounts_not_an_id.yaml", "'prod-account' is not an AWS account id"),
])
def test_runbook_accounts_must_be_account_ids(file, expected):
    with pytest.raises(InvalidRunbook) as caught:
        load_runbook(RUNBOOKS / file)

    assert str(RUNBOOKS / file) in caught.value.message
    assert expected in caught.value.message


def test_runbook_accounts_default_to_any():
    assert load_runbook(RUNBOOKS / "custom.yaml").defaults.accounts is None
