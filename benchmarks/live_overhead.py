"""What live delivery costs a real `chaos run` of 100 activities, healthy or not.

Runs the same experiment (python actions that each sleep `--pause` seconds)
with the venv's `chaos`:

1. without controls (the baseline);
2. with our live control shipping to a healthy influxd (Debian's `influxdb`);
3. with our live control shipping to a blackhole (accepts, never answers);
4. with chaosdb 0.2.12's influx and grafana controls against the same
   blackhole, from their own virtualenv (`--chaosdb-venv`, created with
   `chaostoolkit chaosdb==0.2.12` when missing), bounded by `--outer-timeout`
   since chaosdb sets no timeout on its InfluxDB writes.

Each scenario runs `--repeat` times; the median wall time and its ratio to the
baseline are printed in one table.

    python benchmarks/live_overhead.py [--activities 100] [--pause 0.05] [--repeat 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from chaosreplay.journal import EXTENSION_NAME  # noqa: E402
from tests.blackhole import Blackhole  # noqa: E402
from tests.influx_server import start_influxd  # noqa: E402

ACTIVITIES_MODULE = '''\
import time


def pause(seconds):
    time.sleep(seconds)
'''


def experiment(activities, pause, controls=(), configuration=None):
    return {
        "title": "live overhead benchmark",
        "description": f"{activities} python actions",
        "configuration": configuration or {},
        "method": [
            {"type": "action", "name": f"pause-{i}",
             "provider": {"type": "python", "module": "benchmark_activities", "func": "pause",
                          "arguments": {"seconds": pause}}}
            for i in range(activities)
        ],
        "controls": list(controls),
    }


def live_control(influx_url, drain_timeout):
    return {"name": "live", "provider": {"type": "python", "module": "chaosreplay.controls.live", "arguments": {
        "influx": {"url": influx_url, "database": "benchmark", "create_database": True},
        "drain_timeout": drain_timeout}}}


def chaosdb_controls():
    return [{"name": name, "provider": {"type": "python", "module": f"chaosdb.{name}"}}
            for name in ("influx", "grafana")]


def timed_run(chaos, workdir, name, document, timeout):
    """Wall seconds of one `chaos run`, and how it ended."""
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([workdir, REPO])}
    journal_path = os.path.join(workdir, f"{name}-journal.json")
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [chaos, "--no-version-check", "--log-file", os.path.join(workdir, f"{name}.log"), "run", path,
             "--journal-path", journal_path],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout,
        )
        outcome = f"exit {completed.returncode}{delivery_summary(journal_path)}"
    except subprocess.TimeoutExpired:
        outcome = f"killed by the {timeout:g} s outer timeout"
    return time.monotonic() - started, outcome


def delivery_summary(journal_path):
    """', delivered d, undelivered u' from our journal extension, if the run had live controls."""
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    for entry in journal.get("extensions") or []:
        if entry.get("name") == EXTENSION_NAME and "deliveries" in entry:
            return "".join(f", delivered {r['delivered']}, undelivered {len(r['undelivered'])}"
                           for r in entry["deliveries"].values())
    return ""


def ensure_chaosdb_venv(venv: str) -> bool:
    """chaosdb in a virtualenv of its own (it pins old dependencies); False if it cannot be had."""
    chaos = os.path.join(venv, "bin", "chaos")
    if not os.access(chaos, os.X_OK):
        print(f"creating {venv} with chaostoolkit and chaosdb 0.2.12 ...", flush=True)
        created = subprocess.run(
            f"{sys.executable} -m venv {venv} && {venv}/bin/pip install -q chaostoolkit chaosdb==0.2.12",
            shell=True, capture_output=True, text=True)
        if created.returncode != 0:
            print(f"chaosdb scenario skipped: could not install chaosdb in {venv}: "
                  f"{(created.stderr.strip().splitlines() or ['?'])[-1]}")
            return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds each action sleeps")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--chaosdb-venv", default="/tmp/chaosdb-venv")
    parser.add_argument("--outer-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    chaos = os.path.join(os.path.dirname(sys.executable), "chaos")
    chaosdb_chaos = os.path.join(args.chaosdb_venv, "bin", "chaos")
    workdir = tempfile.mkdtemp(prefix="ctkreplay-bench-")
    with open(os.path.join(workdir, "benchmark_activities.py"), "w", encoding="utf-8") as handle:
        handle.write(ACTIVITIES_MODULE)

    influxd = start_influxd(tempfile.mkdtemp(prefix="ctkreplay-bench-influxd-"))
    hole = Blackhole()
    chaosdb_configuration = {
        "influxdb": {"host": "127.0.0.1", "port": hole.port, "http_endpoint": "/write", "database": "bench"},
        "grafana": [{"host": "127.0.0.1", "port": hole.port, "protocol": "http", "api_token": "bench"}],
    }
    scenarios = [
        ("no controls", chaos, experiment(args.activities, args.pause)),
        ("ours, healthy influxd", chaos,
         experiment(args.activities, args.pause, [live_control(influxd.url, args.drain_timeout)])),
        ("ours, blackhole", chaos,
         experiment(args.activities, args.pause, [live_control(hole.url, args.drain_timeout)])),
    ]
    if ensure_chaosdb_venv(args.chaosdb_venv):
        scenarios.append(("chaosdb 0.2.12, blackhole", chaosdb_chaos,
                          experiment(args.activities, args.pause, chaosdb_controls(), chaosdb_configuration)))

    results = []
    try:
        for index, (label, executable, document) in enumerate(scenarios):
            runs = [timed_run(executable, workdir, f"s{index}-{attempt}", document, args.outer_timeout)
                    for attempt in range(args.repeat)]
            results.append((label, statistics.median(seconds for seconds, _ in runs),
                            sorted({outcome for _, outcome in runs})))
    finally:
        hole.close()
        influxd.stop()

    baseline = results[0][1]
    print(f"{args.activities} activities x {args.pause:g} s, median of {args.repeat} run(s), "
          f"drain timeout {args.drain_timeout:g} s, chaos {chaos}")
    print(f"{'scenario':<28} {'wall s':>8} {'ratio':>7} {'added s':>8}  outcome")
    for label, seconds, outcomes in results:
        print(f"{label:<28} {seconds:8.2f} {seconds / baseline:7.3f} {seconds - baseline:8.2f}  "
              f"{', '.join(outcomes)}")


if __name__ == "__main__":
    main()
