"""Alarm tags by the alarm's ARN, for payloads that do not carry them.

A lookup that fails (no permission, another account, no ARN) gives no tags and a log line:
tags refine triage, they never stop it.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from fireline.alarm import AlarmEvent
from fireline.aws import ClientFactory, error_code

log = logging.getLogger(__name__)


def tags_for(alarm: AlarmEvent, clients: ClientFactory, *, lookup: bool = True) -> dict[str, str]:
    if alarm.tags is not None:
        return dict(alarm.tags)
    if not lookup or not alarm.alarm_arn:
        return {}
    try:
        cloudwatch = clients("cloudwatch", region=alarm.region)
        response = cloudwatch.list_tags_for_resource(ResourceARN=alarm.alarm_arn)
    except (ClientError, BotoCoreError) as exc:
        log.warning("alarm tags of %s not read (%s); triage goes on without them",
                    alarm.alarm_name, error_code(exc))
        return {}
    return {tag["Key"]: tag["Value"] for tag in response.get("Tags", [])}
