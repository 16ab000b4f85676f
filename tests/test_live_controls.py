"""The live controls in a real `chaos run`: the run is never held up, nothing recorded is lost.

Each test measures a baseline run without controls in the same test and
compares with generous bounds; counts are read on the server.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import EXTENSION_NAME, read_journal, read_source
from tests.blackhole import Blackhole, Refusing
from tests.test_delivery_influx import DATABASE, RestartableInfluxd

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

CHAOS = os.path.join(os.path.dirname(sys.executable), "chaos")
ACTIVITIES = 20


def experiment(controls=(), pause=0.01, title="live e2e"):
    return {
        "title": title,
        "description": "activities that sleep",
        "steady-state-hypothesis": {
            "title": "root exists",
            "probes": [{"type": "probe", "name": "root-exists", "tolerance": True,
                        "provider": {"type": "python", "module": "os.path", "func": "exists",
                                     "arguments": {"path": "/"}}}],
        },
        "method": [
            {"type": "action", "name": f"sleep-{i}",
             "provider": {"type": "process", "path": "sleep", "arguments": str(pause)}}
            for i in range(ACTIVITIES)
        ],
        "controls": list(controls),
    }


def influx_control(url, **options):
    return {"name": "influx", "provider": {"type": "python", "module": "chaosreplay.controls.influx", "arguments": {
        "url": url, "database": DATABASE, "create_database": True, **options}}}


def chaos_run(tmp_path, name, document, timeout=120):
    """Run `chaos run`; (exit code, wall seconds, journal path)."""
    experiment_path = tmp_path / f"{name}.json"
    experiment_path.write_text(json.dumps(document), encoding="utf-8")
    journal_path = tmp_path / f"{name}-journal.json"
    started = time.monotonic()
    completed = subprocess.run(
        [CHAOS, "--no-version-check", "--log-file", str(tmp_path / f"{name}.log"), "run",
         str(experiment_path), "--journal-path", str(journal_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
    )
    return completed, time.monotonic() - started, str(journal_path)


def deliveries(journal_path):
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    [entry] = [e for e in journal.get("extensions", []) if e.get("name") == EXTENSION_NAME]
    return journal, entry["deliveries"]


@pytest.fixture
def influxd(tmp_path):
    workdir = tmp_path / "influxd"
    workdir.mkdir()
    server = RestartableInfluxd(str(workdir))
    server.start()
    yield server
    server.remove()


def test_healthy_server_gets_every_event_and_the_run_says_nothing(tmp_path, influxd):
    completed, _, journal_path = chaos_run(tmp_path, "healthy", experiment([influx_control(influxd.url)]))
    assert completed.returncode == 0, completed.stderr
    journal, record = deliveries(journal_path)
    [(label, entry)] = record.items()
    assert entry["undelivered"] == [] and entry["last_error"] is None
    run = read_journal(journal_path)
    points = influxd.points()
    assert sorted(p["event_id"] for p in points) == sorted(e.id for e in run.events)
    assert entry["delivered"] == len(run.events)
    assert "WARNING" not in completed.stderr + completed.stdout


def test_down_for_the_whole_run_costs_under_a_second_and_replay_delivers_everything(tmp_path, influxd):
    baseline, baseline_seconds, _ = chaos_run(tmp_path, "baseline", experiment())
    influxd.stop()
    completed, seconds, journal_path = chaos_run(tmp_path, "down", experiment([influx_control(influxd.url)]))
    assert completed.returncode == baseline.returncode == 0, completed.stderr
    assert seconds - baseline_seconds < 1.0, (seconds, baseline_seconds)

    journal, record = deliveries(journal_path)
    assert journal["status"] == "completed"
    run = read_journal(journal_path)
    [entry] = record.values()
    assert sorted(entry["undelivered"]) == sorted(e.id for e in run.events)
    warnings = [line for line in completed.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert f"chaos-replay {journal_path} --only-undelivered" in warnings[0]
    assert "Connection refused" in warnings[0]

    influxd.start()
    # Exactly the command the warning printed: the target comes from the journal's control.
    result = CliRunner().invoke(replay, [journal_path, "--only-undelivered"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p["event_id"] for p in influxd.points()) == sorted(e.id for e in run.events)


def test_blackholed_backend_is_bounded_by_the_drain_deadline(tmp_path):
    baseline, baseline_seconds, _ = chaos_run(tmp_path, "baseline", experiment())
    with Blackhole() as hole:
        completed, seconds, journal_path = chaos_run(
            tmp_path, "blackhole", experiment([influx_control(hole.url, drain_timeout=1)]))
        assert hole.connections >= 1
    assert completed.returncode == baseline.returncode == 0, completed.stderr
    assert seconds - baseline_seconds < 1 + 1.0, (seconds, baseline_seconds)
    _, record = deliveries(journal_path)
    [entry] = record.values()
    assert len(entry["undelivered"]) == len(read_journal(journal_path).events)


def test_slow_activities_keep_their_own_timing_against_a_blackhole(tmp_path):
    with Blackhole() as hole:
        completed, _, journal_path = chaos_run(
            tmp_path, "timing", experiment([influx_control(hole.url, drain_timeout=1)], pause=0.2))
    assert completed.returncode == 0, completed.stderr
    durations = [e.duration for e in read_journal(journal_path).events
                 if e.kind == "activity" and e.name.startswith("sleep-")]
    assert len(durations) == ACTIVITIES
    # A send held up by the blackhole would cost an activity the 10 s influx timeout; a loaded
    # machine costs starting `sleep` up to 0.19 s more (seen with two test workers beside two suites).
    assert max(durations) < 0.2 + 0.5, durations


def test_strict_mode_fails_the_run_when_delivery_fails(tmp_path):
    with Refusing() as down:
        completed, _, journal_path = chaos_run(
            tmp_path, "strict", experiment([influx_control(down.url, strict=True)]))
    assert completed.returncode == 1
    journal, record = deliveries(journal_path)
    assert journal["status"] == "failed"
    assert all(entry["undelivered"] for entry in record.values())
    assert "strict delivery" in completed.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_run_can_still_be_replayed(tmp_path, influxd, sig):
    document = experiment([influx_control(influxd.url)], pause=0.3)
    document["controls"][0]["provider"]["arguments"]["events_path"] = str(tmp_path / "run.events.jsonl")
    experiment_path = tmp_path / "killed.json"
    experiment_path.write_text(json.dumps(document), encoding="utf-8")
    journal_path = tmp_path / "killed-journal.json"
    process = subprocess.Popen(
        [CHAOS, "--no-version-check", "--log-file", str(tmp_path / "killed.log"), "run",
         str(experiment_path), "--journal-path", str(journal_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    side_file = tmp_path / "run.events.jsonl"
    while time.monotonic() < deadline:
        if side_file.exists() and side_file.read_text().count('"sleep-') >= 6:
            break
        time.sleep(0.05)
    process.send_signal(sig)
    process.wait(timeout=60)

    source = str(journal_path) if journal_path.exists() else str(side_file)
    run = read_source(source)
    assert any(e.kind == "activity" and e.name.startswith("sleep-") and e.end for e in run.events)
    result = CliRunner().invoke(replay, [source, "--influx-url", influxd.url, "--influx-database", DATABASE,
                                         "--influx-create-database"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    stored = {p["event_id"] for p in influxd.points()}
    assert {e.id for e in run.events} <= stored
