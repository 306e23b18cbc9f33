"""The shared corpus of real alarm payloads (shared/events beside the repository).

Files named `*.message.json` hold a bare SNS alarm message (the JSON object itself); every
other file is a whole event as its source recorded it. See shared/events/PROVENANCE.md.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(
    os.environ.get("FIRELINE_EVENTS_CORPUS")
    or Path(__file__).resolve().parents[3] / "shared" / "events"
)

requires_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"event corpus not found at {CORPUS} (set FIRELINE_EVENTS_CORPUS to its folder)",
)


def load_event(relative_path: str | Path) -> Any:
    """A corpus file, decoded: e.g. load_event("cloudwatch_sns/x.lambda.json")."""
    return json.loads((CORPUS / relative_path).read_text(encoding="utf-8"))


def field_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path in a (trusted, test-built) event."""
    found = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else []
    for key, child in items:
        found += field_paths(child, (*path, key))
    return found


def replaced(event: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `event` with the field at `path` set to `value`."""
    event = copy.deepcopy(event)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event
