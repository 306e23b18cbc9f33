"""Hostile alarm deliveries for property tests: real deliveries, mutated by Hypothesis.

The seeds are real payloads: the builders of fireline.local.payloads (SNS, SQS, EventBridge,
Lambda action, from captured templates) and, when it is beside the repository, every file of
the shared corpus's alarm folders. A mutation works on the event with its embedded JSON
opened up (an SNS `Message`, an SQS `body`, a `reasonData`), so it reaches the alarm inside
the envelope: a value replaced by one of another type, a key dropped or added, a string cut,
grown or given characters UTF-8 cannot carry, a part swapped for another part.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from fireline.local.payloads import (
    eventbridge_alarm_event,
    lambda_action_alarm_event,
    sns_alarm_event,
    sns_document,
    sns_lambda_errors_event,
    sqs_batch,
)
from tests.support.events import CORPUS

# Text Hypothesis rarely draws on its own, and parsers often trip on.
NASTY = ["\ud800", "\udfff", "\x00", "\u202e", "\ufeff", "\u2028", "{", "}", "%s", "\\",
         "{alarm.__class__}", "{0.__globals__}", "'; DROP TABLE", "null", "ALARM", "OK",
         "INSUFFICIENT_DATA", "aws:sns", "aws:sqs", "Notification", "aws.cloudwatch",
         "CloudWatch Alarm State Change", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x",
         "2026-11-23T09:55:00.000+0000", "1e999", "-0", "x" * 3000]
EMBEDDED_KEYS = {"Message", "body", "reasonData"}

text = st.one_of(st.text(max_size=30), st.sampled_from(NASTY),
                 st.lists(st.sampled_from(NASTY), max_size=3).map("".join))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400)]), st.floats(allow_nan=True, allow_infinity=True),
    text)
json_values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(text, inner, max_size=4), max_leaves=10)


@dataclass
class _Embedded:
    """JSON carried as a string inside the event, opened up so mutations reach into it."""

    value: Any
    as_object: bool = False  # put back as the object itself, not as JSON text


@cache
def _seeds() -> tuple[str, ...]:
    quiet = {"namespace": "AWS/ApiGateway", "metric": "Latency",
             "dimensions": {"ApiName": "orders-api"}}
    built: list[Any] = [
        sns_lambda_errors_event(function_name="checkout", alarm_name="checkout-prod-errors"),
        sns_alarm_event(alarm_name="orders-latency", tags={"team": "payments"}, **quiet),
        sqs_batch(sns_document(sns_alarm_event(alarm_name="orders-latency", **quiet))),
        eventbridge_alarm_event(alarm_name="orders-latency", **quiet),
        lambda_action_alarm_event(alarm_name="orders-latency", **quiet),
    ]
    if CORPUS.is_dir():
        for folder in ("cloudwatch_sns", "cloudwatch_eventbridge", "cloudwatch_lambda_action",
                       "counterexamples"):
            for path in sorted((CORPUS / folder).glob("*.json")):
                try:
                    built.append(json.loads(path.read_text(encoding="utf-8")))
                except ValueError:  # a template with placeholders, not JSON
                    continue
    # Kept as JSON text: every draw gets its own copy, and the cache holds no mutable state.
    return tuple(json.dumps(event) for event in built)


def seed_events() -> list[Any]:
    """The real deliveries mutations start from (fresh copies)."""
    return [json.loads(seed) for seed in _seeds()]


def _open(value: Any, key: Any = None) -> Any:
    if isinstance(value, str) and key in EMBEDDED_KEYS:
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, dict | list):
            return _Embedded(_open(decoded))
        return value
    if isinstance(value, dict):
        return {k: _open(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_open(v) for v in value]
    return value


def _close(value: Any) -> Any:
    if isinstance(value, _Embedded):
        inner = _close(value.value)
        return inner if value.as_object else json.dumps(inner, ensure_ascii=False)
    if isinstance(value, dict):
        return {k: _close(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_close(v) for v in value]
    return value


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, _Embedded):
        found += _paths(value.value, (*path, _Embedded))
    elif isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root.value if key is _Embedded else root[key]
    return root


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = _get(root, path[:-1])
    if path[-1] is _Embedded:
        parent.value = value
    else:
        parent[path[-1]] = value
    return root


@st.composite
def mutated_events(draw: Any, seeds: list[Any], min_mutations: int = 1,
                   max_mutations: int = 4) -> Any:
    """A real delivery, changed in 1 to 4 places (embedded JSON included)."""
    event = _open(copy.deepcopy(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(min_mutations, max_mutations))):
        paths = _paths(event)
        path = draw(st.sampled_from(paths))
        target = _get(event, path)
        kind = draw(st.sampled_from(["replace", "drop", "add", "edit", "swap", "unwrap"]))
        if kind == "drop" and path and path[-1] is not _Embedded:
            parent = _get(event, path[:-1])
            if isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.pop(path[-1])
        elif kind == "add" and isinstance(target, dict):
            target[draw(text)] = draw(json_values)
        elif kind == "add" and isinstance(target, list):
            target.append(draw(json_values))
        elif kind == "edit" and isinstance(target, str):
            cut = draw(st.integers(0, len(target)))
            event = _set(event, path, target[:cut] + draw(text) + target[cut:][
                :draw(st.integers(0, len(target)))])
        elif kind == "swap":
            other = _get(event, draw(st.sampled_from(paths)))
            event = _set(event, path, copy.deepcopy(other))
        elif kind == "unwrap" and isinstance(target, _Embedded):
            target.as_object = True  # an envelope carrying its JSON as an object, not text
        else:
            event = _set(event, path, draw(json_values))
    return _close(event)

