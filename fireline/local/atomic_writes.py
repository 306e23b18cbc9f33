"""moto's DynamoDB made to write conditionally the way DynamoDB does: atomically.

moto checks a write's condition and then writes, with no lock between: two threads can
both pass `attribute_not_exists`. DynamoDB never lets that happen, and Fireline's
"one incident per alarm" rests on it, so concurrent tests and the storm benchmark run
moto's item writes one at a time. Fireline's code is unchanged; only the stand-in is.

Queries and scans take the same turn: moto answers them by walking the table's dicts, and
a write from another thread in between fails the walk with "dictionary changed size
during iteration" (seen once in about 20 storms), where DynamoDB would simply answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item")
_WALKS = ("query", "scan")


@contextmanager
def atomic_conditional_writes() -> Iterator[None]:
    """While inside, moto's DynamoDB item writes (condition check and write) are atomic,
    and its queries and scans never meet a write half-way."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: DynamoDBBackend.__dict__[name] for name in (*_WRITES, *_WALKS)}
    for name, original in originals.items():

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, atomic)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
