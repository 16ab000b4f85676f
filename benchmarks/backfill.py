"""Back-fill at CI scale: many runs to remote backends, their wall time, requests and peak memory.

Part 1, many small runs: `--runs` journals shaped like the bundled real ones
(fixtures/journals, each copy re-timed to start an hour after the previous
one and on its own node, so each is its own run), replayed by `chaos-replay DIR` to a
real influxd, a real pushgateway and the Grafana stand-in
(tests/grafana_standin.py) answering after `--latency` milliseconds, as a
hosted Grafana across a network does. Each latency gets fresh servers; the
runs are replayed twice (the second replay must change nothing). Printed:
wall time, requests per target as the servers counted them (influxd's
/debug/vars, the pushgateway's own metrics, the stand-in's log), the peak
RSS of the chaos-replay process, and the floor a client sending one
annotation at a time would need (annotations x the time of one request,
measured against the same stand-in in the same run).

Part 2, a big input: `--big-events` events in `--big-runs` generated
journals, replayed with the timeline only, to InfluxDB, through remote write
to a real Prometheus, to an OpenMetrics file, and with `--format json`; peak
RSS and wall time of each, and of a `--dry-run` to every kind of target (every
request built and printed), as text and with `--format json`. Then the same modes for ONE journal of
`--big-single-events` activities (a single run cannot be cut into runs: what
bounds its memory is the journal reader and the sinks' slices). Then ONE journal
of `--big-recorded-events` activities as our recording control writes it: the
same run entries, and in its `extensions` entry every event again (with tags)
and the live delivery's record, as `chaosreplay.controls.recorder` shapes it
(generated directly: no experiment is run).

    python benchmarks/backfill.py [--runs 1000] [--latency 10 --latency 50]
                                  [--big-events 1000000 --big-runs 1000]
                                  [--big-single-events 1000000] [--big-recorded-events 1000000]
                                  [--mode timeline ...] [--chaos-replay PATH]

`--chaos-replay` runs another build (e.g. a checkout of an older commit
installed in its own virtualenv) against the same servers and inputs.
"""
import argparse
import json
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.influx_replay import synthetic_journal  # noqa: E402
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn  # noqa: E402
from tests.influx_server import start_influxd, stored_events  # noqa: E402
from tests.journal_copies import write_copies  # noqa: E402
from tests.prometheus_servers import start_prometheus, start_pushgateway  # noqa: E402

FLOOR_SAMPLE = 100
MODES = ("timeline", "influx", "openmetrics", "--format json", "remote write", "dry run", "dry run json")


# -- inputs ------------------------------------------------------------------------------------


def write_big_runs(directory: str, events: int, runs: int) -> int:
    """`runs` journals of `events / runs` activities each, written by a process of its own;
    returns the activities written.

    Not by this process: a child's peak RSS as os.wait4 reports it is at least this
    process' own peak (Linux hands the parent's high-water mark to the child at fork and
    exec), and a journal of 10^6 activities held as a dict here is a gigabyte."""
    writer = multiprocessing.get_context("spawn").Process(target=_write_big_runs, args=(directory, events, runs))
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        sys.exit(f"writing the big journals failed (exit {writer.exitcode})")
    return max(1, events // runs) * runs


def _write_big_runs(directory: str, events: int, runs: int) -> None:
    per_run = max(1, events // runs)
    origin = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    for index in range(runs):
        journal = synthetic_journal(per_run, origin + timedelta(days=index), node=f"bench-{index}",
                                    title=f"backfill benchmark {index % 10}")
        with open(os.path.join(directory, f"big-{index:05d}.json"), "w", encoding="utf-8") as handle:
            json.dump(journal, handle)


def write_recorded_journal(path: str, events: int) -> int:
    """One journal of `events` activities as a run recorded live writes it, by a process of
    its own (see `write_big_runs`); returns the activities written."""
    writer = multiprocessing.get_context("spawn").Process(target=_write_recorded_journal, args=(path, events))
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        sys.exit(f"writing the recorded journal failed (exit {writer.exitcode})")
    return events


def _write_recorded_journal(path: str, events: int) -> None:
    """The recorder's extension entry (controls/recorder.py `Recorder.finish`): name, version,
    run id and tags, then every ended event (the journal's own, as the reader derives them,
    so the ids match, with the run's tags), then what a live control contributes (its
    `deliveries` record). Written entry by entry: the events held as dicts would be gigabytes."""
    from chaosreplay.controls.recorder import EXTENSION_VERSION
    from chaosreplay.journal import EXTENSION_NAME, journal_to_run

    tags = {"team": "bench", "env": "ci"}
    journal = synthetic_journal(events, datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc), node="bench-recorded",
                                title="backfill benchmark recorded")
    run = journal_to_run(journal, path)
    text = json.dumps(journal)
    del journal
    header = {"name": EXTENSION_NAME, "version": EXTENSION_VERSION, "run_id": run.run_id, "tags": tags}
    deliveries = {"deliveries": {"influx": {"delivered": len(run.events), "undelivered": [], "last_error": None}}}
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text[:-1])  # the journal but its closing brace: chaoslib writes `extensions` last
        handle.write(', "extensions": [' + json.dumps(header)[:-1] + ', "events": [')
        for index, event in enumerate(run.events):
            handle.write(("" if index == 0 else ", ") + json.dumps(event.evolve(tags=tags).to_dict()))
        handle.write("], " + json.dumps(deliveries)[1:] + "]}")


# -- measuring -----------------------------------------------------------------------------------


def run_measured(argv: List[str], env: Optional[Dict[str, str]] = None, stdout=subprocess.DEVNULL) -> Tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one chaos-replay process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode("utf-8", "replace").strip()
    process.stderr.close()
    if process.returncode not in (0,):
        print(f"  ! exit {process.returncode}: {errors.splitlines()[-1] if errors else ''}", flush=True)
    return elapsed, usage.ru_maxrss // 1024, process.returncode


def influx_requests(url: str) -> int:
    """Write requests influxd has answered so far (its own counter)."""
    stats = requests.get(f"{url}/debug/vars", timeout=10).json()
    return sum(value["values"].get("writeReq", 0) for key, value in stats.items() if key.startswith("httpd"))


def pushgateway_requests(url: str) -> int:
    """PUT/POST/DELETE requests the pushgateway has answered so far (its own metrics)."""
    total = 0
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("pushgateway_http_requests_total{") and re.search(r'method="(put|post|delete)"', line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def one_at_a_time(grafana: GrafanaStandIn, sample: int) -> float:
    """Seconds per request of a client that sends one annotation at a time, as chaosdb did."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
    started = time.perf_counter()
    for index in range(sample):
        session.post(f"{grafana.url}/api/annotations", headers=headers, timeout=30,
                     json={"time": 1000 + index, "text": "floor", "tags": ["floor"]}).raise_for_status()
    return (time.perf_counter() - started) / sample


def chaos_replay_command(given: Optional[str]) -> List[str]:
    if given:
        return given.split()
    return [shutil.which("chaos-replay", path=os.path.dirname(sys.executable)) or "chaos-replay"]


# -- part 1 --------------------------------------------------------------------------------------


def small_runs(command: List[str], workdir: str, runs: int, latency_ms: float) -> None:
    journals = os.path.join(workdir, "runs")
    if not os.path.isdir(journals):
        os.makedirs(journals)
        write_copies(journals, runs)
    influxd = start_influxd(tempfile.mkdtemp(prefix="influxd-", dir=workdir))
    pushgateway = start_pushgateway(tempfile.mkdtemp(prefix="pushgateway-", dir=workdir))
    grafana = GrafanaStandIn(latency=latency_ms / 1000)
    try:
        argv = [*command, journals, "--influx-url", influxd.url, "--influx-database", "backfill",
                "--influx-create-database", "--pushgateway-url", pushgateway.url, "--grafana-url", grafana.url]
        env = {"GRAFANA_TOKEN": EDITOR_TOKEN}
        results = []
        for attempt in ("first", "second"):
            before = (influx_requests(influxd.url), pushgateway_requests(pushgateway.url),
                      grafana.count("GET"), grafana.count("POST"), grafana.count())
            grafana.max_in_flight = 0
            elapsed, peak, code = run_measured(argv, env)
            after = (influx_requests(influxd.url), pushgateway_requests(pushgateway.url),
                     grafana.count("GET"), grafana.count("POST"), grafana.count())
            counts = [b - a for a, b in zip(before, after)]
            results.append((attempt, elapsed, peak, code, counts, grafana.max_in_flight,
                            len(grafana.annotations), stored_events(influxd.url, "backfill", timeout=60)))
        per_request = one_at_a_time(grafana, FLOOR_SAMPLE)
    finally:
        grafana.close()
        influxd.stop()
        pushgateway.stop()
    annotations = results[0][6]
    floor = annotations * per_request
    events = results[0][7]
    print(f"{runs} runs ({events} events, {annotations} annotations), Grafana latency {latency_ms:g} ms; "
          f"one-annotation-at-a-time floor {floor:.1f} s ({per_request * 1000:.1f} ms a request, "
          f"measured on {FLOOR_SAMPLE})")
    for attempt, elapsed, peak, code, counts, in_flight, stored_annotations, points in results:
        influx, push, gets, posts, total = counts
        print(f"  {attempt:<6} replay: {elapsed:7.1f} s ({elapsed / floor:.2f} of the floor), exit {code}, "
              f"peak RSS {peak} MB; requests: influx {influx} (goal <= {events // 5000 + 1}), "
              f"pushgateway {push}, grafana {total} ({posts} POST, {gets} look-ups, "
              f"{total - posts - gets} other; at most {in_flight} in flight); "
              f"stored: {points} points, {stored_annotations} annotations", flush=True)


# -- part 2 --------------------------------------------------------------------------------------


def big_input(command: List[str], workdir: str, events: int, runs: int, only: Optional[List[str]]) -> None:
    journals = os.path.join(workdir, "big")
    os.makedirs(journals)
    activities = write_big_runs(journals, events, runs)
    print(f"big input: {activities:,} activities in {runs} journals ({_size(journals)} MB of JSON)", flush=True)
    every_mode(command, workdir, journals, "big", only)


def big_single_journal(command: List[str], workdir: str, events: int, only: Optional[List[str]]) -> None:
    journals = os.path.join(workdir, "single")
    os.makedirs(journals)
    activities = write_big_runs(journals, events, 1)
    print(f"one big journal: {activities:,} activities ({_size(journals)} MB of JSON)", flush=True)
    every_mode(command, workdir, journals, "single", only)


def big_recorded_journal(command: List[str], workdir: str, events: int, only: Optional[List[str]]) -> None:
    journals = os.path.join(workdir, "recorded")
    os.makedirs(journals)
    activities = write_recorded_journal(os.path.join(journals, "recorded.json"), events)
    print(f"one big journal recorded live: {activities:,} activities, each also in the recorder's extension "
          f"({_size(journals)} MB of JSON)", flush=True)
    every_mode(command, workdir, journals, "recorded", only)


def every_mode(command: List[str], workdir: str, journals: str, name: str, only: Optional[List[str]]) -> None:
    """Peak RSS and wall time of chaos-replay on `journals` in each output mode (`only` those named)."""
    influxd = start_influxd(tempfile.mkdtemp(prefix="influxd-", dir=workdir))
    prometheus = start_prometheus(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
    openmetrics = os.path.join(workdir, f"{name}.om")
    modes = {
        "timeline": [],
        "influx": ["--influx-url", influxd.url, "--influx-database", name, "--influx-create-database"],
        "openmetrics": ["--openmetrics", openmetrics],
        "--format json": ["--format", "json"],
        # The slowest (a few million samples, protobuf-encoded in pure Python and stored out of order).
        "remote write": ["--prometheus-remote-write", f"{prometheus.url}/api/v1/write"],
        # Every request of every kind of target built and printed, nothing sent.
        "dry run": ["--dry-run", "--influx-url", influxd.url, "--influx-database", name, "--grafana-url",
                    "http://127.0.0.1:9", "--pushgateway-url", "http://127.0.0.1:9", "--prometheus-remote-write",
                    f"{prometheus.url}/api/v1/write", "--openmetrics", openmetrics],
    }
    modes["dry run json"] = [*modes["dry run"], "--format", "json"]
    try:
        for mode, options in modes.items():
            if only and mode not in only:
                continue
            elapsed, peak, code = run_measured([*command, journals, *options], env={"GRAFANA_TOKEN": EDITOR_TOKEN})
            print(f"  {mode:<14} {elapsed:7.1f} s, peak RSS {peak:5d} MB (goal < 1024), exit {code}", flush=True)
    finally:
        influxd.stop()
        prometheus.stop()


def _own_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _size(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)) // 2 ** 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="0: skip the many small runs")
    parser.add_argument("--latency", type=float, action="append", help="Grafana's latency in ms (repeatable; "
                                                                        "default 10 and 50)")
    parser.add_argument("--big-events", type=int, default=1_000_000, help="0: skip the big input")
    parser.add_argument("--big-runs", type=int, default=1000)
    parser.add_argument("--big-single-events", type=int, default=1_000_000,
                        help="activities of the one big journal (0: skip it)")
    parser.add_argument("--big-recorded-events", type=int, default=1_000_000,
                        help="activities of the one big journal recorded live (0: skip it)")
    parser.add_argument("--mode", action="append", choices=MODES,
                        help="measure the big inputs in this mode only (repeatable; default: every mode)")
    parser.add_argument("--chaos-replay", help="the command to measure (default: this checkout's)")
    args = parser.parse_args()
    command = chaos_replay_command(args.chaos_replay)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared with the servers; {' '.join(command)}")
    print(f"(a peak RSS below includes this process' own, {_own_peak()} MB so far: Linux hands it to children)")
    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as workdir:
        for latency in (args.latency or [10, 50]) if args.runs else ():
            small_runs(command, workdir, args.runs, latency)
        if args.big_events:
            big_input(command, workdir, args.big_events, args.big_runs, args.mode)
        if args.big_single_events:
            big_single_journal(command, workdir, args.big_single_events, args.mode)
        if args.big_recorded_events:
            big_recorded_journal(command, workdir, args.big_recorded_events, args.mode)


if __name__ == "__main__":
    main()
