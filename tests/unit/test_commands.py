"""The `/fireline` command text: every verb, the usage shown for each mistake, hostile text."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from fireline.commands import MAX_TEXT_LENGTH, Command, help_text, parse_command
from fireline.errors import InvalidCommand

ID = "INC-20261123-ab12cd"


def usage_for(text: str, **kwargs: str) -> str:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(text, **kwargs)
    return caught.value.message


# --- what each verb reads ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", " Help ", "\t\n"])
def test_help_and_no_text_are_help(text):
    assert parse_command(text) == Command(verb="help")


@pytest.mark.parametrize(("text", "expected"), [
    ("list", Command(verb="list")),
    ("LIST", Command(verb="list")),
    (f"status {ID}", Command(verb="status", incident_id=ID)),
    (f"Ack {ID}", Command(verb="ack", incident_id=ID)),
    (f"undo {ID}", Command(verb="undo", incident_id=ID)),
    (f"approve  {ID} ", Command(verb="approve", incident_id=ID)),
    (f"resolve {ID}", Command(verb="resolve", incident_id=ID)),
    (f"resolve {ID} rolled back, it's fine now",
     Command(verb="resolve", incident_id=ID, note="rolled back, it's fine now")),
    (f"reject {ID} wrong \"table\"  &amp; wrong time",
     Command(verb="reject", incident_id=ID, note='wrong "table"  & wrong time')),
    (f"reject\u00a0{ID}\u00a0not now", Command(verb="reject", incident_id=ID, note="not now")),
])
def test_each_verb_reads_its_arguments(text, expected):
    assert parse_command(text) == expected


def test_an_incident_id_in_any_case_comes_back_canonical():
    assert parse_command("status inc-20261123-AB12CD").incident_id == ID


def test_run_reads_the_playbook_params_and_dry_run():
    command = parse_command('run lambda-alias-revert function=checkout alias=live '
                            'reason="bad deploy at 03:00" --dry-run')

    assert command == Command(verb="run", playbook="lambda-alias-revert", dry_run=True,
                              params={"function": "checkout", "alias": "live",
                                      "reason": "bad deploy at 03:00"})


@pytest.mark.parametrize(("text", "params", "dry_run"), [
    ("RUN Lambda-Alias-Revert", {}, False),
    ("run lambda-alias-revert --dry-run function=checkout", {"function": "checkout"}, True),
    ("run --dry-run lambda-alias-revert", {}, True),
    ("run lambda-alias-revert reason='it''s odd'", {"reason": "its odd"}, False),
    ("run lambda-alias-revert paths=/a&amp;b,/c=d", {"paths": "/a&b,/c=d"}, False),
    ("run lambda-alias-revert reason=\u201cbad deploy\u201d", {"reason": "bad deploy"}, False),
])
def test_run_variants(text, params, dry_run):
    command = parse_command(text)

    assert (command.playbook, command.params, command.dry_run) == (
        "lambda-alias-revert", params, dry_run)


def test_a_command_is_frozen():
    with pytest.raises(ValidationError):
        parse_command("list").verb = "run"  # type: ignore[misc]


# --- mistakes: a short usage line naming the problem ------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("reboot", "unknown command `reboot`. Try `/fireline help`."),
    ("rün x", "unknown command `rün`. Try `/fireline help`."),
    ("status", f"`status` needs an incident id: `/fireline status {ID}`"),
    ("ack", f"`ack` needs an incident id: `/fireline ack {ID}`"),
    ("status INC-1", f"`INC-1` is not an incident id: `/fireline status {ID}`"),
    ("undo INC-2026112-ab12cd", f"`INC-2026112-ab12cd` is not an incident id: "
                                f"`/fireline undo {ID}`"),
    ("approve INC-20261123-ab12cz", f"`INC-20261123-ab12cz` is not an incident id: "
                                    f"`/fireline approve {ID}`"),
    ("status INC-\uff12\uff10\uff12\uff161123-ab12cd",  # full-width digits
     f"`INC-\uff12\uff10\uff12\uff161123-ab12cd` is not an incident id: `/fireline status {ID}`"),
    (f"status {ID} now", f"`status` takes only an incident id: `/fireline status {ID}`"),
    (f"approve {ID} lgtm", f"`approve` takes only an incident id: `/fireline approve {ID}`"),
    ("list all", "`list` takes nothing after it: `/fireline list`"),
    ("help run", "`help` takes nothing after it: `/fireline help`"),
    ("resolve", f"`resolve` needs an incident id: `/fireline resolve {ID} [note]`"),
])
def test_mistakes_get_the_verbs_usage(text, message):
    assert usage_for(text) == message


RUN_USAGE = "`/fireline run PLAYBOOK key=value … [--dry-run]`"


@pytest.mark.parametrize(("text", "problem"), [
    ("run", "`run` needs a playbook name"),
    ("run --dry-run", "`run` needs a playbook name"),
    ("run function=checkout", "`function=checkout` is not a playbook name; the playbook "
                              "comes first"),
    ("run Lambda_Revert", "`Lambda_Revert` is not a playbook name; the playbook comes first"),
    ("run x reason='bad deploy", "cannot read the arguments (No closing quotation)"),
    ('run x reason="bad deploy', "cannot read the arguments (No closing quotation)"),
    ("run x path=a\\", "cannot read the arguments (No escaped character)"),
    ("run x a=1 a=2", "`a` given twice"),
    ("run x --dry-run a=1 --dry-run", "`--dry-run` given twice"),
    ("run x -n", "unknown option `-n`"),
    ("run x --force", "unknown option `--force`"),
    ("run x checkout", "`checkout` is not key=value"),
    ("run x function=", "`function=` has no value"),
    ('run x function=""', "`function=` has no value"),
    ("run x =checkout", "`=checkout` has no parameter name"),
    ("run x 2fa=on", "`2fa` is not a parameter name"),
    ("run x fünction=on", "`fünction` is not a parameter name"),
])
def test_run_mistakes_name_the_problem(text, problem):
    assert usage_for(text) == f"{problem}: {RUN_USAGE}"


def test_usage_uses_the_configured_command_name():
    assert usage_for("status", command_name="/fl") == f"`status` needs an incident id: " \
                                                      f"`/fl status {ID}`"
    assert usage_for("nope", command_name="/fl") == "unknown command `nope`. Try `/fl help`."


def test_what_the_user_typed_is_quoted_back_harmlessly():
    message = usage_for("status `&lt;!channel&gt;`\x00" + "x" * 50)

    # At most 30 characters of it, backticks and control characters replaced, mrkdwn escaped.
    assert message.startswith("`'&lt;!channel&gt;'?" + "x" * 17 + "…` is not an incident id")
    assert "<" not in message and "\x00" not in message


def test_control_characters_are_dropped_from_notes_and_refused_in_values():
    assert parse_command(f"resolve {ID} done\x07\x1b[31m").note == "done[31m"
    assert usage_for("run x reason=a\x07b") == \
        f"`reason` has a control character in its value: {RUN_USAGE}"


def test_text_that_is_too_long_or_not_text_is_refused():
    assert usage_for("x" * (MAX_TEXT_LENGTH + 1)) == (
        f"that is too long ({MAX_TEXT_LENGTH + 1} characters; at most {MAX_TEXT_LENGTH}). "
        "Try `/fireline help`.")
    assert "cannot read" in usage_for(f"resolve {ID} \ud800")
    assert usage_for(None) == "no command text. Try `/fireline help`."  # type: ignore[arg-type]


def test_help_lists_every_verb_in_one_short_block():
    text = help_text("/fl")
    lines = text.splitlines()

    verbs = ["help", "list", "status", "run", "ack", "resolve", "undo", "approve", "reject"]
    assert [line.split("`")[1].split()[1] for line in lines[1:]] == verbs
    assert all(line.startswith("`/fl ") for line in lines[1:])
    assert "`/fl run PLAYBOOK key=value … [--dry-run]`" in text
    assert len(text) < 1000


def test_every_usage_shown_in_help_parses():
    for line in help_text().splitlines()[1:]:
        usage = line.split("`")[1].removeprefix("/fireline ")
        usage = usage.replace(" [note]", " a note").replace("PLAYBOOK", "x")
        usage = usage.replace(" key=value …", " key=value").replace("[--dry-run]", "--dry-run")
        parse_command(usage)


# --- hostile text -----------------------------------------------------------------------------

SEEDS = [
    "", "help", "list", f"status {ID}", f"resolve {ID} all good", f"reject {ID} 'no'",
    'run lambda-alias-revert function=checkout reason="bad deploy" --dry-run',
    "run s3-static-rollback bucket=site prefix=/ at=2026-11-23T03:00:00Z",
]
ALPHABET = (" \t\n\r\x00\x07\x1b\x7f\"'\\=-`<>&;|$#*?~"
            "\u201c\u201d\u2018\u2019\u00a0\u200b\u202e\ufeff"  # curly quotes, odd spaces
            "aZ09_IiNnCc\u0130\u212a\U0001f525é漢")


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(4)
        at = rng.randint(0, len(chars))
        if action == 0:
            chars.insert(at, rng.choice(ALPHABET))
        elif action == 1 and chars:
            del chars[min(at, len(chars) - 1)]
        elif action == 2:
            chars[at:at] = list(rng.choice(SEEDS))
        else:
            chars.insert(at, chr(rng.randint(0, 0x10FFFF)))
    return "".join(chars)


def _hostile_texts(count: int) -> list[str]:
    rng = random.Random(20261123)
    texts = ["\x00", "\ud800", "=" * 10, "run " + "a=b " * 1000, "run x " + "'" * 999,
             "status " + "9" * MAX_TEXT_LENGTH, "run " + "\\" * 3, "x" * (MAX_TEXT_LENGTH * 10)]
    while len(texts) < count:
        kind = rng.randrange(5)
        if kind <= 2:
            texts.append(_mutate(rng, rng.choice(SEEDS)))
        elif kind == 3:
            texts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80))))
        else:
            texts.append("".join(chr(rng.randint(0, 0x10FFFF))
                                 for _ in range(rng.randint(0, 200))))
    return texts


def test_hostile_text_gives_a_command_or_invalidcommand_and_nothing_else():
    outcomes = {"command": 0, "unknown verb": 0, "past the verb": 0}
    for text in _hostile_texts(600):
        try:
            command = parse_command(text)
        except InvalidCommand as exc:
            first_word = exc.message.startswith("unknown command")
            outcomes["unknown verb" if first_word else "past the verb"] += 1
            assert exc.message and len(exc.message) < 200, repr(text)
            assert "\n" not in exc.message and "<" not in exc.message, repr(text)
            exc.message.encode("utf-8")  # showable in Slack: no half surrogate pairs
        except Exception as exc:  # pragma: no cover - this is the failure being looked for
            pytest.fail(f"{type(exc).__name__}: {exc} for {text!r}")
        else:
            outcomes["command"] += 1
            assert isinstance(command, Command)
            command.model_dump_json()  # storable and showable as it is
    # The mutations must reach the parser's depths, not just bounce off the first word.
    assert outcomes["command"] >= 30 and outcomes["past the verb"] >= 100, outcomes
