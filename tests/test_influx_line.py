"""The line protocol serializer alone: structure, escaping, types, timestamps."""
import math
from datetime import datetime, timedelta, timezone

import pytest

from chaosreplay.events import Event, Run, activity_id, experiment_id, mark_id
from chaosreplay.sinks.influx_line import (
    DEFAULT_MEASUREMENT,
    measurement_problem,
    run_lines,
    tag_text,
    timestamp_ns,
)

RUN_ID = "run0001"
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def activity(name="probe-a", ordinal=0, start=T0, seconds=1.5, **changes):
    values = dict(
        id=activity_id(RUN_ID, "method", name, ordinal), run_id=RUN_ID, kind="activity",
        phase="method", activity_type="probe", name=name, start=start,
        end=start + timedelta(seconds=seconds) if seconds is not None else None,
        status="succeeded", fields={"provider": "python"},
    )
    values.update(changes)
    return Event(**values)


def event_line(event, title):
    """The line `run_lines` writes for `event` in a run of the experiment `title` ("": a run without one)."""
    experiment = Event(id=experiment_id(RUN_ID), run_id=RUN_ID, kind="experiment", name=title, start=T0,
                       status="completed")
    others = () if event.kind == "experiment" or not title else (experiment,)
    [line] = [line.line for line in run_lines(Run(RUN_ID, "j.json", (*others, event))) if line.event_id == event.id]
    return line


def split_line(line):
    """(series key, field set, timestamp), honouring escapes and quoted strings."""
    parts, current, quoted, escaped = [], "", False, False
    for char in line:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == '"':
            current, quoted = current + char, not quoted
        elif char == " " and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def test_a_line_has_series_fields_and_a_nanosecond_timestamp():
    event = activity()
    series, fields, timestamp = split_line(event_line(event, "My experiment"))
    assert series.startswith(DEFAULT_MEASUREMENT + ",")
    assert "name=probe-a" in series and "kind=activity" in series and "phase=method" in series
    assert "experiment=My\\ experiment" in series and f"run_id={RUN_ID}" in series
    assert "duration=1.5" in fields and f'event_id="{event.id}"' in fields
    assert 'provider="python"' in fields
    expected_ms = int((event.end - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 1000)
    assert f"end_ms={expected_ms}i" in fields
    start_us = int((T0 - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))
    assert int(timestamp) // 1000 == start_us


def test_tags_are_sorted_and_user_tags_cannot_override_dimensions():
    event = activity(tags={"team": "sre", "kind": "forged", "zone": "eu"})
    series = split_line(event_line(event, "t"))[0]
    keys = [pair.split("=", 1)[0] for pair in series.split(",")[1:]]
    assert keys == sorted(keys)
    assert "kind=activity" in series and "forged" not in series
    assert "team=sre" in series and "zone=eu" in series


@pytest.mark.parametrize("name", [
    "a,b", "a b", "a=b", "line\nbreak", 'quote"d', "trailing\\", "back\\slash", "x\\,y", "☃ é 😀",
])
def test_no_name_can_break_the_line_or_add_a_point(name):
    line = event_line(activity(name=name), name)
    assert "\n" not in line
    assert len(split_line(line)) == 3


def test_outputs_and_texts_never_become_tags():
    event = activity(status="failed", fields={"error": "boom, it=failed\nbadly", "provider": "http"})
    series, fields, _ = split_line(event_line(event, "t"))
    assert "boom" not in series
    assert 'error="boom, it=failed\nbadly"' in fields


def test_string_fields_escape_quotes_and_backslashes():
    event = activity(fields={"error": 'say "hi" \\ bye\\'})
    fields = split_line(event_line(event, "t"))[1]
    assert 'error="say \\"hi\\" \\\\ bye\\\\"' in fields


def test_field_types_are_stable():
    experiment = Event(
        id=experiment_id(RUN_ID), run_id=RUN_ID, kind="experiment", name="e", start=T0,
        end=T0 + timedelta(seconds=2), status="completed",
        fields={"deviated": True, "activities": 3, "failed_activities": 0,
                "steady_state_before_met": None},
    )
    fields = split_line(event_line(experiment, "e"))[1]
    assert "deviated=true" in fields and "activities=3i" in fields and "failed_activities=0i" in fields
    assert "steady_state_before_met" not in fields  # None: absent, not a string "None"
    assert "duration=2.0" in fields


def test_mark_numbers_are_floats_and_nan_or_infinity_are_left_out():
    mark = Event(id=mark_id(RUN_ID, "m", 0), run_id=RUN_ID, kind="mark", name="m", start=T0,
                 fields={"count": 3, "ratio": math.nan, "big": math.inf, "time": "x", "obj": {"a": [1]}})
    fields = split_line(event_line(mark, "e"))[1]
    assert "count=3.0" in fields
    assert "ratio" not in fields and "big" not in fields
    assert 'time_="x"' in fields  # InfluxDB rejects a field named `time`
    assert 'obj="{\\"a\\": [1]}"' in fields


def test_empty_tag_values_are_left_out_and_time_keys_renamed():
    event = activity(name="", tags={"time": "noon", "empty": ""})
    series = split_line(event_line(event, ""))[0]
    assert ",name=" not in series and ",experiment=" not in series and "empty" not in series
    assert "time_=noon" in series


def test_tag_text_keeps_what_influxdb_can_store():
    assert tag_text("a\\b ☃") == "a\\b ☃"
    assert tag_text("end\\") == "end/"
    assert tag_text("x\\\\,y") == "x//,y"
    assert tag_text("two\nlines") == "two lines"


def test_measurement_names_influxdb_cannot_take_are_refused():
    assert measurement_problem("chaos events") is None
    for bad in ("", "#comment", "a\nb", "end\\"):
        assert measurement_problem(bad)


def test_same_event_same_line_and_events_of_one_microsecond_stay_distinct():
    twins = [activity(ordinal=i, fields={"background": True}) for i in range(50)]
    run = Run(RUN_ID, "test", tuple(twins))
    lines = run_lines(run)
    assert [line.line for line in lines] == [line.line for line in run_lines(run)]
    points = {(split_line(line.line)[0], split_line(line.line)[2]) for line in lines}
    assert len(points) == 50
    start_us = timestamp_ns(twins[0]) // 1000
    assert all(int(split_line(line.line)[2]) // 1000 == start_us for line in lines)


@pytest.mark.parametrize("arrival", ["start order", "interleaved"])
def test_events_of_one_microsecond_stay_distinct_in_any_order(arrival):
    """A journal's run comes in start order; a live batch in the order things happened, where
    events of one microsecond can come apart, others between them."""
    twins = [activity(ordinal=i, fields={"background": True}) for i in range(50)]
    later = [activity(name="later", ordinal=i, start=T0 + timedelta(microseconds=1), fields={"background": True})
             for i in range(50)]
    events = twins + later if arrival == "start order" else [e for pair in zip(twins, later) for e in pair]
    lines = run_lines(Run(RUN_ID, "test", tuple(events)))
    points = {(split_line(line.line)[0], split_line(line.line)[2]) for line in lines}
    assert len(points) == 100


def test_timestamp_does_not_depend_on_the_other_events_sent():
    events = [activity(name=f"a{i}", ordinal=0, start=T0 + timedelta(seconds=i)) for i in range(5)]
    whole = {line.event_id: line.line for line in run_lines(Run(RUN_ID, "t", tuple(events)))}
    for event in events:
        [alone] = run_lines(Run(RUN_ID, "t", (event,)))
        # The experiment tag comes from the run's experiment event: both runs lack one here.
        assert alone.line == whole[event.id]
