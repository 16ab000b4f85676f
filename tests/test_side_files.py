"""The recorder's side file is the crash-safe record: whatever a run left in it replays.

Side files here come from real `chaos run`s with the recorder (a SIGKILL leaves
exactly a prefix of the lines, so a killed run is that prefix), and replays go
to real servers: influxd, the pushgateway and the Grafana stand-in.
"""
import json

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.events import epoch_ms, parse_time
from chaosreplay.journal import read_side_file
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixtures)
from tests.influx_server import influx_db, influxd  # noqa: F401 (fixtures)
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixtures)
from tests.test_same_run_same_data import _recorded_run

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


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
