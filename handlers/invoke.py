"""Lambda entry point for a manual run: {"playbook", "params", "dry_run", "requested_by",
"reason"} -> the incident id, plan, actions and status. Bad payloads get a typed error."""

from __future__ import annotations

from typing import Any

from fireline.app import RunRequest
from fireline.errors import FirelineError
from handlers._runtime import fireline, knows_its_account, logger


@logger.inject_lambda_context(clear_state=True)
@knows_its_account
def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = RunRequest.parse(event)
        logger.append_keys(playbook=request.playbook, requested_by=request.requested_by)
        return fireline().run(request).model_dump(mode="json")
    except FirelineError as exc:
        logger.warning("run refused", extra={"refusal": exc.to_dict()})
        return exc.to_dict()
