"""An incident as the store would hand it to a notifier, for message and notifier tests."""

from __future__ import annotations

from datetime import UTC, datetime

from fireline.incidents import Incident


def make_incident(**overrides) -> Incident:
    fields = {
        "incident_id": "INC-20260101-abc123",
        "alarm_key": "123456789012/us-east-1/checkout-prod-errors",
        "alarm_name": "checkout-prod-errors",
        "title": "checkout-prod-errors",
        "severity": "SEV-2",
        "reason": "Threshold Crossed: Errors >= 1 <for 1 datapoint>",
        "account_id": "123456789012",
        "region": "us-east-1",
        "rule": "lambda-errors-production-by-name",
        "playbook": "lambda-alias-revert",
        "playbook_state": "pending",
        "approval": "auto",
        "opened_at": datetime(2026, 1, 1, 3, 0, tzinfo=UTC),
    }
    return Incident(**{**fields, **overrides})
