"""Importing a handler, as a cold Lambda does, in a fresh process each: the garbage
collector runs less often while the imports build what lives for the process's life
(handlers/__init__.py), and is back at its usual pace once any handler is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if not p.stem.startswith("_"))

PROBE = """
import gc, json, sys
usual = gc.get_threshold()
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps({"usual": usual, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_import_leaves_the_collector_at_its_usual_pace(handler):
    done = subprocess.run([sys.executable, "-c", PROBE, f"handlers.{handler}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)

    assert seen["after"] == seen["usual"]
    assert seen["frozen"] > 10_000, "what the imports built is frozen, not scanned again"


def test_every_handler_module_is_probed():
    assert {"alarm", "slack", "step", "invoke"} <= set(HANDLERS)
