"""`chaos-replay DIR` of many runs: shared batches, bounded Grafana concurrency, window
look-ups, one streamed document, one OpenMetrics file written once, the progress line; against a real influxd and the Grafana stand-in, the
requests counted by the servers."""
import collections
import io
import json
import math
import os

import pytest
import requests
from click.testing import CliRunner

from chaosreplay import cli
from chaosreplay.cli import replay
from chaosreplay.config import Settings
from chaosreplay.journal import read_journal
from chaosreplay.render import run_document
from chaosreplay.sinks import influx, openmetrics
from chaosreplay.sinks.prometheus_series import merge_families, openmetrics_text, run_families
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn
from tests.influx_server import influx_db, influxd, stored_events  # noqa: F401 (fixtures)
from tests.journal_copies import write_copies
from tests.prometheus_servers import prometheus, pushgateway  # noqa: F401 (fixtures)
from tests.recording_server import recorders  # noqa: F401 (a fixture)

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
    # Each answer waits 20 ms, so the three senders are in flight together.
    server = GrafanaStandIn(latency=0.02)
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


def test_openmetrics_file_of_many_runs_is_written_once_with_every_run(copies, tmp_path, monkeypatch):
    directory, runs = copies
    output = tmp_path / "runs.om"
    replaced = []
    real_replace = os.replace

    def counting_replace(source, destination):
        replaced.append(str(destination))
        real_replace(source, destination)

    monkeypatch.setattr(openmetrics.os, "replace", counting_replace)
    result = invoke(directory, "--openmetrics", str(output))
    assert result.exit_code == 0, result.output
    assert replaced == [str(output)]
    assert output.read_text(encoding="utf-8") == openmetrics_text(merge_families(
        *(run_families(run, delivery="openmetrics") for run in runs)))
    # The spools beside it are gone.
    assert {path.name for path in tmp_path.iterdir()} == {"runs", "runs.om"}


def remote_write_requests(prometheus_url: str) -> int:
    """Remote-write requests Prometheus has answered (its own counter)."""
    total = 0
    for line in requests.get(f"{prometheus_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/write"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_runs_share_remote_write_requests(prometheus, copies, tmp_path):
    directory, runs = copies
    series = sum(len(family.series) for run in runs for family in run_families(run, delivery="remote_write"))
    batch = 100
    assert series > 4 * batch
    config = tmp_path / "targets.json"
    config.write_text(json.dumps({"prometheus_remote_write": {"url": f"{prometheus.url}/api/v1/write",
                                                              "batch_size": batch}}))
    before = remote_write_requests(prometheus.url)
    result = invoke(directory, "--config", str(config))
    assert result.exit_code == 0, result.output
    assert remote_write_requests(prometheus.url) - before == math.ceil(series / batch)
    for run in runs:
        assert f"-> prometheus remote write {prometheus.url}/api/v1/write: delivered {len(run.events)} event(s)" \
            in result.output
    last = runs[-1]
    prometheus.wait_for(f'chaostoolkit_experiment_start_timestamp_seconds{{chaostoolkit_run_trace_id="{last.run_id}"}}',
                        lambda result: len(result) == 1, at=last.experiment.end.timestamp() if last.experiment else None)


def test_progress_line_counts_runs_events_and_each_targets_requests(influx_db, copies):
    _, runs = copies
    [target] = influx.targets(Settings(cli={"influx_url": influx_db.url, "influx_database": influx_db.name},
                                       env={}))
    stream = io.StringIO()
    with cli._Progress(2, [target], stream=stream, columns=500) as progress:
        for run in runs[:2]:
            assert target.send(run).ok
            progress.update(run)
        drawn = stream.getvalue()
    events = len(runs[0].events) + len(runs[1].events)
    assert f"replaying: 2/2 runs, {events} events; {target.label}: 2 request(s)" in drawn
    # The line is wiped when done: the timelines and results are not mixed with it.
    assert stream.getvalue().endswith("\r")
    target.close()


def test_a_full_window_sends_partial_batches_instead_of_waiting_for_later_runs(influx_db, copies, monkeypatch):
    """With room for only a few events in flight, the oldest run's partial batch must be
    sent early (else it would wait for runs that cannot be read yet): every run arrives."""
    directory, runs = copies
    monkeypatch.setattr(cli, "MAX_PENDING_EVENTS", 20)
    before = influx_write_requests(influx_db.url)
    result = invoke(directory, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
    assert result.exit_code == 0, result.output
    assert stored_events(influx_db.url, influx_db.name) == sum(len(run.events) for run in runs)
    # Flushed as the window filled: more than one request, far fewer than one per run.
    assert 1 < influx_write_requests(influx_db.url) - before < len(runs)


@pytest.fixture
def reads(monkeypatch):
    """How many times each journal (by file name) is read."""
    counted = collections.Counter()
    read_runs = cli.read_runs

    def counting(path, *args, **kwargs):
        counted[os.path.basename(path)] += 1
        return read_runs(path, *args, **kwargs)

    monkeypatch.setattr(cli, "read_runs", counting)
    return counted


def test_runs_over_the_budget_are_read_again_except_the_last_input(tmp_path, reads, monkeypatch):
    """Every run is over a budget of one event: the earlier ones are read again in their
    turn, the last one is kept from the first reading (a single huge journal is read once)."""
    paths = write_copies(str(tmp_path), 3)
    monkeypatch.setattr(cli, "KEPT_EVENTS", 1)
    result = invoke(str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    names = [os.path.basename(path) for path in paths]
    assert reads == {names[0]: 2, names[1]: 2, names[2]: 1}
    # Every run is still shown, in input order, whole.
    document = json.loads(result.stdout)
    expected = [read_journal(path) for path in paths]
    assert [run["run_id"] for run in document["runs"]] == [run.run_id for run in expected]
    assert [len(run["events"]) for run in document["runs"]] == [len(run.events) for run in expected]


def test_runs_within_the_budget_are_read_once(tmp_path, reads):
    paths = write_copies(str(tmp_path), 3)
    result = invoke(str(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert reads == {os.path.basename(path): 1 for path in paths}
    assert len(json.loads(result.stdout)["runs"]) == 3


def test_a_single_journal_over_the_budget_is_read_once(tmp_path, reads, monkeypatch):
    [path] = write_copies(str(tmp_path), 1)
    monkeypatch.setattr(cli, "KEPT_EVENTS", 1)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert reads == {os.path.basename(path): 1}
    assert read_journal(path).run_id in result.stdout


def test_a_config_error_in_the_last_input_sends_nothing_of_the_runs_before(tmp_path, reads, monkeypatch, recorders):
    """The command names a server but no database: the first journals name it
    (chaosdb's `configuration.influxdb`), the last does not. Nothing is sent, not
    even the runs over the budget read before the error was found."""
    server = recorders()
    paths = write_copies(str(tmp_path), 3)
    for path in paths[:2]:
        with open(path, encoding="utf-8") as handle:
            journal = json.load(handle)
        journal.setdefault("experiment", {})["configuration"] = {"influxdb": {"database": "theirs"}}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(journal, handle)
    monkeypatch.setattr(cli, "KEPT_EVENTS", 1)
    result = invoke(str(tmp_path), "--influx-url", server.url)
    assert result.exit_code == 4
    assert "influx.database" in result.stderr
    assert server.requests == []
    assert result.stdout == ""
    # Each journal was read once to resolve its targets, and never again.
    assert reads == {os.path.basename(path): 1 for path in paths}
