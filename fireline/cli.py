"""The `fireline` command: triage, run, replay, incidents, init-table, demo.

Errors are one line on stderr and a non-zero exit, never a traceback: the reader is an
on-call engineer at 3 a.m.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fireline.errors import FirelineError, InvalidRequest

if TYPE_CHECKING:
    from fireline.incidents import Incident

EXIT_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if not args.verbose:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    try:
        return int(args.func(args) or 0)
    except FirelineError as exc:
        print(f"fireline: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fireline: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fireline",
        description="Incident-response automation for AWS serverless stacks. Runs against "
                    "the current AWS credentials; AWS_ENDPOINT_URL points it at a local AWS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("triage", help="show the decision for each alarm in an event file",
                       description="Parse an alarm event file (any delivery shape) and print "
                                   "the decision the runbook gives each alarm. Changes nothing.")
    p.add_argument("file", type=Path, help="JSON event file (SNS, SQS, EventBridge, ...)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--lookup-tags", action="store_true",
                   help="read alarm tags from CloudWatch when the payload has none")
    p.set_defaults(func=_triage)

    p = sub.add_parser("run", help="run a playbook by hand",
                       description="Plan a playbook, show the plan, and (after confirmation) "
                                   "execute and verify it. An incident records the run.")
    p.add_argument("playbook", help="playbook name, e.g. lambda-alias-revert")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a playbook parameter (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="plan only; change nothing")
    p.add_argument("--yes", action="store_true", help="execute without asking")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--as", dest="requester", metavar="NAME",
                   help="who is asking (default: your AWS identity)")
    p.add_argument("--reason", default="", help="why, for the record")
    p.set_defaults(func=_run)

    for verb, text in (("approve", "let a held plan run (a different person than its requester)"),
                       ("reject", "refuse a held plan; nothing changes")):
        p = sub.add_parser(verb, help=text, description=text.capitalize() + ". You are "
                           "identified by your AWS identity (sts get-caller-identity) "
                           "unless --as names you.")
        p.add_argument("incident_id")
        p.add_argument("--as", dest="person", metavar="NAME",
                       help="who you are (default: your AWS identity)")
        p.add_argument("--note", default="", help="why, for the record")
        p.set_defaults(func=_approve if verb == "approve" else _reject)

    p = sub.add_parser("resume", help="carry on a run that stopped part-way",
                       description="Resume an incident's playbook at the step it stopped at "
                                   "(after a crash, or a wait longer than this process may "
                                   "wait). Steps already done are not repeated.")
    p.add_argument("incident_id")
    p.set_defaults(func=_resume)

    p = sub.add_parser("undo", help="put back what an incident's playbook changed",
                       description="Undo the recorded action of an incident from its recorded "
                                   "'before' (e.g. the alias version, the environment "
                                   "variables). Resources a playbook created are kept.")
    p.add_argument("incident_id")
    p.add_argument("--as", dest="person", metavar="NAME",
                   help="who asks (default: your AWS identity)")
    p.set_defaults(func=_undo)

    p = sub.add_parser("replay", help="run the alarm handler on an event file",
                       description="Deliver an event file to handlers.alarm.handler: the "
                                   "whole path, incidents and playbooks included.")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_replay)

    p = sub.add_parser("incidents", help="list or show incidents")
    isub = p.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    q = isub.add_parser("list", help="newest first")
    q.add_argument("--json", action="store_true")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=_incidents_list)
    q = isub.add_parser("check", help="look at watched alarms: recovered, or escalate",
                        description="For every incident watching its alarm after an action: "
                                    "back to OK -> mitigated; past the deadline still in "
                                    "ALARM -> escalated (and undone if the rule says so). "
                                    "Slack threads that missed replies are caught up on the "
                                    "way (up to 20).")
    q.set_defaults(func=_incidents_check)
    q = isub.add_parser("show", help="one incident with its timeline")
    q.add_argument("incident_id")
    shape = q.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true")
    shape.add_argument("--markdown", action="store_true",
                       help="print a post-mortem draft in Markdown")
    q.set_defaults(func=_incidents_show)

    p = sub.add_parser("init-table", help="create the incidents table where it is missing",
                       description="For local runs and the demo; in AWS the template "
                                   "creates the table.")
    p.set_defaults(func=_init_table)

    p = sub.add_parser("demo", help="a bad deploy reverted, a table restored: on a local AWS",
                       description="Starts moto's server and a Slack-compatible server on "
                                   "127.0.0.1, then runs an alarm through Fireline.")
    p.add_argument("--scenario", default="all", choices=["all", "bad-deploy", "data-corruption",
                                                         "stale-frontend"],
                   help="which story to run (default: all, one after the other)")
    p.set_defaults(func=_demo)
    return parser


# --- commands ----------------------------------------------------------------------------


def _triage(args: argparse.Namespace) -> int:
    from fireline import events

    app = _app()
    app.runbook  # noqa: B018 - a broken runbook is this command's error, not a silent default
    alarms = events.parse_event(_read_json(args.file))
    rows = []
    for alarm in alarms:
        decision = app.triage(alarm, lookup_tags=args.lookup_tags)
        rows.append({
            "alarm": alarm.alarm_name, "state": alarm.state, "severity": decision.severity,
            "rule": decision.rule, "playbook": decision.playbook, "params": decision.params,
            "approval": decision.approval, "reasons": list(decision.reasons),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"{args.file}: no alarm state change in this event (recognised and skipped)")
    for row in [] if args.json else rows:
        print(f"{row['alarm']} [{row['state']}] -> {row['severity']}, "
              f"playbook {row['playbook'] or 'none'}"
              f"{' (' + row['approval'] + ')' if row['approval'] else ''}")
        if row["params"]:
            print("  params: " + ", ".join(f"{k}={v}" for k, v in row["params"].items()))
        for reason in row["reasons"]:
            print(f"  - {reason}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from fireline.app import RunRequest

    app = _app()
    request = RunRequest.parse({
        "playbook": args.playbook, "params": _params(args.param), "dry_run": True,
        "requested_by": args.requester or _caller_identity(), "reason": args.reason,
    })
    preview = app.run(request)
    if args.dry_run:
        _print_result(preview, args.json)
        return 0
    if not args.json:
        _print_plan(preview.plan or {})
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidRequest("not executed: confirm with --yes (no terminal to ask on)")
        if input("Execute this plan? [y/N] ").strip().lower() not in {"y", "yes"}:
            print("Nothing changed.")
            return 1
    result = app.run(request.model_copy(update={"dry_run": False}))
    _print_result(result, args.json)
    if result.status == "awaiting-approval" and not args.json:
        print(f"  waiting for approval: someone other than {request.requested_by} runs\n"
              f"    fireline approve {result.incident_id}   (or: fireline reject "
              f"{result.incident_id})")
    return 0 if result.status not in {"failed"} else 1


def _approve(args: argparse.Namespace) -> int:
    person = args.person or _caller_identity(strict=True)
    incident = _app().approve(args.incident_id, person, note=args.note)
    return _report_run(incident, f"approved by {person}; ")


def _reject(args: argparse.Namespace) -> int:
    person = args.person or _caller_identity(strict=True)
    incident = _app().reject(args.incident_id, person, note=args.note)
    print(f"{incident.incident_id}: rejected by {person}; nothing was changed")
    return 0


def _undo(args: argparse.Namespace) -> int:
    person = args.person or _caller_identity(strict=True)
    incident = _app().undo(args.incident_id, person)
    print(f"{incident.incident_id}: undone by {person}: "
          f"{(incident.undo_outcome or {}).get('summary', '')}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    return _report_run(_app().resume(args.incident_id))


def _report_run(incident: Any, lead: str = "") -> int:
    print(f"{incident.incident_id}: {lead}playbook {incident.playbook} is "
          f"{incident.playbook_state}, incident {incident.status}")
    if incident.playbook_state == "running" and incident.wait_until:
        print(f"  still running: `fireline resume {incident.incident_id}` carries on "
              f"after {incident.wait_until:%H:%M:%S}Z")
    if incident.error:
        print(f"  error: {incident.error}")
    return 1 if incident.status == "failed" else 0


def _replay(args: argparse.Namespace) -> int:
    from fireline.local.lambda_context import LambdaContext
    from handlers._runtime import logger
    from handlers.alarm import handler

    # The handler logs its JSON lines as in Lambda, to the stream its logger was made
    # with (stdout); here stdout carries the result alone, so `| jq` reads it.
    logs = logger.registered_handler
    before = logs.setStream(sys.stderr) if isinstance(logs, logging.StreamHandler) else None
    try:
        result = handler(_read_json(args.file), LambdaContext(function_name="fireline-alarm"))
    finally:
        if before is not None:
            logs.setStream(before)  # type: ignore[attr-defined]  # a StreamHandler, above
    print(json.dumps(result, indent=2, default=str))
    return 1 if "error" in result else 0


def _incidents_list(args: argparse.Namespace) -> int:
    incidents = _app().store.list(limit=args.limit)
    if args.json:
        print(json.dumps([i.summary() for i in incidents], indent=2))
        return 0
    if not incidents:
        print("no incidents")
    for i in incidents:
        print(f"{i.incident_id}  {i.opened_at:%Y-%m-%d %H:%M}Z  {i.severity}  "
              f"{i.status:<17} {i.playbook or '-':<22} {i.alarm_name}")
    return 0


def _incidents_check(args: argparse.Namespace) -> int:
    checked = _app().check_watched()
    if not checked:
        print("no incident is watching its alarm")
    for incident in checked:
        print(f"{incident.incident_id}  {incident.severity}  {incident.status:<11} "
              f"{incident.alarm_name}")
    return 0


def _incidents_show(args: argparse.Namespace) -> int:
    app = _app()
    incident = app.store.get(args.incident_id)
    timeline = app.store.timeline(args.incident_id)
    if args.json:
        # The task token lets its holder end the state machine's approval wait.
        doc = incident.model_dump(mode="json", exclude={"task_token"})
        doc["alarm"] = incident.alarm_name
        doc["timeline"] = [entry.model_dump(mode="json") for entry in timeline]
        print(json.dumps(doc, indent=2))
        return 0
    if args.markdown:
        from fireline.postmortem import postmortem_markdown

        print(postmortem_markdown(incident, timeline), end="")
        return 0
    print(f"{incident.incident_id}  {incident.severity}  {incident.status}")
    print(f"  alarm:    {incident.alarm_line()}")
    print(f"  playbook: {incident.playbook or 'none'} ({incident.playbook_state})")
    print(f"  requested by: {incident.requested_by}")
    if incident.approved_by or incident.rejected_by:
        verdict = "approved" if incident.approved_by else "rejected"
        print(f"  {verdict} by: {incident.approved_by or incident.rejected_by}")
    if incident.error:
        print(f"  error:    {incident.error}")
    print(f"  slack:    {_slack_line(incident)}")
    missed = set(incident.slack_missed)
    print("  timeline:" + (" (* not in the Slack thread yet)" if missed else ""))
    for entry in timeline:
        mark = "*" if entry.entry_id in missed else " "
        print(f"   {mark}{entry.at:%H:%M:%S}  {entry.actor:<10} {entry.kind:<8} {entry.text}")
    return 0


def _slack_line(incident: Incident) -> str:
    """Where the thread is, and whether it is whole: Slack is a view, and may lag."""
    thread = (f"{incident.slack.channel} thread {incident.slack.ts}" if incident.slack
              else "no thread")
    if incident.slack_behind is None:
        return thread
    missed = len(incident.slack_missed)
    what = (f"{missed} {'update' if missed == 1 else 'updates'} not shown" if missed
            else "the parent not up to date")
    return (f"{thread}; behind since {incident.slack_behind:%H:%M:%S}Z ({what}): the next "
            "post or the minute's check catches it up")


def _init_table(args: argparse.Namespace) -> int:
    app = _app()
    created = app.store.create_table()
    print(f"table {app.settings.table} {'created' if created else 'already exists'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from fireline.demo import run_demo

    return run_demo(args.scenario)


# --- helpers -----------------------------------------------------------------------------


def _app() -> Any:
    from fireline.app import Fireline
    from fireline.config import Settings

    return Fireline(Settings.from_env())


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"parameter {pair!r} is not KEY=VALUE", field="params")
        params[key.strip()] = value
    return params


def _caller_identity(*, strict: bool = False) -> str:
    """Who is asking: the AWS identity. An approval must know it; a request may guess."""
    from fireline import aws

    try:
        return str(aws.client("sts").get_caller_identity()["Arn"])
    except Exception as exc:  # no credentials is no reason to refuse a dry run
        if strict:
            raise InvalidRequest(
                f"cannot tell who you are from AWS ({type(exc).__name__}); pass --as NAME",
                field="as") from None
        return os.environ.get("USER") or "unknown"


def _print_plan(plan: dict[str, Any]) -> None:
    print(f"Plan: {plan.get('summary', '')}")
    for change in plan.get("changes", []):
        before = "none" if change["before"] is None else change["before"]
        print(f"  {change['resource']} {change['attribute']}: {before} -> {change['after']}")
    for warning in plan.get("warnings", []):
        print(f"  warning: {warning}")


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    if result.dry_run:
        _print_plan(result.plan or {})
        print("Dry run: nothing changed.")
        return
    print(f"{result.incident_id}: {result.status}")
    for action in result.actions:
        print(f"  done: {action.get('summary', '')}")
    if result.error:
        print(f"  error: {result.error}")


if __name__ == "__main__":
    sys.exit(main())
