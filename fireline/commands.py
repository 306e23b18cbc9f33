"""The `/fireline` slash command's text, read into a `Command`.

Slack hands us whatever the user typed, so the text is hostile input: anything that is not
exactly one of the commands below fails with `InvalidCommand`, whose message is one short
usage line naming the problem (the handler shows it to the user as it is). Nothing else is
ever raised, whatever the string.

    help                                   (also: no text at all)
    list
    status ID
    run PLAYBOOK key=value ... [--dry-run]
    ack ID
    resolve ID [note ...]
    undo ID
    approve ID
    reject ID [note ...]

Verbs are case-insensitive; an incident id looks like `INC-20261123-ab12cd` (any case; it
comes back canonical). `run`'s arguments are split like a shell would (`reason="bad
deploy"`); a note is the rest of the text as typed, so `it's fixed` needs no quoting.
Slack's escapes (`&amp;`, `&lt;`, `&gt;`) are undone in values and notes.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fireline.errors import InvalidCommand

Verb = Literal["help", "list", "status", "run", "ack", "resolve", "undo", "approve", "reject"]

# Longer than any real command; refusing early keeps the work bounded on junk.
MAX_TEXT_LENGTH = 4000
EXAMPLE_ID = "INC-20261123-ab12cd"

_INCIDENT_ID = re.compile(r"INC-([0-9]{8})-([0-9a-f]{6})", re.ASCII)  # new_incident_id's shape
_PLAYBOOK = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*", re.ASCII)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRY_RUN = "--dry-run"
# Verbs that take an incident id and nothing else (resolve and reject also take a note).
_ID_ONLY = ("status", "ack", "undo", "approve")
# Usage of each verb after the command name, for help and for error messages.
_USAGE: dict[str, str] = {
    "help": "help",
    "list": "list",
    "status": f"status {EXAMPLE_ID}",
    "run": "run PLAYBOOK key=value … [--dry-run]",
    "ack": f"ack {EXAMPLE_ID}",
    "resolve": f"resolve {EXAMPLE_ID} [note]",
    "undo": f"undo {EXAMPLE_ID}",
    "approve": f"approve {EXAMPLE_ID}",
    "reject": f"reject {EXAMPLE_ID} [note]",
}
_WHAT: dict[str, str] = {
    "help": "this list",
    "list": "open incidents",
    "status": "one incident: state, playbook, timeline",
    "run": "run a playbook (`--dry-run`: show the plan, change nothing)",
    "ack": "take the incident",
    "resolve": "close it",
    "undo": "put back what its playbook changed",
    "approve": "let a waiting playbook run (not your own request)",
    "reject": "stop a waiting playbook; nothing is changed",
}


class Command(BaseModel):
    """One parsed slash command. Fields a verb does not take keep their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verb: Verb
    incident_id: str | None = None
    playbook: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    dry_run: bool = False
    note: str = ""


def help_text(command_name: str = "/fireline") -> str:
    """Every command, one line each, as Slack mrkdwn."""
    lines = [f"*{command_name}* commands:"]
    lines += [f"`{command_name} {_USAGE[verb]}` — {_WHAT[verb]}" for verb in _USAGE]
    return "\n".join(lines)


def parse_command(text: str, *, command_name: str = "/fireline") -> Command:
    """Read the text after the command name; `InvalidCommand` (the usage) if it is not one."""
    if not isinstance(text, str):
        raise InvalidCommand(f"no command text. Try `{command_name} help`.")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidCommand(f"that is too long ({len(text)} characters; at most "
                             f"{MAX_TEXT_LENGTH}). Try `{command_name} help`.")
    if _SURROGATE.search(text):  # half a UTF-16 pair: it could not be stored or shown
        raise InvalidCommand(f"that text has characters Fireline cannot read. "
                             f"Try `{command_name} help`.")
    text = _plain_spaces(text).strip()
    if not text:
        return Command(verb="help")
    word, _, rest = text.partition(" ")
    verb = word.lower() if word.isascii() else ""
    if verb not in _USAGE:
        raise InvalidCommand(f"unknown command `{_show(word)}`. Try `{command_name} help`.")
    rest = rest.strip()
    if verb in ("help", "list"):
        if rest:
            raise _usage(command_name, verb, f"`{verb}` takes nothing after it")
        return Command(verb=verb)
    if verb == "run":
        return _run(rest, command_name)
    incident_word, _, note = rest.partition(" ")
    incident_id = _incident_id(incident_word, verb, command_name)
    note = note.strip()
    if note and verb in _ID_ONLY:
        raise _usage(command_name, verb, f"`{verb}` takes only an incident id")
    return Command(verb=verb, incident_id=incident_id, note=_unescape(_CONTROL.sub("", note)))


# --- the verbs' arguments ---------------------------------------------------------------------


def _incident_id(word: str, verb: str, command_name: str) -> str:
    if not word:
        raise _usage(command_name, verb, f"`{verb}` needs an incident id")
    if word.isascii():
        match = _INCIDENT_ID.fullmatch(word.upper()[:4] + word[4:].lower())
        if match:
            return match.group(0)
    raise _usage(command_name, verb, f"`{_show(word)}` is not an incident id")


def _run(rest: str, command_name: str) -> Command:
    try:
        # Curly double quotes are what a Mac turns "..." into; read them as straight ones.
        words = shlex.split(rest.replace("\u201c", '"').replace("\u201d", '"'))
    except ValueError as exc:  # an unbalanced quote, or a lone trailing backslash
        raise _usage(command_name, "run", f"cannot read the arguments ({exc})") from None
    playbook: str | None = None
    params: dict[str, str] = {}
    dry_run = False
    for word in words:
        if word == _DRY_RUN:
            if dry_run:
                raise _usage(command_name, "run", f"`{_DRY_RUN}` given twice")
            dry_run = True
        elif word.startswith("-"):
            raise _usage(command_name, "run", f"unknown option `{_show(word)}`")
        elif playbook is None:
            playbook = _playbook(word, command_name)
        else:
            key, value = _param(word, command_name)
            if key in params:
                raise _usage(command_name, "run", f"`{_show(key)}` given twice")
            params[key] = value
    if playbook is None:
        raise _usage(command_name, "run", "`run` needs a playbook name")
    return Command(verb="run", playbook=playbook, params=params, dry_run=dry_run)


def _playbook(word: str, command_name: str) -> str:
    name = word.lower() if word.isascii() else word
    if "=" in word or not _PLAYBOOK.fullmatch(name):
        raise _usage(command_name, "run",
                     f"`{_show(word)}` is not a playbook name; the playbook comes first")
    return name


def _param(word: str, command_name: str) -> tuple[str, str]:
    key, equals, value = word.partition("=")
    if not equals:
        raise _usage(command_name, "run", f"`{_show(word)}` is not key=value")
    if not key:
        raise _usage(command_name, "run", f"`{_show(word)}` has no parameter name")
    if not _KEY.fullmatch(key):
        raise _usage(command_name, "run", f"`{_show(key)}` is not a parameter name")
    if not value:
        raise _usage(command_name, "run", f"`{_show(key)}=` has no value")
    if _CONTROL.search(value):
        raise _usage(command_name, "run", f"`{_show(key)}` has a control character in its value")
    return key, _unescape(value)


# --- plumbing ---------------------------------------------------------------------------------


def _usage(command_name: str, verb: str, problem: str) -> InvalidCommand:
    return InvalidCommand(f"{problem}: `{command_name} {_USAGE[verb]}`")


def _plain_spaces(text: str) -> str:
    # Any Unicode space (a no-break space pasted from a doc, a tab, a newline) separates words.
    return "".join(" " if char.isspace() else char for char in text)


def _unescape(text: str) -> str:
    # Slack escapes these three in the text it sends; `&amp;` last, so `&amp;lt;` stays `&lt;`.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _show(word: str, limit: int = 30) -> str:
    """The user's word, safe to quote back inside backticks in Slack mrkdwn."""
    word = _unescape(word)
    shown = "".join("?" if unicodedata.category(char)[0] == "C" else char
                    for char in word[:limit])
    shown = shown.replace("`", "'").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return shown + ("…" if len(word) > limit else "")
