"""The Event contract every reader and sink relies on: checked, immutable, comparable."""
from datetime import datetime, timedelta, timezone

import pytest

from chaosreplay.events import ACTIVITY, Event, activity_id, experiment_id, phase_id, run_id_for

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _event(**changes) -> Event:
    values = dict(id="e1", run_id="r1", kind=ACTIVITY, name="probe-a", start=START,
                  end=START + timedelta(seconds=2), status="succeeded", phase="method",
                  activity_type="probe", fields={"provider": "http"})
    values.update(changes)
    return Event(**values)


def test_attributes_cannot_be_set_nor_mappings_changed():
    event = _event(tags={"team": "sre"})
    with pytest.raises(AttributeError):
        event.name = "other"
    with pytest.raises(TypeError):
        event.fields["provider"] = "python"
    with pytest.raises(TypeError):
        event.tags["team"] = "dev"


def test_the_callers_mappings_are_copied():
    fields, tags = {"provider": "http"}, {"team": "sre"}
    event = _event(fields=fields, tags=tags)
    fields["provider"] = "python"
    tags["team"] = "dev"
    assert event.fields["provider"] == "http"
    assert event.tags["team"] == "sre"


@pytest.mark.parametrize("changes, message", [
    ({"kind": "step"}, "unknown event kind 'step'"),
    ({"start": START.replace(tzinfo=None)}, "start must be timezone-aware"),
    ({"end": START.replace(tzinfo=None)}, "end must be timezone-aware"),
])
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        _event(**changes)


def test_evolve_checks_and_freezes_like_the_constructor():
    event = _event()
    moved = event.evolve(end=None, status="unknown", fields={"background": True})
    assert (moved.end, moved.status, dict(moved.fields)) == (None, "unknown", {"background": True})
    assert moved.duration is None
    with pytest.raises(TypeError):
        moved.fields["background"] = False
    with pytest.raises(ValueError, match="unknown event kind"):
        event.evolve(kind="step")
    with pytest.raises(TypeError):
        event.evolve(colour="red")
    assert event.end == START + timedelta(seconds=2)


def test_equal_values_make_equal_events():
    event = _event(id=activity_id("r1", "method", "probe-a", 0))
    assert event == _event(id=activity_id("r1", "method", "probe-a", 0))
    assert event != _event(id=activity_id("r1", "method", "probe-a", 1))
    assert event != event.evolve(fields={"provider": "python"})


def test_duration_and_json_form():
    event = _event(end=START + timedelta(seconds=2, microseconds=500))
    assert event.duration == 2.0005
    document = event.to_dict()
    assert document["start"] == "2024-05-01T12:00:00.000000+00:00"
    assert Event.from_dict(document) == event


def test_ids_never_change_between_versions():
    """Points and annotations already sent are addressed by these ids: a new version that
    computed them differently would duplicate every run replayed again."""
    assert run_id_for("t", "2024-05-01T12:00:00", "node") == "56c5f6250afe389d"
    assert experiment_id("0123456789abcdef") == "d9d9c6e552bb9080"
    assert phase_id("0123456789abcdef", "during", 2) == "60f5d50c2b9a34eb"
    assert activity_id("0123456789abcdef", "method", "probe-a", 3) == "f2de9fc1151475c8"
    assert activity_id("0123456789abcdef", "before", "é x", 0) == "2db15105a3304cec"


def test_type_or_kind_names_an_activity_by_its_type_and_anything_else_by_its_kind():
    assert _event().type_or_kind == "probe"
    assert _event(activity_type=None).type_or_kind == "activity"
    assert _event(kind="mark", activity_type=None).type_or_kind == "mark"
    assert _event(kind="experiment", activity_type="probe").type_or_kind == "experiment"


def test_one_millisecond_rule_for_influx_grafana_and_prometheus():
    """An end 0.6 ms into a millisecond is that millisecond everywhere (truncated), never
    the next one in one sink and this one in another."""
    from chaosreplay.events import EXPERIMENT, Run, epoch_ms
    from chaosreplay.sinks.grafana_annotations import event_annotation
    from chaosreplay.sinks.influx_line import run_lines
    from chaosreplay.sinks.prometheus_series import run_families

    end = START + timedelta(seconds=3, microseconds=1_600)
    experiment = _event(id=experiment_id("r1"), kind=EXPERIMENT, name="ms", phase=None, activity_type=None,
                        end=end, status="completed", fields={})
    run = Run("r1", "ms.json", (experiment,))
    expected = epoch_ms(START) + 3_001
    assert epoch_ms(end) == expected
    assert f"end_ms={expected}i" in run_lines(run)[0].line
    assert event_annotation(experiment, "ms").time_end == expected
    [ended] = [family for family in run_families(run)
               if family.name == "chaostoolkit_experiment_end_timestamp_seconds"]
    assert [value for series in ended.series for _, value in series.points] == [expected / 1000]
