"""Live delivery against a real influxd that goes down, comes back, hangs: counts read on the server."""
import json
import logging
import os
import time

import pytest
from click.testing import CliRunner
from influxdb import InfluxDBClient

from chaosreplay.controls.live import LiveShipping
from chaosreplay.cli import replay
from chaosreplay.journal import EXTENSION_NAME, read_journal
from tests.blackhole import Blackhole, Refusing
from tests.conftest import JOURNALS
from tests.influx_server import INFLUXD_CONFIG
from tests.procs import free_port, require_binary, start_server

pytestmark = pytest.mark.servers

JOURNAL = os.path.join(JOURNALS, "generated-continuous.json")
DATABASE = "live"
# Short backoff so retries happen within the test; several so a restart fits in them.
RETRYING = {"backoff": 0.1, "backoff_max": 0.5, "retries": 20}


class RestartableInfluxd:
    """An influxd that can be stopped and started again on the same port, keeping its data."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config_path = os.path.join(workdir, "influxd.conf")
        with open(config_path, "w", encoding="utf-8") as handle:
            handle.write(INFLUXD_CONFIG.format(workdir=workdir, port=port, rpc_port=free_port()))
        self.argv = [require_binary("influxd", "influxdb"), "run", "-config", config_path]
        self.server = None

    def start(self) -> None:
        self.server = start_server("influxd", self.argv, f"{self.url}/ping", self.url, workdir=self.workdir)

    def stop(self) -> None:
        self.server.process.terminate()
        self.server.process.wait(timeout=10)

    def points(self):
        port = int(self.url.rsplit(":", 1)[1])
        client = InfluxDBClient(host="127.0.0.1", port=port, database=DATABASE, timeout=10)
        try:
            client.create_database(DATABASE)
            return list(client.query('SELECT * FROM "chaostoolkit_events"').get_points())
        finally:
            client.close()

    def remove(self) -> None:
        if self.server:
            self.server.stop()


@pytest.fixture
def influxd(tmp_path):
    server = RestartableInfluxd(str(tmp_path))
    server.start()
    yield server
    server.remove()


def shipping(url, **options):
    section = {"url": url, "database": DATABASE, "create_database": True}
    return LiveShipping({"influx": section}, {**RETRYING, **options}, name="test")


def journal_with_deliveries(tmp_path, record):
    """The fixture journal as the recorder would leave it: the delivery record in our extension."""
    with open(JOURNAL, encoding="utf-8") as handle:
        journal = json.load(handle)
    journal.setdefault("extensions", []).append({"name": EXTENSION_NAME, **record})
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    return str(path)


def replay_only_undelivered(journal, url):
    return CliRunner().invoke(
        replay, [journal, "--only-undelivered", "--influx-url", url, "--influx-database", DATABASE],
        catch_exceptions=False,
    )


def test_healthy_server_gets_every_event_once_and_nothing_is_said(influxd, caplog):
    run = read_journal(JOURNAL)
    live = shipping(influxd.url)
    for event in run.events:
        live.offer(event)
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        record = live.finish({})
    assert [r.message for r in caplog.records] == []
    [(label, entry)] = record["deliveries"].items()
    assert entry == {"delivered": len(run.events), "undelivered": [], "last_error": None}
    points = influxd.points()
    assert sorted(p["event_id"] for p in points) == sorted(e.id for e in run.events)


def test_server_restarted_mid_run_gets_everything_without_duplicates(influxd):
    run = read_journal(JOURNAL)
    half = len(run.events) // 2
    live = shipping(influxd.url)
    for event in run.events[:half]:
        live.offer(event)
    influxd.stop()
    for event in run.events[half:]:
        live.offer(event)
    time.sleep(0.5)
    influxd.start()
    deadline = time.monotonic() + 20
    while len(influxd.points()) < len(run.events) and time.monotonic() < deadline:
        time.sleep(0.1)
    record = live.finish({})["deliveries"]
    assert [entry["undelivered"] for entry in record.values()] == [[]]
    points = influxd.points()
    assert len(points) == len(run.events)
    assert sorted(p["event_id"] for p in points) == sorted(e.id for e in run.events)


def test_down_for_part_of_the_run_then_only_undelivered_sends_the_rest_once(influxd, tmp_path, caplog):
    run = read_journal(JOURNAL)
    half = len(run.events) // 2
    live = shipping(influxd.url)
    for event in run.events[:half]:
        live.offer(event)
    # Wait for influxd's answers, not only for its points: stopping it between storing a batch
    # and answering 204 would leave that batch undelivered, and the counts below off.
    deadline = time.monotonic() + 10
    while live.engine.reports_so_far()[0].delivered < half and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(influxd.points()) == half
    influxd.stop()
    for event in run.events[half:]:
        live.offer(event)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        record = live.finish({})
    assert time.monotonic() - started < 1.0
    [entry] = record["deliveries"].values()
    assert entry["delivered"] == half
    assert len(entry["undelivered"]) == len(run.events) - half
    [warning] = [r.message for r in caplog.records]
    assert f"{len(run.events) - half} of {len(run.events)} event(s) not delivered" in warning
    assert "Connection refused" in warning and "--only-undelivered" in warning

    influxd.start()
    result = replay_only_undelivered(journal_with_deliveries(tmp_path, record), influxd.url)
    assert result.exit_code == 0, result.output
    # The experiment event goes along for the run's title; rewriting its point is harmless.
    resent = set(entry["undelivered"]) | {run.experiment.id}
    assert f"delivered {len(resent)} event(s)" in result.output
    points = influxd.points()
    assert len(points) == len(run.events)
    assert sorted(p["event_id"] for p in points) == sorted(e.id for e in run.events)


def test_refused_for_the_whole_run_costs_no_time_and_is_all_recorded(tmp_path):
    run = read_journal(JOURNAL)
    with Refusing() as down:
        live = shipping(down.url)
        for event in run.events:
            live.offer(event)
        started = time.monotonic()
        record = live.finish({})["deliveries"]
    assert time.monotonic() - started < 1.0
    [entry] = record.values()
    assert sorted(entry["undelivered"]) == sorted(e.id for e in run.events)


def test_blackholed_server_costs_at_most_the_drain_deadline():
    run = read_journal(JOURNAL)
    with Blackhole() as hole:
        live = shipping(hole.url, drain_timeout=1.0)
        for event in run.events:
            live.offer(event)
        started = time.monotonic()
        record = live.finish({})["deliveries"]
        elapsed = time.monotonic() - started
        assert hole.connections >= 1
    assert elapsed < 1.5
    [entry] = record.values()
    assert len(entry["undelivered"]) == len(run.events)
