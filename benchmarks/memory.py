"""What a warm alarm function keeps between deliveries: its memory of handled deliveries
(fireline/redeliveries.py), full.

A full memory is `REMEMBERED_AT_MOST` deliveries handled in its window (a storm of over
300 deliveries a second to one container). Measured with tracemalloc: what stays allocated
once the deliveries themselves are gone. Two storms: deliveries of 50 alarms (each alarm's
equal answers are kept once), and the worst case, every delivery of an alarm of its own.
No goal is set (issue 8 sets none for memory); the alarm function has 512 MB.

    python benchmarks/memory.py
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FUNCTION_MEMORY_MB = 512


def held_by_a_full_memory(alarms: int) -> tuple[float, int]:
    """MB a full memory holds after deliveries of `alarms` alarms, and how many it holds."""
    from fireline.alarm import AlarmEvent
    from fireline.app import AlarmResult
    from fireline.redeliveries import REMEMBERED_AT_MOST, Redeliveries

    now = datetime.now(UTC)
    memory: Redeliveries[AlarmResult | None] = Redeliveries(lambda: now)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(REMEMBERED_AT_MOST):
        name = f"storm-{n % alarms:05d}-prod-errors"
        # As the handler makes them: a delivery parsed from its payload, a new answer each.
        delivery = AlarmEvent(delivery="sns", delivery_id=str(uuid.uuid4()), alarm_name=name,
                              account_id="123456789012", region="us-east-1", state="ALARM",
                              state_changed_at=now + timedelta(milliseconds=n))
        memory.remember(delivery, AlarmResult(
            incident_id=f"INC-20261124-{n % alarms:06x}", alarm=name, severity="SEV-2",
            playbook="lambda-alias-revert", status="mitigating", opened=False))
    del delivery
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 1e6, REMEMBERED_AT_MOST


def main() -> int:
    print("a warm alarm function's memory of handled deliveries, full (tracemalloc):")
    for alarms, label in ((50, "deliveries of 50 alarms"),
                          (None, "every delivery of an alarm of its own (worst case)")):
        megabytes, deliveries = held_by_a_full_memory(alarms or 10**9)
        print(f"  {label:52} {deliveries} deliveries  {megabytes:6.1f} MB "
              f"({megabytes / FUNCTION_MEMORY_MB:.1%} of the function's {FUNCTION_MEMORY_MB} MB;"
              " no goal set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
