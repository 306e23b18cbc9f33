"""The alarm storm in a channel that Slack rate-limits as it does (about a message a second
per channel, short bursts allowed), then the minute's checks until every thread is whole.

1,000 deliveries of the same 50 alarms (`benchmarks/storm.py --quick --slack-limit 1`).
Prints how many threads Slack has whole after the storm (the rest missed replies, or their
parent), after each check, and the Slack calls the catch-ups took. The checks run back to
back; deployed, they come a minute apart, so each line is a minute. Fails if a thread is
not whole after the checks, or shows an entry twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.storm import storm

if __name__ == "__main__":
    sys.exit(storm(1_000, slack_per_second=1.0))
