"""`chaos-replay DIR` of many runs: shared batches, bounded Grafana concurrency, window
look-ups, one streamed document; against a real influxd and the Grafana stand-in, the
requests counted by the servers."""
import json
import math
import os

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from chaosreplay.render import run_document
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn
from tests.influx_server import influx_db, influxd, stored_events  # noqa: F401 (fixtures)
from tests.journal_copies import write_copies

CLEAN_ENV = {name: None for name in os.environ if name.startswith(("GRAFANA_", "INFLUX_"))}


def invoke(*args, env=None):
    return CliRunner().invoke(replay, list(args), env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)


def influx_write_requests(url: str) -> int:
    """Write requests influxd has answered (its own counter)."""
    stats = requests.get(f"{url}/debug/vars", timeout=10).json()
    return sum(value["values"].get("writeReq", 0) for key, value in stats.items() if key.startswith("httpd"))


@pytest.fixture
def copies(tmp_path):
    directory = tmp_path / "runs"
    directory.mkdir()
    paths = write_copies(str(directory), 40)
    return str(directory), [read_journal(path) for path in paths]


def test_runs_share_influx_batches_and_a_replay_stores_nothing_twice(influx_db, copies):
    directory, runs = copies
    events = sum(len(run.events) for run in runs)
    batch = 50
    assert events > 4 * batch  # several batches, each holding lines of several runs
    before = influx_write_requests(influx_db.url)
    first = invoke(directory, "--influx-url", influx_db.url, "--influx-database", influx_db.name,
                   "--influx-batch-size", str(batch))
    assert first.exit_code == 0, first.output
    assert influx_write_requests(influx_db.url) - before == math.ceil(events / batch)
    assert stored_events(influx_db.url, influx_db.name) == events
    # Each run still gets its own one-line result.
    assert first.output.count(f"db={influx_db.name}: delivered") == len(runs)
    for run in runs:
        assert f"-> influx {influx_db.url} db={influx_db.name}: delivered {len(run.events)} event(s)" in first.output

    second = invoke(directory, "--influx-url", influx_db.url, "--influx-database", influx_db.name,
                    "--influx-batch-size", str(batch))
    assert second.exit_code == 0, second.output
    assert stored_events(influx_db.url, influx_db.name) == events


def test_grafana_requests_in_flight_are_bounded_and_one_lookup_covers_a_window(copies):
    directory, runs = copies
    server = GrafanaStandIn(latency=0.05)
    try:
        first = invoke(directory, "--grafana-url", server.url, "--grafana-concurrency", "3",
                       env={"GRAFANA_TOKEN": EDITOR_TOKEN})
        assert first.exit_code == 0, first.output
        assert server.violations == []
        assert server.max_in_flight == 3
        # Forty runs an hour apart: one ranged look-up, tagged chaostoolkit, covers them all.
        [lookup] = [request for request in server.requests if request.method == "GET"]
        assert lookup.params["tags"] == ["chaostoolkit"]
        created = len(server.annotations)
        assert created == server.count("POST") > len(runs)

        server.max_in_flight = 0
        second = invoke(directory, "--grafana-url", server.url, env={"GRAFANA_TOKEN": EDITOR_TOKEN})
        assert second.exit_code == 0, second.output
        assert server.count("POST") == created and len(server.annotations) == created
        assert server.count("PATCH") == 0
        assert server.count("GET") == 2
    finally:
        server.close()


def test_grafana_concurrency_must_be_a_positive_number():
    result = invoke(os.path.join(JOURNALS, "generated-basic.json"), "--grafana-url", "http://127.0.0.1:9",
                    "--grafana-concurrency", "0")
    assert result.exit_code == 4
    assert "concurrency" in result.output


def test_streamed_json_is_the_document_of_all_runs(copies):
    directory, runs = copies
    result = invoke(directory, "--format", "json")
    assert result.exit_code == 0, result.output
    whole = json.dumps({"runs": [run_document(run) for run in runs]}, indent=2, ensure_ascii=False)
    assert result.stdout == whole + "\n"


def test_streamed_json_of_no_readable_run_is_an_empty_document(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2 would mix the error line into stdout
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(replay, [str(broken), "--format", "json"], env=CLEAN_ENV)
    assert result.exit_code == 3
    assert result.stdout == json.dumps({"runs": []}, indent=2) + "\n"
