"""What the recording control costs per activity, in real `chaos run`s.

Runs one experiment of N quick python activities (os.getpid) without and with
the recorder (side file on, as users get it), alternating, several rounds, and
prints the median per-activity overhead, taken from the journals' own
`duration` (the run itself, without the CLI's start-up). It also times the
recorder's two per-activity handlers directly, which is the cost without
chaostoolkit's noise around it.

    python benchmarks/recorder_overhead.py [--activities 400] [--rounds 7]

Goal: under 100 microseconds per activity.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

GOAL_US = 100.0
CHAOS = os.path.join(os.path.dirname(sys.executable), "chaos")


def experiment(activities: int, recorded: bool) -> dict:
    document = {
        "version": "1.0.0",
        "title": f"recorder overhead, {activities} activities",
        "description": "quick python activities",
        "method": [
            {"type": "action", "name": f"quick-{index % 10}",
             "provider": {"type": "python", "module": "os", "func": "getpid"}}
            for index in range(activities)
        ],
    }
    if recorded:
        document["controls"] = [{"name": "chaostoolkit-replay",
                                 "provider": {"type": "python", "module": "controls.recorder"}}]
    return document


def run_once(workdir: str, activities: int, recorded: bool) -> float:
    """Seconds chaoslib spent in the run, from the journal it wrote."""
    name = "with" if recorded else "without"
    path = os.path.join(workdir, f"{name}.json")
    journal_path = os.path.join(workdir, f"journal-{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(experiment(activities, recorded), handle)
    subprocess.run([CHAOS, "--no-version-check", "--log-file", os.devnull, "run", path,
                    "--journal-path", journal_path],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    if recorded and not any(e.get("name") == "chaostoolkit-replay" for e in journal.get("extensions", [])):
        raise SystemExit("the recorder did not record: is the package installed in this venv?")
    return float(journal["duration"])


def handler_cost_us(activities: int) -> float:
    """Microseconds per activity in start_activity + activity_completed, side file on."""
    from datetime import datetime, timezone

    from controls.recorder import Recorder

    with tempfile.TemporaryDirectory() as workdir:
        recorder = Recorder(events_path=workdir)
        journal = {"experiment": {"title": "handler cost"}, "node": "bench",
                   "start": datetime.now(timezone.utc).isoformat(), "status": "completed"}
        recorder.running({}, journal)
        recorder.start_method({})
        definitions = [{"type": "action", "name": f"quick-{i % 10}",
                        "provider": {"type": "python"}} for i in range(activities)]
        stamp = datetime.now(timezone.utc).isoformat()
        run = {"status": "succeeded", "start": stamp, "end": stamp}
        began = time.perf_counter()
        for activity in definitions:
            recorder.start_activity(activity)
            recorder.activity_completed(activity, run)
        elapsed = time.perf_counter() - began
        recorder.finish(journal)
    return elapsed / activities * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    if options.activities < 200:
        parser.error("--activities must be at least 200")

    overheads, without_runs, with_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix="recorder-overhead-") as workdir:
        run_once(workdir, options.activities, recorded=True)  # warm imports and page cache
        for round_number in range(options.rounds):
            # Alternate which goes first so a drift in machine load hits both alike.
            order = (False, True) if round_number % 2 == 0 else (True, False)
            seconds = {recorded: run_once(workdir, options.activities, recorded) for recorded in order}
            without_runs.append(seconds[False])
            with_runs.append(seconds[True])
            overheads.append((seconds[True] - seconds[False]) / options.activities * 1e6)

    per_activity_without = statistics.median(without_runs) / options.activities * 1e6
    median = statistics.median(overheads)
    direct = statistics.median(handler_cost_us(options.activities) for _ in range(5))
    print(f"python {sys.version.split()[0]}, {options.activities} activities x {options.rounds} rounds")
    print(f"chaostoolkit per activity without recorder: {per_activity_without:8.1f} us (median)")
    print(f"recorder overhead per activity, chaos run:  {median:8.1f} us (median of paired rounds;"
          f" min {min(overheads):.1f}, max {max(overheads):.1f})")
    print(f"recorder handlers per activity, direct:     {direct:8.1f} us (median of 5)")
    verdict = "within" if max(median, direct) < GOAL_US else "OVER"
    print(f"goal < {GOAL_US:.0f} us per activity: {verdict}")


if __name__ == "__main__":
    main()
