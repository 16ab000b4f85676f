"""Live delivery to the Grafana stand-in and a real pushgateway: failures, credentials, several targets."""
import json
import logging
import os
import subprocess
import time

import pytest
import requests

from chaosreplay.controls.live import LiveShipping
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana_annotations import run_annotations, run_tag
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixture)
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixture)
from tests.test_live_controls import CHAOS, chaos_run, deliveries, experiment, influxd  # noqa: F401 (fixture)

pytestmark = pytest.mark.servers

JOURNAL = f"{JOURNALS}/generated-continuous.json"
RETRYING = {"backoff": 0.05, "backoff_max": 0.2, "retries": 20}


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_grafana_failing_for_a_while_gets_every_annotation_once(grafana):
    run = read_journal(JOURNAL)
    expected = len(run_annotations(run))
    grafana.fail(503, times=6)
    live = LiveShipping({"grafana": {"url": grafana.url, "token": EDITOR_TOKEN}}, RETRYING)
    for event in run.events:
        live.offer(event)
    wait_until(lambda: len(grafana.with_tag(run_tag(run.run_id))) >= expected)
    [entry] = live.finish({})["deliveries"].values()
    assert entry["undelivered"] == []
    stored = grafana.with_tag(run_tag(run.run_id))
    assert len(stored) == expected
    assert grafana.violations == []


def test_grafana_refusing_the_token_says_so_once_and_stops_asking(grafana, caplog):
    run = read_journal(JOURNAL)
    live = LiveShipping({"grafana": {"url": grafana.url, "token": "glsa_wrong"}}, RETRYING)
    for event in run.events:
        live.offer(event)
    time.sleep(0.5)
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        [entry] = live.finish({})["deliveries"].values()
    assert grafana.count() == 1
    assert len(entry["undelivered"]) == len(run.events)
    assert "HTTP 401" in entry["last_error"]
    [line] = [record.getMessage() for record in caplog.records]
    assert "\n" not in line and "HTTP 401" in line and "glsa_wrong" not in line


def test_pushgateway_group_holds_the_run_and_is_deleted_at_the_end_when_asked(pushgateway):
    run = read_journal(JOURNAL)
    live = LiveShipping({"pushgateway": {"url": pushgateway.url, "job": "live-test", "delete_at_end": True}},
                        RETRYING)
    for event in run.events:
        live.offer(event)

    def group_lines():
        text = requests.get(f"{pushgateway.url}/metrics", timeout=5).text
        return [line for line in text.splitlines() if line.startswith("chaostoolkit_") and 'job="live-test"' in line]

    wait_until(lambda: any(run.run_id in line for line in group_lines()))
    assert any(run.run_id in line for line in group_lines())
    [entry] = live.finish({})["deliveries"].values()
    assert entry["undelivered"] == []
    assert group_lines() == []


def test_one_chaos_run_ships_to_influx_grafana_and_pushgateway(tmp_path, influxd, grafana, pushgateway):
    control = {"name": "live", "provider": {"type": "python", "module": "chaosreplay.controls.live", "arguments": {
        "influx": {"url": influxd.url, "database": "live", "create_database": True},
        "grafana": [{"url": grafana.url, "token": EDITOR_TOKEN}],
        "pushgateway": {"url": pushgateway.url, "job": "live-e2e"},
    }}}
    completed, _, journal_path = chaos_run(tmp_path, "three", experiment([control]))
    assert completed.returncode == 0, completed.stderr
    _, record = deliveries(journal_path)
    assert len(record) == 3
    assert all(entry["undelivered"] == [] for entry in record.values()), json.dumps(record)
    run = read_journal(journal_path)
    assert sorted(p["event_id"] for p in influxd.points()) == sorted(e.id for e in run.events)
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(run_annotations(run))
    metrics = requests.get(f"{pushgateway.url}/metrics", timeout=5).text
    assert run.run_id in metrics


def test_a_long_action_is_on_grafana_while_it_runs_then_becomes_one_region(tmp_path, grafana):
    document = experiment([{"name": "grafana", "provider": {
        "type": "python", "module": "chaosreplay.controls.grafana",
        "arguments": {"url": grafana.url, "token": EDITOR_TOKEN}}}])
    document["method"] = [{"type": "action", "name": "long-action",
                           "provider": {"type": "process", "path": "sleep", "arguments": "3"}}]
    (tmp_path / "long.json").write_text(json.dumps(document), encoding="utf-8")
    journal_path = tmp_path / "long-journal.json"
    process = subprocess.Popen(
        [CHAOS, "--no-version-check", "--log-file", str(tmp_path / "long.log"), "run",
         str(tmp_path / "long.json"), "--journal-path", str(journal_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def long_action_annotations():
        return [a for a in grafana.with_tag("chaostoolkit") if "long-action" in a.text]

    try:
        wait_until(lambda: long_action_annotations(), timeout=15)
        # The stand-in patches stored annotations in place: copy what they are now.
        while_running = [(a.id, a.time, a.time_end) for a in long_action_annotations()]
        assert process.poll() is None, "the action should still be running"
    finally:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    [(point_id, point_time, point_end)] = while_running
    assert point_end in (0, point_time)
    [region] = long_action_annotations()
    assert region.id == point_id
    assert region.time_end - region.time >= 2900
    run = read_journal(str(journal_path))
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(run_annotations(run))
    assert grafana.violations == []


def test_a_token_from_secrets_reaches_grafana_but_no_file_or_output(tmp_path, grafana):
    document = experiment([{"name": "grafana", "provider": {
        "type": "python", "module": "chaosreplay.controls.grafana",
        "arguments": {"url": grafana.url, "token": "${grafana_token}"}}}])
    document["secrets"] = {"grafana": {"grafana_token": {"type": "env", "key": "GRAFANA_TOKEN"}}}
    (tmp_path / "secret.json").write_text(json.dumps(document), encoding="utf-8")
    journal_path = tmp_path / "secret-journal.json"
    log_path = tmp_path / "secret.log"
    completed = subprocess.run(
        [CHAOS, "--no-version-check", "--verbose", "--log-file", str(log_path), "run",
         str(tmp_path / "secret.json"), "--journal-path", str(journal_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRAFANA_TOKEN": EDITOR_TOKEN})
    assert completed.returncode == 0, completed.stderr
    run = read_journal(str(journal_path))
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(run_annotations(run))

    replayed = subprocess.run(
        [os.path.join(os.path.dirname(CHAOS), "chaos-replay"), str(journal_path), "--dry-run",
         "--format", "json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "GRAFANA_TOKEN": EDITOR_TOKEN})
    assert replayed.returncode == 0, replayed.stderr
    assert "Bearer ***" in replayed.stdout
    side_files = list(tmp_path.glob("*.events.jsonl"))
    assert side_files
    for text in (completed.stdout, completed.stderr, replayed.stdout, replayed.stderr,
                 journal_path.read_text(), log_path.read_text(), *(p.read_text() for p in side_files)):
        assert EDITOR_TOKEN not in text
