"""Replay throughput into a real influxd, next to one request per event and to the server's ceiling.

Generates a journal of 100,000 activities, starts Debian's influxd on a free
loopback port, and measures:

1. `chaos-replay JOURNAL --influx-url ... --influx-database ...`, end to end
   (a subprocess: start-up, reading the journal, serializing, sending), and,
   to tell the costs apart, reading the journal alone and the sink alone
   (`InfluxTarget.send` of the Run already read: serializing and sending);
2. the same events sent one HTTP request per event, as chaosdb.influx did
   (on a sample: at ~1,000/s the whole journal would take minutes);
3. the same lines pre-built into raw batches of 10,000 and POSTed on one
   session: the server's ceiling on this machine.

Each figure is measured against a fresh influxd (no compaction of an earlier
measurement's points running in the background), warmed up by one write, in
`--rounds` rounds whose order rotates; the medians are printed, and the ratios
are ratios of medians.

    python benchmarks/influx_replay.py [--activities 100000] [--single-sample 3000] [--rounds 3]
                                       [--baseline OTHER/.venv/bin/chaos-replay]

CPU per event is the chaos-replay process' own user + system time over the
events; beside it, measured in the same rounds (on a shared machine the ratios
hold better than the seconds):
- a process that only decodes the journal (a floor no Python reader goes below);
- `benchmarks/bare_pipeline.py`, the least Python that makes and sends the same
  lines and prints the same timeline (checked here first): no checks, no masking,
  no retries, stdlib only, so what no pure-Python replay can go below;
- with `--baseline`, another build's chaos-replay.
Every process runs with its bytecode compiled, as a package installed by pip
has it (an editable checkout under PYTHONDONTWRITEBYTECODE would compile its
source on every start).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Tuple

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from chaosreplay.config import Settings  # noqa: E402
from chaosreplay.journal import read_journal  # noqa: E402
from chaosreplay.sinks.influx import InfluxTarget, influx_config  # noqa: E402
from chaosreplay.sinks.influx_line import run_lines  # noqa: E402
from tests.influx_server import start_influxd, stored_events  # noqa: E402

RAW_BATCH = 10_000


def synthetic_journal(activities: int, start: datetime, node: str = "bench",
                      title: str = "influx replay benchmark") -> dict:
    """A completed chaoslib 1.45 journal of `activities` http probes and actions, 40 ms apart
    (one in 97 failed); the backfill benchmark builds its many runs with it too."""
    entries = []
    for index in range(activities):
        begin = start + timedelta(milliseconds=40 * index)
        entries.append({
            "activity": {"type": "probe" if index % 3 else "action", "name": f"activity-{index % 50}",
                         "provider": {"type": "http", "url": "http://svc/health"}},
            "output": {"status": 200, "body": "ok"},
            "start": begin.isoformat(),
            "end": (begin + timedelta(milliseconds=25)).isoformat(),
            "duration": 0.025,
            "status": "succeeded" if index % 97 else "failed",
        })
    return {
        "chaoslib-version": "1.45.1", "platform": "bench", "node": node,
        "experiment": {"title": title, "method": []},
        "start": start.isoformat(), "end": (start + timedelta(milliseconds=40 * activities)).isoformat(),
        "duration": activities * 0.04, "status": "completed", "deviated": False,
        "steady_states": {"before": None, "after": None, "during": []},
        "run": entries, "rollbacks": [],
    }


def generate(path: str, activities: int) -> None:
    journal = synthetic_journal(activities, datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(journal, handle)


def create_database(url: str, name: str) -> None:
    requests.post(f"{url}/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=30).raise_for_status()


def warm_up(url: str) -> None:
    """One small write first, so that no figure pays the server's first-write costs."""
    create_database(url, "warm")
    requests.post(f"{url}/write", params={"db": "warm"}, data=b"warm value=1", timeout=30).raise_for_status()


OUR_CHAOS_REPLAY = shutil.which("chaos-replay", path=os.path.dirname(sys.executable)) or "chaos-replay"


BARE_PIPELINE = os.path.join(REPO, "benchmarks", "bare_pipeline.py")


def with_bytecode(pycache: str) -> dict:
    """The environment of a measured process: bytecode written to and read from `pycache`."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": pycache}


def compile_build(chaos_replay: str, env: dict) -> None:
    """Compile a build's package (and the interpreter's modules it imports) into the cache first."""
    python = os.path.join(os.path.dirname(chaos_replay), "python")
    # Builds before 0.2 installed the package as `replay`.
    package = subprocess.run([python, "-c", "import importlib.util as u, os; spec = u.find_spec('chaosreplay') "
                              "or u.find_spec('replay'); print(os.path.dirname(spec.origin))"],
                             check=True, capture_output=True, text=True, env=env).stdout.strip()
    subprocess.run([python, "-m", "compileall", "-q", package], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([chaos_replay, "--help"], check=True, env=env, stdout=subprocess.DEVNULL)


def replay_end_to_end(url: str, journal: str, env: dict, chaos_replay: str = OUR_CHAOS_REPLAY,
                      database: str = "ours") -> Tuple[float, float]:
    """(wall time, CPU time of the chaos-replay process)."""
    before = _children_cpu()
    started = time.perf_counter()
    subprocess.run([chaos_replay, journal, "--influx-url", url, "--influx-database", database,
                    "--influx-create-database"], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started, _children_cpu() - before


def json_floor_cpu(journal: str, env: dict) -> float:
    """CPU time of a Python process that only reads and decodes the journal: what no reader
    of it in Python can go below, measured on the same machine in the same run."""
    before = _children_cpu()
    subprocess.run([sys.executable, "-c", "import json, sys; json.loads(open(sys.argv[1], 'rb').read())", journal],
                   check=True, env=env)
    return _children_cpu() - before


def bare_pipeline_cpu(url: str, journal: str, env: dict) -> float:
    """CPU time of `bare_pipeline.py` replaying the journal (its lines are checked by `check_bare_lines`)."""
    create_database(url, "bare")
    before = _children_cpu()
    subprocess.run([sys.executable, BARE_PIPELINE, journal, url, "bare"], check=True, stdout=subprocess.DEVNULL,
                   env=env)
    return _children_cpu() - before


def check_bare_lines(journal: str, run) -> None:
    """The bare pipeline must do chaos-replay's job: its activities' lines are ours, byte for byte."""
    activity_ids = {event.id for event in run.events if event.kind == "activity"}
    ours = [line.line for line in run_lines(run) if line.event_id in activity_ids]
    bare = subprocess.run([sys.executable, BARE_PIPELINE, journal, "--lines"], check=True, capture_output=True,
                          text=True).stdout.splitlines()
    if bare != ours:
        sys.exit("bare_pipeline.py does not make chaos-replay's lines: it is no floor for this journal")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sink_only(url: str, run) -> float:
    settings = Settings(cli={"influx_url": url, "influx_database": "sink", "influx_create_database": True}, env={})
    target = InfluxTarget(influx_config(settings))
    started = time.perf_counter()
    delivery = target.send(run)
    elapsed = time.perf_counter() - started
    if not delivery.ok:
        sys.exit(f"sink: {delivery.error}")
    return elapsed


def one_request_per_event(url: str, lines) -> float:
    create_database(url, "single")
    started = time.perf_counter()
    for line in lines:
        # chaosdb.influx: a bare requests.post per event, a new connection each time.
        requests.post(f"{url}/write", params={"db": "single", "precision": "ns"},
                      data=line.encode("utf-8"), timeout=30).raise_for_status()
    return time.perf_counter() - started


def raw_batches(url: str, lines) -> float:
    create_database(url, "raw")
    bodies = ["\n".join(lines[i:i + RAW_BATCH]).encode("utf-8") for i in range(0, len(lines), RAW_BATCH)]
    session = requests.Session()
    started = time.perf_counter()
    for body in bodies:
        session.post(f"{url}/write", params={"db": "raw", "precision": "ns"}, data=body,
                     timeout=60).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--single-sample", type=int, default=3_000,
                        help="events sent one request each (the rate is what counts)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each figure (medians are printed)")
    parser.add_argument("--baseline", metavar="CHAOS_REPLAY",
                        help="another build's chaos-replay (e.g. an older commit installed in its own virtualenv), "
                             "measured end to end in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="influx-bench-") as workdir:
        journal = os.path.join(workdir, "journal.json")
        generate(journal, args.activities)
        started = time.perf_counter()
        run = read_journal(journal)
        reading = time.perf_counter() - started
        lines = [line.line for line in run_lines(run)]
        sample = lines[: args.single_sample]
        check_bare_lines(journal, run)
        env = with_bytecode(os.path.join(workdir, "pycache"))
        for build in [OUR_CHAOS_REPLAY] + ([args.baseline] if args.baseline else []):
            compile_build(build, env)

        cpu = {"ours": [], "influxd": [], "baseline": [], "json": [], "bare": []}

        def ours(server) -> float:
            elapsed, client_cpu = replay_end_to_end(server.url, journal, env)
            cpu["ours"].append(client_cpu)
            stored = stored_events(server.url, "ours", timeout=60)
            if stored != len(lines):
                sys.exit(f"chaos-replay stored {stored} points for {len(lines)} events")
            return elapsed

        def raw(server) -> float:
            before = process_cpu(server.process.pid)
            elapsed = raw_batches(server.url, lines)
            cpu["influxd"].append(process_cpu(server.process.pid) - before)
            return elapsed

        def baseline(server) -> float:
            elapsed, client_cpu = replay_end_to_end(server.url, journal, env, args.baseline, "baseline")
            cpu["baseline"].append(client_cpu)
            return elapsed

        def json_floor(server) -> float:
            cpu["json"].append(json_floor_cpu(journal, env))
            return 0.0

        def bare(server) -> float:
            cpu["bare"].append(bare_pipeline_cpu(server.url, journal, env))
            stored = stored_events(server.url, "bare", timeout=60)
            if stored != args.activities:
                sys.exit(f"bare_pipeline.py stored {stored} points for {args.activities} activities")
            return 0.0

        measurements = {
            "ours": ours,
            "json": json_floor,
            "bare": bare,
            **({"baseline": baseline} if args.baseline else {}),
            "sink": lambda server: sink_only(server.url, run),
            "single": lambda server: one_request_per_event(server.url, sample),
            "raw": raw,
        }
        times = {name: [] for name in measurements}
        names = list(measurements)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                server = start_influxd(tempfile.mkdtemp(prefix="influxd-", dir=workdir))
                try:
                    warm_up(server.url)
                    times[name].append(measurements[name](server))
                finally:
                    server.stop()

    median = {name: statistics.median(values) for name, values in times.items()}
    ours_rate = len(lines) / median["ours"]
    sink_rate = len(lines) / median["sink"]
    single_rate = len(sample) / median["single"]
    raw_rate = len(lines) / median["raw"]

    def spread(name: str) -> str:
        return "/".join(f"{value:.2f}" for value in times[name])

    print(f"journal: {args.activities} activities, {len(lines)} events; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, influxd 1.6 on the same machine; medians of {args.rounds} rounds, "
          f"a fresh influxd for each measurement")
    print(f"chaos-replay end to end:  {ours_rate:>9,.0f} events/s (median {median['ours']:.2f} s of "
          f"{spread('ours')} s, every point stored)")
    print(f"  of which reading the journal: {reading:.2f} s; the sink alone (serialize + send): "
          f"{sink_rate:,.0f} events/s (median {median['sink']:.2f} s of {spread('sink')} s)")
    print(f"one request per event:    {single_rate:>9,.0f} events/s (sample of {len(sample)})")
    print(f"raw batches of {RAW_BATCH:,}:  {raw_rate:>9,.0f} points/s (median {median['raw']:.2f} s of "
          f"{spread('raw')} s, sending only)")
    ours_cpu, influxd_cpu = statistics.median(cpu["ours"]), statistics.median(cpu["influxd"])
    json_cpu, bare_cpu = statistics.median(cpu["json"]), statistics.median(cpu["bare"])
    # The client runs its Python on one core at a time (the GIL): its own CPU time bounds its
    # rate however well sending overlaps reading, and influxd needs CPU of the same two cores.
    print(f"CPU: chaos-replay {ours_cpu:.2f} s (so at most {len(lines) / ours_cpu:,.0f} events/s end to end); "
          f"influxd {influxd_cpu:.2f} s to store the raw batches")
    per_event = ours_cpu / len(lines) * 1e6
    print(f"CPU per event, end to end: {per_event:.1f} us (goal <= 15); "
          f"a Python process that only decodes the journal: {json_cpu / len(lines) * 1e6:.1f} us, "
          f"so chaos-replay costs {ours_cpu / json_cpu:.1f}x the JSON floor")
    bare_per_event = bare_cpu / args.activities * 1e6
    print(f"the bare pipeline (the same lines and timeline, nothing else): {bare_per_event:.1f} us per event "
          f"({' '.join(f'{value:.2f}' for value in cpu['bare'])} s CPU); ours / bare: {per_event / bare_per_event:.2f}; "
          f"the goal is {15 / bare_per_event:.2f}x the bare pipeline")
    if args.baseline:
        baseline_cpu = statistics.median(cpu["baseline"])
        print(f"baseline {args.baseline}: {baseline_cpu / len(lines) * 1e6:.1f} us per event "
              f"({' '.join(f'{value:.2f}' for value in cpu['baseline'])} s CPU); "
              f"ours / baseline: {ours_cpu / baseline_cpu:.2f}")
    print(f"ours / one-per-event: {ours_rate / single_rate:.0f}x (goal >= 100x); "
          f"ours / raw ceiling: {ours_rate / raw_rate:.2f} (goal >= 0.5); "
          f"sink alone / raw ceiling: {sink_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
