"""Playbooks by name: every module of the `playbooks` package, loaded on first use.

Loading is lazy so a cold start that needs no playbook pays nothing for them; a module
that breaks the contract fails the load with its name in the message.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from fireline.errors import MalformedPlaybook, PlaybookNotFound
from fireline.playbook import Playbook


@cache
def playbooks() -> dict[str, Playbook]:
    import playbooks as package

    found: dict[str, Playbook] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        classes = [
            obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, Playbook) and obj is not Playbook
            and obj.__module__ == module.__name__ and not inspect.isabstract(obj)
        ]
        if len(classes) != 1:
            raise MalformedPlaybook(
                f"playbooks/{module_info.name}.py must define exactly one Playbook subclass, "
                f"found {len(classes)}")
        playbook = classes[0]()
        if playbook.name in found:
            raise MalformedPlaybook(f"two playbooks are named {playbook.name!r}")
        found[playbook.name] = playbook
    return found


def get(name: str) -> Playbook:
    try:
        return playbooks()[name]
    except KeyError:
        known = ", ".join(sorted(playbooks())) or "none"
        raise PlaybookNotFound(f"no playbook named {name!r} (known: {known})",
                               playbook=name) from None
