"""Lambda entry point for the state machine that drives long-running playbooks.

    {"action": "advance", "incident_id": ID}
        one advance of the run -> {"incident_id", "status", "wait_seconds", "message"},
        where status is continue | wait | busy | approval | done | failed | rejected
    {"action": "await-approval", "incident_id": ID, "task_token": TOKEN}
        the machine parks on its task token until someone approves or rejects
    {"action": "check"}
        a schedule (every minute): every incident watching its alarm after an action is
        looked at once -> mitigated, still watching, or escalated; on the way, Slack
        threads that missed replies are caught up

A playbook's failure is an answer ("failed"), so the machine ends cleanly. What may pass
(the incident table unreachable) is raised, so the machine's Retry calls again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline.errors import FirelineError, InvalidRequest, StoreUnavailable
from handlers._runtime import fireline, knows_its_account, logger, publish_metrics


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["advance", "await-approval", "check"]
    incident_id: str = Field(default="", max_length=80)
    task_token: str | None = Field(default=None, min_length=1, max_length=4096)

    @classmethod
    def parse(cls, event: Any) -> StepRequest:
        try:
            request = cls.model_validate(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(event)"
            raise InvalidRequest(f"invalid step event: {field}: {first['msg']}",
                                 field=field) from None
        if request.action == "await-approval" and not request.task_token:
            raise InvalidRequest("invalid step event: await-approval needs task_token",
                                 field="task_token")
        if request.action != "check" and not request.incident_id:
            raise InvalidRequest(f"invalid step event: {request.action} needs incident_id",
                                 field="incident_id")
        return request


@logger.inject_lambda_context(clear_state=True)
@knows_its_account
@publish_metrics
def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = StepRequest.parse(event)
    except InvalidRequest as exc:
        logger.error("step event refused", extra={"refusal": exc.to_dict()})
        return {"status": "failed", **exc.to_dict()}
    logger.append_keys(incident_id=request.incident_id, action=request.action)
    app = fireline()
    try:
        if request.action == "check":
            checked = app.check_watched()
            return {"status": "checked", "incidents": [
                {"incident_id": i.incident_id, "status": i.status} for i in checked]}
        if request.action == "await-approval":
            incident = app.engine.park_for_approval(request.incident_id,
                                                    request.task_token or "")
            return {"incident_id": incident.incident_id, "status": "parked"}
        before = app.store.get(request.incident_id)
        after, advance = app.engine.advance(before)
        app.observe(before, after)
    except StoreUnavailable:
        raise  # the machine's Retry tries again
    except FirelineError as exc:  # e.g. no such incident: retrying cannot help
        logger.error("step failed", extra={"error": exc.to_dict()})
        return {"incident_id": request.incident_id, "status": "failed", **exc.to_dict()}
    logger.info("advanced", extra={"advance": advance.model_dump()})
    return advance.model_dump()
