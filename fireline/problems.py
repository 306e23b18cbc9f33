"""Saying what is wrong with hostile input, safely: a field path and a short description.

Shared by the parsers of alarm events and Slack requests, whose error messages reach logs
and chat: they name the field and describe the value without ever echoing a container.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def show_value(value: Any) -> str:
    """A short, safe description for an error message: never the repr of a container."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else "a very large integer"
    article = "an" if type(value).__name__[:1] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def first_problem(exc: ValidationError, path: str) -> tuple[str, str]:
    """(field, problem) of a validation's first error, the field under `path`."""
    error = exc.errors(include_url=False)[0]
    field = path
    for part in error["loc"]:
        field = f"{field}[{part}]" if isinstance(part, int) else join_path(field, str(part))
    if error["type"] == "missing":
        return field, "is missing"
    if error["type"] in ("model_type", "dict_type"):
        return field, f"is {show_value(error.get('input'))}, not an object"
    message = error["msg"]
    return field, f"is {show_value(error.get('input'))}: {message[:1].lower()}{message[1:]}"
