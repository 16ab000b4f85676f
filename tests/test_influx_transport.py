"""The transport's exchanges with InfluxDB 1.6, replayed from cassettes recorded on a real influxd.

Requests must match the recording exactly (method, path, query, body), so a
change in what we send fails here. A missing cassette is recorded from a real
influxd started for it; under CI=true nothing is ever recorded.
"""
import gzip
import os
from datetime import datetime, timedelta, timezone

import pytest
import vcr
from influxdb import InfluxDBClient

from chaosreplay.config import Settings
from chaosreplay.events import Event, Run, mark_id
from chaosreplay.journal import read_journal
from chaosreplay.sinks.influx import InfluxTarget, influx_config
from chaosreplay.sinks.influx_line import run_lines
from tests.conftest import JOURNALS
from tests.influx_server import influxd  # noqa: F401 (pytest fixture)
from tests.procs import IN_CI

CASSETTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cassettes", "influx")
DATABASE = "cassette"
# Host and port are not matched: any address replays, the recording server's port changes.
PLAYBACK_URL = "http://127.0.0.1:8086"
RECORDER = vcr.VCR(
    cassette_library_dir=CASSETTES,
    record_mode="none" if IN_CI else "once",
    match_on=["method", "path", "query", "body"],
    decode_compressed_response=True,
)
T0 = datetime(2023, 11, 14, 9, 0, 0, 500000, tzinfo=timezone.utc)


@pytest.fixture
def server_url(request):
    """Returns the URL to send to: when recording, a real influxd whose `cassette` database
    exists or not as asked; when replaying, any address."""

    def url(database_exists: bool = True) -> str:
        cassette = os.path.join(CASSETTES, request.node.name + ".yaml")
        if os.path.exists(cassette):
            return PLAYBACK_URL
        if IN_CI:
            pytest.fail(f"missing cassette {cassette}: record it locally", pytrace=False)
        server = request.getfixturevalue("influxd")
        client = InfluxDBClient(host="127.0.0.1", port=int(server.url.rsplit(":", 1)[1]))
        client.drop_database(DATABASE)
        if database_exists:
            client.create_database(DATABASE)
        client.close()
        return server.url

    return url


def target(url, **options) -> InfluxTarget:
    return InfluxTarget(influx_config(Settings(cli={"influx_url": url, "influx_database": DATABASE, **options},
                                               env={})))


def use_cassette(request):
    return RECORDER.use_cassette(request.node.name + ".yaml")


def assert_all_replayed(cassette):
    """When replaying, every recorded exchange took place: nothing we used to send was skipped."""
    assert not cassette.rewound or cassette.all_played


def test_batches_of_a_journal(server_url, request):
    run = read_journal(os.path.join(JOURNALS, "marzouk-1.8.1-completed-rollbacks.json"))
    url = server_url()
    with use_cassette(request) as cassette:
        delivery = target(url, influx_batch_size=5).send(run)
    assert delivery.ok and list(delivery.delivered) == [event.id for event in run.events]
    assert_all_replayed(cassette)
    assert [len(r.body.split(b"\n")) for r in cassette.requests] == [5, 5, 2]


def test_gzip_bodies_are_byte_for_byte_reproducible(server_url, request):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    url = server_url()
    with use_cassette(request) as cassette:
        delivery = target(url, influx_gzip=True).send(run)
    assert delivery.ok and len(delivery.delivered) == len(run.events)
    assert_all_replayed(cassette)
    [write] = cassette.requests
    assert write.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(write.body).decode() == "\n".join(line.line for line in run_lines(run))


def test_create_database_then_write(server_url, request):
    run = read_journal(os.path.join(JOURNALS, "ngt-1.15.1-before-ssh-failed.json"))
    url = server_url(database_exists=False)
    with use_cassette(request) as cassette:
        delivery = target(url, influx_create_database=True).send(run)
    assert delivery.ok
    assert_all_replayed(cassette)
    assert [(r.method, r.path) for r in cassette.requests] == [("POST", "/query"), ("POST", "/write")]


def test_missing_database_is_a_clear_error(server_url, request):
    run = read_journal(os.path.join(JOURNALS, "ngt-1.15.1-before-ssh-failed.json"))
    url = server_url(database_exists=False)
    with use_cassette(request) as cassette:
        delivery = target(url).send(run)
    assert_all_replayed(cassette)
    assert delivery.error == f'write: HTTP 404 database not found: "{DATABASE}" (use --influx-create-database)'
    assert delivery.failed == tuple(event.id for event in run.events)


def test_type_conflict_is_narrowed_to_its_line(server_url, request):
    def mark(run_id, name, second, value):
        return Event(id=mark_id(run_id, name, 0), run_id=run_id, kind="mark", name=name,
                     start=T0 + timedelta(seconds=second), fields={"value": value})

    earlier = Run("r1", "t", (mark("r1", "first", 0, "text"),))
    later = Run("r2", "t", tuple(mark("r2", f"m{i}", i, "ok") for i in range(1, 4))
                + (mark("r2", "conflict", 4, 2.5),)
                + tuple(mark("r2", f"n{i}", i, "ok") for i in range(5, 8)))
    url = server_url()
    with use_cassette(request) as cassette:
        sink = target(url)
        assert sink.send(earlier).ok
        delivery = sink.send(later)
    assert_all_replayed(cassette)
    assert delivery.failed == (later.events[3].id,)
    assert len(delivery.delivered) == 6
    assert delivery.error.startswith("partial write: 6 of 7 point(s) stored, 1 rejected (first: line 4: partial write: field type conflict")
