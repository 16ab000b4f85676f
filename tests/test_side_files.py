"""The recorder's side file is the crash-safe record: whatever a run left in it replays.

Side files here come from real `chaos run`s with the recorder (a SIGKILL leaves
exactly a prefix of the lines, so a killed run is that prefix), and replays go
to real servers: influxd, the pushgateway and the Grafana stand-in.
"""
import json
import os
import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.events import epoch_ms, parse_time
from chaosreplay.journal import read_journal, read_runs, read_side_file, read_source
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixtures)
from tests.influx_server import influx_db, influxd, stored_events  # noqa: F401 (fixtures)
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixtures)
from tests.test_same_run_same_data import _recorded_run

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

CHAOS_REPLAY = os.path.join(os.path.dirname(sys.executable), "chaos-replay")


def _cut_while_running(side_file, activity):
    """The side file as a SIGKILL while `activity` ran leaves it: every line up to its start."""
    with open(side_file, encoding="utf-8") as handle:
        lines = handle.readlines()
    cut = next(number for number, line in enumerate(lines)
               if json.loads(line).get("name") == activity and json.loads(line)["end"] is None)
    killed = side_file.replace(".events.jsonl", "-killed.events.jsonl")
    with open(killed, "w", encoding="utf-8") as handle:
        handle.writelines(lines[:cut + 1])
    stamps = [epoch_ms(parse_time(record[key])) for record in map(json.loads, lines[1:cut + 1])
              for key in ("start", "end") if record.get(key)]
    return killed, max(stamps)


def test_a_killed_runs_side_file_replays_as_interrupted_everywhere(tmp_path, influx_db, grafana, pushgateway):
    _, side_file = _recorded_run(tmp_path)
    killed, last_stamp = _cut_while_running(side_file, "sleep-5")
    run = read_side_file(killed)
    assert run.experiment.status == "interrupted" and epoch_ms(run.experiment.end) == last_stamp
    [cut] = [event for event in run.events if event.name == "sleep-5"]
    assert cut.status == "interrupted" and epoch_ms(cut.end) == last_stamp
    assert all(event.end is not None for event in run.events if event.kind != "interruption")

    result = CliRunner().invoke(replay, [
        killed, "--influx-url", influx_db.url, "--influx-database", influx_db.name,
        "--grafana-url", grafana.url, "--grafana-token", EDITOR_TOKEN,
        "--pushgateway-url", pushgateway.url, "--pushgateway-job", "killed"], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    points = {point["name"]: point for point in influx_db.points()}
    for name in (run.title, "sleep-5"):
        assert points[name]["status"] == "interrupted" and points[name]["end_ms"] == last_stamp
    assert "unknown" not in {point["status"] for point in points.values()}

    for name in ("experiment", "activity"):
        shown = [a for a in grafana.annotations.values() if name in a.tags
                 and (name == "experiment" or "sleep-5" in a.text)]
        assert shown and all("status-interrupted" in a.tags and a.time_end == last_stamp for a in shown), shown

    exposed = requests.get(f"{pushgateway.url}/metrics", timeout=5).text.splitlines()
    mine = [line for line in exposed if 'job="killed"' in line]
    assert any(line.startswith("chaostoolkit_experiment_in_progress{") and line.endswith(" 0") for line in mine)
    assert any(line.startswith("chaostoolkit_experiment_status{") and 'status="interrupted"' in line
               and line.endswith(" 1") for line in mine), mine


def _replay(*arguments):
    return CliRunner().invoke(replay, [*map(str, arguments)], catch_exceptions=False)


def test_two_runs_sharing_a_fixed_events_path_each_replay_as_themselves(tmp_path, influx_db):
    first_journal, side_file = _recorded_run(tmp_path, name="first")
    second_journal, same_side_file = _recorded_run(tmp_path, name="second")
    assert same_side_file == side_file
    runs = read_runs(side_file)
    journals = [read_journal(first_journal), read_journal(second_journal)]
    assert [run.run_id for run in runs] == [run.run_id for run in journals]
    assert [run.events for run in runs] == [run.events for run in journals]

    result = _replay(side_file, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
    assert result.exit_code == 0, result.output
    assert stored_events(influx_db.url, influx_db.name) == sum(len(run.events) for run in journals)


def test_a_title_over_4_kb_is_still_a_side_file(tmp_path):
    title = "a very long title " * 300
    journal_path, side_file = _recorded_run(tmp_path, title=title)
    with open(side_file, encoding="utf-8") as handle:
        assert len(handle.readline()) > 4096
    run = read_source(side_file)
    assert run.title == title and run.events == read_journal(journal_path).events


def test_a_garbage_line_in_the_middle_is_skipped_naming_it_and_the_rest_replays(tmp_path, influx_db):
    journal_path, side_file = _recorded_run(tmp_path)
    with open(side_file, encoding="utf-8") as handle:
        lines = handle.readlines()
    lines.insert(5, "\x00\x00garbage from a disk that lost a block\n")
    with open(side_file, "w", encoding="utf-8") as handle:
        handle.writelines(lines)

    completed = subprocess.run([CHAOS_REPLAY, side_file, "--influx-url", influx_db.url, "--influx-database",
                                influx_db.name], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.startswith(f"chaos-replay: WARNING: {side_file}: line 6: skipped, invalid JSON")
    assert len(completed.stderr.splitlines()) == 1
    assert stored_events(influx_db.url, influx_db.name) == len(read_journal(journal_path).events)


def test_the_directory_chaos_run_left_replays_as_one_run(tmp_path, influx_db):
    journal_path, side_file = _recorded_run(tmp_path, side_file=None)
    assert {name.rsplit(".", 1)[-1] for name in os.listdir(tmp_path)} >= {"json", "jsonl"}  # experiment too
    run = read_journal(journal_path)

    result = _replay(tmp_path, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.count(f"run {run.run_id}") == 1
    assert stored_events(influx_db.url, influx_db.name) == len(run.events)
