"""What every Lambda entry point shares: one logger, one metrics object, one Fireline.

Built on first use, so importing a handler costs little and tests can set the
environment first.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from fireline.app import Fireline
from fireline.config import Settings

logger = Logger(service="fireline")
metrics = Metrics(namespace="Fireline", service="fireline")
# The core logs through the standard library; give those loggers the same JSON format.
copy_config_to_registered_loggers(source_logger=logger, include={"fireline", "playbooks"})


@cache
def fireline() -> Fireline:
    return Fireline(Settings.from_env())
