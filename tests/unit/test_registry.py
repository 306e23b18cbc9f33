"""The playbook registry: one playbook loaded by name, all of them for listings, and the
contract a playbook module must keep (its file named after its playbook)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

import playbooks as package
from fireline import registry
from fireline.errors import MalformedPlaybook, PlaybookNotFound

ROOT = Path(__file__).resolve().parents[2]

# A playbook that keeps the contract, for a module written into a test package directory.
PLAYBOOK_SOURCE = textwrap.dedent("""
    from pydantic import BaseModel, ConfigDict

    from fireline.playbook import Playbook


    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")


    class Made(Playbook):
        name = {name!r}
        summary = "made by a test"
        Params = Params

        def plan(self, ctx, params): ...
        def execute(self, ctx, plan): ...
        def verify(self, ctx, outcome): ...
""")


def test_get_and_exists_import_only_the_module_of_their_playbook():
    script = ("import sys, json; from fireline import registry; "
              "registry.get('lambda-alias-revert'); registry.exists('lambda-alias-revert'); "
              "registry.exists('no-such-playbook'); "
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith('playbooks.'))))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=True)

    assert json.loads(done.stdout) == ["playbooks.lambda_alias_revert"]


def test_every_playbook_lives_in_the_module_named_after_it():
    found = registry.playbooks()

    assert sorted(found) == ["cache-invalidation", "lambda-alias-revert",
                             "point-in-time-restore", "s3-static-rollback"]
    for name, playbook in found.items():
        assert type(playbook).__module__ == "playbooks." + name.replace("-", "_")
        assert registry.get(name) is playbook
        assert registry.exists(name)


@pytest.mark.parametrize("name", [
    "no-such-playbook", "lambda_alias_revert", "Lambda-Alias-Revert", "lambda-alias-revert\n",
    "_cache_common", "cache-common", "../lambda-alias-revert", "playbooks.lambda-alias-revert", "",
])
def test_an_unknown_name_is_not_found_and_the_error_lists_the_known(name):
    assert not registry.exists(name)
    with pytest.raises(PlaybookNotFound) as caught:
        registry.get(name)

    assert caught.value.message == (
        f"no playbook named {name!r} (known: cache-invalidation, lambda-alias-revert, "
        "point-in-time-restore, s3-static-rollback)")


@pytest.fixture
def extra_playbooks(tmp_path, monkeypatch):
    """Write modules into an extra directory of the `playbooks` package; fresh registry
    caches for the test, the real ones (and sys.modules) as they were afterwards."""
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_load", cache(registry._load.__wrapped__))
    monkeypatch.setattr(registry, "playbooks", cache(registry.playbooks.__wrapped__))
    before = set(sys.modules)

    def write(module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(source)

    yield write
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_a_module_named_after_another_playbook_is_refused(extra_playbooks):
    extra_playbooks("wrong_file", PLAYBOOK_SOURCE.format(name="right-name"))

    with pytest.raises(MalformedPlaybook) as caught:
        registry.get("wrong-file")
    assert caught.value.message == (
        "playbooks/wrong_file.py defines the playbook 'right-name': a playbook lives in the "
        "module named after it, playbooks/right_name.py")
    with pytest.raises(MalformedPlaybook):
        registry.playbooks()


def test_a_module_without_exactly_one_playbook_is_refused(extra_playbooks):
    extra_playbooks("two_playbooks", PLAYBOOK_SOURCE.format(name="two-playbooks")
                    + "\n\nclass Other(Made):\n    name = 'other'\n")

    with pytest.raises(MalformedPlaybook) as caught:
        registry.get("two-playbooks")
    assert caught.value.message == (
        "playbooks/two_playbooks.py must define exactly one Playbook subclass, found 2")


def test_a_module_that_keeps_the_contract_is_found_by_name_and_listed(extra_playbooks):
    extra_playbooks("made_by_test", PLAYBOOK_SOURCE.format(name="made-by-test"))

    playbook = registry.get("made-by-test")

    assert playbook.name == "made-by-test"
    assert registry.playbooks()["made-by-test"] is playbook
