"""Reads answered at once with moto's own answers: AWS with no emulation time.

Fireline's own time is otherwise the wall time less moto's (benchmarks/support/meter.py);
moto in the same process still costs Fireline something that subtraction leaves in (its
allocations for the collector, the caches its code displaces). Here moto's code does not
run for the reads at all, so what is timed is Fireline's, boto3's and nothing else's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

READ = "DynamoDB_20120810.GetItem"


@contextmanager
def reads_answered_from_recording() -> Iterator[list[bytes]]:
    """DynamoDB GetItem answered with moto's answer to the same request, recorded the
    first time it is asked; anything else goes to moto. Only for reads of a table nothing
    writes to meanwhile (repeat deliveries write nothing). Yields the reads answered from
    the recording, as they come."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request
    recorded: dict[bytes, Any] = {}
    replayed: list[bytes] = []

    def process_request(self: Any, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target") or b""
        if (target.decode() if isinstance(target, bytes) else target) != READ:
            return original(self, request)
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        if body in recorded:
            replayed.append(body)
        else:
            recorded[body] = original(self, request)
        return recorded[body]

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield replayed
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]
