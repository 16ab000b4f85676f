"""One run, one truth: a run stores the same points and series whatever it is read from.

A real `chaos run` with the recorder (carrying user tags) and a live InfluxDB
control, then replays of its journal and of its side file, against a real
influxd and a real Prometheus (remote write): every source must address the
same points and series, so nothing is ever stored twice.
"""
import os

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal, read_side_file
from chaosreplay.sinks.prometheus_series import RUN_ID_LABEL
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixtures)
from tests.influx_server import influx_db, influxd, stored_events  # noqa: F401 (fixtures)
from tests.prometheus_servers import Prometheus, start_prometheus
from tests.test_live_controls import chaos_run, experiment

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

RECORDER_TAGS = {"team": "sre"}


def _recorded_run(tmp_path, influx=None, side_file="run.events.jsonl", title="live e2e", name="tagged"):
    """A real `chaos run` with the recorder's tags (and a live InfluxDB control when `influx`
    is (url, database)), its side file `side_file` in `tmp_path` (None: the recorder's default
    name there); (journal path, side file path)."""
    arguments = {"tags": RECORDER_TAGS}
    if side_file:
        arguments["events_path"] = str(tmp_path / side_file)
    controls = [{"name": "chaostoolkit-replay", "provider": {
        "type": "python", "module": "chaosreplay.controls.recorder", "arguments": arguments}}]
    if influx:
        url, database = influx
        controls.append({"name": "influx", "provider": {
            "type": "python", "module": "chaosreplay.controls.influx",
            "arguments": {"url": url, "database": database}}})
    completed, _, journal_path = chaos_run(tmp_path, name, experiment(controls, title=title))
    assert completed.returncode == 0, completed.stderr[-3000:]
    if side_file is None:
        [side_file] = [found for found in os.listdir(tmp_path) if found.endswith(".events.jsonl")]
    return journal_path, str(tmp_path / side_file)


def _replay(*arguments):
    result = CliRunner().invoke(replay, [*map(str, arguments)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_live_run_then_journal_then_side_file_store_one_point_per_event(tmp_path, influx_db):
    journal_path, side_file = _recorded_run(tmp_path, influx=(influx_db.url, influx_db.name))
    events = read_journal(journal_path).events
    assert all(event.tags.get("team") == "sre" for event in events), "the journal's events carry the tags"
    assert stored_events(influx_db.url, influx_db.name) == len(events), "live delivery: one point per event"

    for source in (journal_path, side_file):
        _replay(source, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
        assert stored_events(influx_db.url, influx_db.name) == len(events), f"{source} added points"
    assert {point["team"] for point in influx_db.points()} == {"sre"}


def test_side_file_then_its_journal_add_no_point(tmp_path, influx_db):
    journal_path, side_file = _recorded_run(tmp_path)
    assert read_side_file(side_file).events == read_journal(journal_path).events
    _replay(side_file, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
    stored = stored_events(influx_db.url, influx_db.name)
    _replay(journal_path, "--influx-url", influx_db.url, "--influx-database", influx_db.name)
    assert stored_events(influx_db.url, influx_db.name) == stored == len(read_journal(journal_path).events)
    assert influx_db.series_count() == len({(p["kind"], p["phase"], p["name"], p["status"])
                                            for p in influx_db.points()})


@pytest.fixture
def receiver(tmp_path_factory):
    server = start_prometheus(str(tmp_path_factory.mktemp("prometheus-rw")))
    yield Prometheus(server)
    server.stop()


def test_remote_write_of_side_file_and_journal_is_one_series_per_run(tmp_path, receiver):
    journal_path, side_file = _recorded_run(tmp_path)
    run = read_journal(journal_path)
    for source in (side_file, journal_path):
        _replay(source, "--prometheus-remote-write", f"{receiver.url}/api/v1/write")
    at = run.experiment.end.timestamp()
    found = receiver.wait_for(
        f'chaostoolkit_experiment_start_timestamp_seconds{{{RUN_ID_LABEL}="{run.run_id}"}}',
        lambda result: len(result) >= 1, at=at)
    assert len(found) == 1, [series["metric"] for series in found]
    assert found[0]["metric"]["team"] == "sre"


def test_replaying_to_grafana_with_flags_keeps_the_tags_the_journal_configured(tmp_path, grafana, monkeypatch):
    # chaosdb's way: the server and its tags in `configuration.grafana`, the token from the
    # environment through the experiment's secrets (the environment alone goes only to GRAFANA_URL).
    port = int(grafana.url.rsplit(":", 1)[1])
    document = experiment([{"name": "grafana", "provider": {"type": "python", "module": "chaosreplay.controls.grafana"}}])
    document["configuration"] = {"grafana": {"host": "127.0.0.1", "port": port, "protocol": "http", "tags": ["web"]}}
    document["secrets"] = {"grafana": {"grafana_token": {"type": "env", "key": "GRAFANA_TOKEN"}}}
    monkeypatch.setenv("GRAFANA_TOKEN", EDITOR_TOKEN)
    completed, _, journal_path = chaos_run(tmp_path, "grafana-tags", document)
    assert completed.returncode == 0, completed.stderr[-3000:]
    live = {annotation.id: sorted(annotation.tags) for annotation in grafana.annotations.values()}
    assert live and all("web" in tags for tags in live.values())
    sent = grafana.count()

    _replay(journal_path, "--grafana-url", grafana.url, "--grafana-token", EDITOR_TOKEN)
    assert {annotation.id: sorted(annotation.tags) for annotation in grafana.annotations.values()} == live
    assert [request.method for request in grafana.requests[sent:]] == ["GET"], "no PATCH, no POST"


def test_a_shifted_replay_is_its_own_run_next_to_the_original(influx_db):
    journal = os.path.join(JOURNALS, "generated-continuous.json")
    events = len(read_journal(journal).events)
    target = ["--influx-url", influx_db.url, "--influx-database", influx_db.name]
    _replay(journal, *target)
    for _ in range(2):  # the same shift twice is the same shifted run
        _replay(journal, "--shift-to", "2030-01-02T03:04:05Z", *target)
    counted = influx_db.client.query('SELECT count("event_id") FROM "chaostoolkit_events" GROUP BY "run_id"')
    per_run = {tags["run_id"]: next(points)["count"] for (_, tags), points in counted.items()}
    assert sorted(per_run.values()) == [events, events], per_run
    assert read_journal(journal).run_id in per_run
