"""The InfluxDB sink against a real influxd 1.6: what is stored is read back with the `influxdb` client."""
import glob
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaosreplay.cli import replay
from chaosreplay.config import Settings
from chaosreplay.events import Event, Run, activity_id, experiment_id, mark_id
from chaosreplay.journal import read_journal
from chaosreplay.sinks.influx import InfluxTarget, influx_config
from chaosreplay.sinks.influx_line import tag_text, timestamp_ns
from tests.conftest import JOURNALS
from tests.influx_server import influx_db, influxd  # noqa: F401 (pytest fixtures)

pytestmark = pytest.mark.servers

VALID_JOURNALS = sorted(
    path for path in glob.glob(os.path.join(JOURNALS, "*.json")) if "truncated" not in path
)
T0 = datetime(2024, 5, 2, 8, 30, 0, 250000, tzinfo=timezone.utc)


def target_for(db, **options) -> InfluxTarget:
    cli = {"influx_url": db.url, "influx_database": db.name, **options}
    return InfluxTarget(influx_config(Settings(cli=cli, env={})))


def cli_replay(journal, db):
    result = CliRunner().invoke(
        replay, [journal, "--influx-url", db.url, "--influx-database", db.name], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def series_keys(run):
    """Distinct dimension sets: what the number of series must not exceed."""
    return {
        (e.run_id, e.kind, e.phase, e.activity_type, tag_text(e.name), e.status, tuple(sorted(e.tags.items())))
        for e in run.events
    }


@pytest.mark.parametrize("journal", VALID_JOURNALS, ids=os.path.basename)
def test_every_journal_gives_one_point_per_event_at_its_time_and_replays_unchanged(journal, influx_db):
    run = read_journal(journal)
    cli_replay(journal, influx_db)
    points = influx_db.points()

    assert len(points) == len(run.events)
    by_id = {point["event_id"]: point for point in points}
    for event in run.events:
        point = by_id[event.id]
        assert point["time"] == timestamp_ns(event)
        assert point["time"] // 1000 == (event.start - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        assert point["kind"] == event.kind and point["status"] == event.status
        assert (point["name"] or "") == tag_text(event.name)
        if event.end is not None:
            assert point["duration"] == pytest.approx(event.duration)
    assert influx_db.series_count() == len(series_keys(run))

    cli_replay(journal, influx_db)
    assert influx_db.points() == points


def test_background_twins_of_one_microsecond_stay_two_points(influx_db):
    twins = tuple(
        Event(id=activity_id("twins", "method", "same", i), run_id="twins", kind="activity", phase="method",
              activity_type="action", name="same", start=T0, end=T0 + timedelta(seconds=1),
              status="succeeded", fields={"background": True})
        for i in range(20)
    )
    delivery = target_for(influx_db).send(Run("twins", "test", twins))
    assert delivery.ok
    points = influx_db.points()
    assert sorted(point["event_id"] for point in points) == sorted(event.id for event in twins)
    assert influx_db.series_count() == 1


def test_batches_and_gzip_store_everything(influx_db):
    events = tuple(
        Event(id=mark_id("batched", "tick", i), run_id="batched", kind="mark", name="tick",
              start=T0 + timedelta(milliseconds=i), fields={"i": i})
        for i in range(53)
    )
    delivery = target_for(influx_db, influx_batch_size=7, influx_gzip=True).send(Run("batched", "t", events))
    assert delivery.ok and len(delivery.delivered) == 53
    assert sorted(point["i"] for point in influx_db.points()) == list(range(53))


def test_partial_write_reports_the_rejected_line_and_keeps_the_rest(influx_db):
    first = Event(id=mark_id("p1", "note", 0), run_id="p1", kind="mark", name="note", start=T0,
                  fields={"value": "text"})
    assert target_for(influx_db).send(Run("p1", "t", (first,))).ok

    good = [Event(id=mark_id("p2", "ok", i), run_id="p2", kind="mark", name="ok",
                  start=T0 + timedelta(seconds=i + 1)) for i in range(9)]
    conflicting = Event(id=mark_id("p2", "note", 0), run_id="p2", kind="mark", name="note",
                        start=T0 + timedelta(seconds=5, microseconds=1), fields={"value": 1.5})
    events = tuple(sorted(good + [conflicting], key=lambda e: e.start))
    delivery = target_for(influx_db).send(Run("p2", "t", events))

    assert delivery.failed == (conflicting.id,)
    assert sorted(delivery.delivered) == sorted(e.id for e in good)
    assert "partial write: 9 of 10 point(s) stored, 1 rejected" in delivery.error
    assert "field type conflict" in delivery.error
    assert delivery.notes and f"event {conflicting.id}" in delivery.notes[0]
    stored = {point["event_id"] for point in influx_db.points()}
    assert stored == {first.id} | {e.id for e in good}


def test_missing_database_is_one_clear_error_or_created_when_asked(influxd):
    name = f"created_{uuid.uuid4().hex[:8]}"
    event = Event(id=experiment_id("c"), run_id="c", kind="experiment", name="e", start=T0, status="completed")
    settings_ = {"influx_url": influxd.url, "influx_database": name}

    refused = InfluxTarget(influx_config(Settings(cli=settings_, env={}))).send(Run("c", "t", (event,)))
    assert refused.failed == (event.id,)
    assert refused.error == f'write: HTTP 404 database not found: "{name}" (use --influx-create-database)'

    creating = InfluxTarget(influx_config(Settings(cli={**settings_, "influx_create_database": True}, env={})))
    assert creating.send(Run("c", "t", (event,))).ok
    assert creating.send(Run("c", "t", (event,))).ok


OWN_COLUMNS = {"run_id", "experiment", "kind", "phase", "activity_type", "name", "status",
               "event_id", "text", "duration", "end_ms", "error", "note"}
# Surrogates cannot be encoded in UTF-8: no journal can hold them.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
KEYS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda key: tag_text(key).strip() and tag_text(key) not in ("time", "time_")
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=TEXT, title=TEXT, error=TEXT, tag_key=KEYS, tag_value=TEXT, note=TEXT)
def test_any_text_round_trips_through_influxdb(influx_db, name, title, error, tag_key, tag_value, note):
    run_id = uuid.uuid4().hex
    experiment = Event(id=experiment_id(run_id), run_id=run_id, kind="experiment", name=title, start=T0,
                       status="completed")
    failed = Event(id=activity_id(run_id, "method", name, 0), run_id=run_id, kind="activity", phase="method",
                   activity_type="action", name=name, start=T0 + timedelta(seconds=1), status="failed",
                   end=T0 + timedelta(seconds=2), tags={tag_key: tag_value}, fields={"error": error})
    mark = Event(id=mark_id(run_id, name, 0), run_id=run_id, kind="mark", name=name,
                 start=T0 + timedelta(seconds=3), fields={"note": note})
    assert target_for(influx_db).send(Run(run_id, "prop", (experiment, failed, mark))).ok

    result = influx_db.client.query(
        f"SELECT * FROM chaostoolkit_events WHERE run_id = '{run_id}'", epoch="ns"
    )
    points = {point["event_id"]: point for point in result.get_points()}
    assert len(points) == 3
    assert (points[failed.id].get("name") or "") == tag_text(name)
    assert (points[failed.id].get("experiment") or "") == tag_text(title)
    assert points[failed.id]["error"] == error
    assert points[mark.id]["note"] == note
    key = tag_text(tag_key)
    if key in OWN_COLUMNS:
        return  # a user tag named like one of our dimensions or fields: ours wins, by design
    assert (points[failed.id].get(key) or "") == tag_text(tag_value)
