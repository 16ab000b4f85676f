"""What the recording control costs per activity, in real `chaos run`s.

Runs one experiment of N quick python activities (os.getpid) without the
recorder, with it declared plainly, and with it declared `"automatic": false`
(side file on, as users get it), rotating the order, several rounds, and
prints the median per-activity overhead, taken from the journals' own
`duration` (the run itself, without the CLI's start-up). It also times the
recorder's two per-activity handlers directly, which is the cost without
chaostoolkit's noise around it.

Any declared control costs chaoslib some work per activity (it deep-copies
the control and looks its hooks up, before and after each activity) even when
the control has no hooks; `"automatic": false` tells chaoslib not to apply the
control to activities, which the recorder does not need since it listens to
the run event registry.

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


VARIANTS = ("without", "declared", "automatic-false")


def experiment(activities: int, variant: str) -> dict:
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
    if variant != "without":
        control = {"name": "chaostoolkit-replay",
                   "provider": {"type": "python", "module": "chaosreplay.controls.recorder"}}
        if variant == "automatic-false":
            control["automatic"] = False
        document["controls"] = [control]
    return document


def run_once(workdir: str, activities: int, variant: str) -> float:
    """Seconds chaoslib spent in the run, from the journal it wrote."""
    path = os.path.join(workdir, f"{variant}.json")
    journal_path = os.path.join(workdir, f"journal-{variant}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(experiment(activities, variant), handle)
    subprocess.run([CHAOS, "--no-version-check", "--log-file", os.devnull, "run", path,
                    "--journal-path", journal_path],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    if variant != "without" and not any(e.get("name") == "chaostoolkit-replay" for e in journal.get("extensions", [])):
        raise SystemExit("the recorder did not record: is the package installed in this venv?")
    return float(journal["duration"])


def handler_cost_us(activities: int) -> float:
    """Microseconds per activity in start_activity + activity_completed, side file on."""
    from datetime import datetime, timezone

    from chaosreplay.controls.recorder import Recorder

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
    parser.add_argument("--rounds", type=int, default=9)
    options = parser.parse_args()
    if options.activities < 200:
        parser.error("--activities must be at least 200")

    seconds = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="recorder-overhead-") as workdir:
        for variant in VARIANTS:  # warm imports and the page cache
            run_once(workdir, options.activities, variant)
        for round_number in range(options.rounds):
            # Rotate which goes first so a drift in machine load hits all alike.
            shift = round_number % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                seconds[variant].append(run_once(workdir, options.activities, variant))

    def per_activity_us(values):
        return [value / options.activities * 1e6 for value in values]

    baseline = per_activity_us(seconds["without"])
    print(f"python {sys.version.split()[0]}, {options.activities} activities x {options.rounds} rounds")
    print(f"chaostoolkit per activity without recorder:   {statistics.median(baseline):7.1f} us (median)")
    medians = []
    for variant in VARIANTS[1:]:
        overheads = [with_ - without for with_, without in
                     zip(per_activity_us(seconds[variant]), baseline)]
        medians.append(statistics.median(overheads))
        print(f"overhead per activity, recorder {variant + ':':16s} {medians[-1]:7.1f} us"
              f" (median of paired rounds; min {min(overheads):.1f}, max {max(overheads):.1f})")
    direct = statistics.median(handler_cost_us(options.activities) for _ in range(5))
    print(f"recorder handlers per activity, direct:       {direct:7.1f} us (median of 5)")
    for variant, median in zip(VARIANTS[1:], medians):
        verdict = "within" if median < GOAL_US else "OVER"
        print(f"goal < {GOAL_US:.0f} us per activity, {variant}: {verdict}")


if __name__ == "__main__":
    main()
