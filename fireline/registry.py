"""Playbooks by name: each lives in the module of the `playbooks` package named after it
(`lambda-alias-revert` in `playbooks/lambda_alias_revert.py`), loaded on first use.

`get(name)` imports only that module, so a cold start pays for the one playbook its
event runs; `playbooks()`, for listings, imports them all. A module that breaks the
contract fails the load with its name in the message.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from functools import cache

from fireline.errors import MalformedPlaybook, PlaybookNotFound
from fireline.playbook import PLAYBOOK_NAME, Playbook


@cache
def playbooks() -> dict[str, Playbook]:
    import playbooks as package

    found: dict[str, Playbook] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if not module_info.name.startswith("_"):
            playbook = _load(module_info.name)
            found[playbook.name] = playbook
    return found


def get(name: str) -> Playbook:
    if exists(name):
        return _load(_module_of(name))
    known = ", ".join(sorted(playbooks())) or "none"
    raise PlaybookNotFound(f"no playbook named {name!r} (known: {known})",
                           playbook=name)


def exists(name: str) -> bool:
    """Whether a playbook is named `name`, importing no playbook but that one."""
    if not PLAYBOOK_NAME.fullmatch(name):
        return False
    module_name = _module_of(name)
    if importlib.util.find_spec(f"playbooks.{module_name}") is None:
        return False
    _load(module_name)  # a malformed module fails here, as it does for get()
    return True


def _module_of(name: str) -> str:
    return name.replace("-", "_")


@cache
def _load(module_name: str) -> Playbook:
    """The one playbook of `playbooks/<module_name>.py`; one instance, shared by `get`
    and `playbooks`. Named after its module, no two playbooks can share a name."""
    module = importlib.import_module(f"playbooks.{module_name}")
    classes = [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Playbook) and obj is not Playbook
        and obj.__module__ == module.__name__ and not inspect.isabstract(obj)
    ]
    if len(classes) != 1:
        raise MalformedPlaybook(
            f"playbooks/{module_name}.py must define exactly one Playbook subclass, "
            f"found {len(classes)}")
    playbook = classes[0]()
    if _module_of(playbook.name) != module_name:
        raise MalformedPlaybook(
            f"playbooks/{module_name}.py defines the playbook {playbook.name!r}: a playbook "
            f"lives in the module named after it, playbooks/{_module_of(playbook.name)}.py")
    return playbook
