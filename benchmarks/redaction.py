"""Cost of masking a run's known secrets (`Run.redacted`) next to building its events.

Every replayed run goes through `Run.redacted` before it is shown or sent, and
every recorded event through the recorder's masking. This builds a run of
N activities (every tenth failed with an error text), then times, medians of
rounds: building the events (the baseline: what the reader does anyway),
`redacted` with no known secret, and with a few known secrets.

    python benchmarks/redaction.py [--events 100000] [--rounds 5]
"""
import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chaosreplay.config import Redactor  # noqa: E402
from chaosreplay.events import Event, Run  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def build(count: int) -> Run:
    events = tuple(
        Event(id=f"e{i}", run_id="r", kind="activity", name=f"activity-{i % 50}", start=START + timedelta(seconds=i),
              end=START + timedelta(seconds=i + 1), status="failed" if i % 10 == 0 else "succeeded",
              activity_type="action",
              fields={"duration": 1.0, "provider": "http",
                      **({"error": "ActivityFailed: failed to connect to http://h:9/path"} if i % 10 == 0 else {})})
        for i in range(count))
    return Run("r", "benchmark", events)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    run = build(options.events)
    cases = {
        "build the events (baseline)": lambda: build(options.events),
        "redacted, no known secret": lambda: run.redacted(Redactor()),
        "redacted, 3 known secrets": lambda: run.redacted(Redactor(["tok-SeCrEt-1", "pa55word-2", "another-3"])),
    }
    medians = {name: statistics.median(timed(case) for _ in range(options.rounds)) for name, case in cases.items()}
    baseline = medians["build the events (baseline)"]
    for name, seconds in medians.items():
        print(f"{name:32} {seconds * 1000:8.1f} ms  {seconds / options.events * 1e6:6.2f} µs/event  "
              f"{seconds / baseline:5.2f}x baseline")


if __name__ == "__main__":
    main()
