"""Time and peak memory of building a timeline from a 50 MB journal, next to json.load.

Generates a journal of many activities with large outputs (HTTP bodies and
nested objects, as real probes return), then, each in a fresh subprocess so the
peaks do not mix, measures: the interpreter alone, a plain `json.load` of the
file, and `chaosreplay.journal.read_journal`. Prints medians and the ratios.

    python benchmarks/parse.py [--size-mb 50] [--repeat 3]
"""
import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
mode, path = sys.argv[1], sys.argv[2]
if mode == "read_journal":
    from chaosreplay.journal import read_journal
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if mode == "json.load":
    with open(path, encoding="utf-8") as handle:
        json.load(handle)
elif mode == "read_journal":
    read_journal(path)
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "before_kb": before}}))
"""


def generate(path: str, size_mb: float) -> int:
    """Write a journal of about `size_mb` MB; returns the number of activities."""
    rng = random.Random(42)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz <>/=\"") for _ in range(16_000))
    entries, size, index = [], 0, 0
    while size < size_mb * 1_000_000:
        begin = start + timedelta(seconds=index)
        if index % 2:
            output = {"status": 200, "headers": {"content-type": "text/html"}, "body": body}
        else:
            output = {f"pod-{i}": {"phase": "Running", "restarts": i, "log": body[: 800]} for i in range(20)}
        entry = {
            "activity": {"type": "probe" if index % 3 else "action", "name": f"activity-{index % 50}",
                         "provider": {"type": "http", "url": "http://svc/health"}},
            "output": output,
            "start": begin.isoformat(),
            "end": (begin + timedelta(milliseconds=250)).isoformat(),
            "duration": 0.25,
            "status": "succeeded",
        }
        size += len(json.dumps(entry))
        entries.append(entry)
        index += 1
    journal = {
        "chaoslib-version": "1.45.1", "platform": "bench", "node": "bench",
        "experiment": {"title": "parse benchmark", "method": []},
        "start": start.isoformat(), "end": (start + timedelta(seconds=index)).isoformat(),
        "duration": float(index), "status": "completed", "deviated": False,
        "steady_states": {"before": None, "after": None, "during": []},
        "run": entries, "rollbacks": [],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(journal, handle, indent=2)
    return len(entries)


def measure(mode: str, path: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD.format(repo=REPO), mode, path],
        capture_output=True, text=True, check=True,
    )
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "journal.json")
        activities = generate(path, args.size_mb)
        file_mb = os.path.getsize(path) / 1e6
        print(f"journal: {file_mb:.1f} MB, {activities} activities "
              f"(Python {sys.version.split()[0]}, {resource.getpagesize()} B pages)")
        results = {}
        # Alternate the modes so machine noise hits both alike.
        for _ in range(args.repeat):
            for mode in ("baseline", "json.load", "read_journal"):
                results.setdefault(mode, []).append(measure(mode, path))
        base_kb = statistics.median(r["peak_kb"] for r in results["baseline"])
        figures = {}
        for mode in ("json.load", "read_journal"):
            seconds = statistics.median(r["seconds"] for r in results[mode])
            peak_mb = (statistics.median(r["peak_kb"] for r in results[mode]) - base_kb) / 1024
            figures[mode] = (seconds, peak_mb)
            print(f"{mode:>13}: {seconds:.3f} s median, peak memory {peak_mb:.1f} MB above the interpreter "
                  f"({peak_mb / file_mb:.2f}x the file)")
        ratio = figures["read_journal"][0] / figures["json.load"][0]
        print(f"read_journal / json.load time: {ratio:.2f}x (goal <= 1.5x); "
              f"peak memory {figures['read_journal'][1] / file_mb:.2f}x the file (goal <= 3x)")


if __name__ == "__main__":
    main()
