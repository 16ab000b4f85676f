"""The Events -> Prometheus series model and its text encoders, on every bundled journal."""
import glob
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from chaosreplay.delivery import LiveBatch
from chaosreplay.events import Event, Run, activity_id, experiment_id
from chaosreplay.journal import read_journal
from chaosreplay.sinks.prometheus_series import (
    EXPERIMENT_REF_LABEL,
    RUN_ID_LABEL,
    experiment_ref_for,
    merge_families,
    openmetrics_text,
    run_families,
    text_exposition,
)
from tests.conftest import JOURNALS

VALID_JOURNALS = [path for path in sorted(glob.glob(os.path.join(JOURNALS, "*.json")))
                  if "truncated" not in path]


def _series(families, name):
    return [series for family in families if family.name == name for series in family.series]


def _ms(moment):
    """Epoch ms truncated (the one millisecond rule), computed apart from the sink."""
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


@pytest.mark.parametrize("path", VALID_JOURNALS, ids=os.path.basename)
def test_every_activity_and_the_run_summary_are_series_at_their_true_times(path):
    run = read_journal(path)
    families = run_families(run)
    activities = [event for event in run.events if event.kind == "activity"]

    for series in (s for family in families for s in family.series):
        labels = dict(series.labels)
        assert labels[RUN_ID_LABEL] == run.run_id
        assert labels[EXPERIMENT_REF_LABEL] == experiment_ref_for(run.title)
        assert [t for t, _ in series.points] == sorted(t for t, _ in series.points)

    durations = {s.event_id: s.points for s in _series(families, "chaostoolkit_activity_duration_seconds")}
    for event in activities:
        if event.end is not None:
            assert durations[event.id] == ((_ms(event.end), event.duration),)
    statuses = _series(families, "chaostoolkit_activity_status")
    assert sorted(s.event_id for s in statuses) == sorted(e.id for e in activities)
    for series in statuses:
        event = next(e for e in activities if e.id == series.event_id)
        assert dict(series.labels)["status"] == event.status

    counts = _series(families, "chaostoolkit_experiment_activities")
    assert sum(value for s in counts for _, value in s.points) == len(activities)

    experiment = run.experiment
    status = {dict(s.labels)["status"]: s.points[-1] for s in _series(families, "chaostoolkit_experiment_status")}
    assert status[experiment.status] == (_ms(experiment.end), 1.0)
    assert sum(value for _, value in status.values()) == 1
    in_progress = _series(families, "chaostoolkit_experiment_in_progress")[0].points
    assert in_progress[0] == (_ms(experiment.start), 1.0 if experiment.end > experiment.start else 0.0)
    assert in_progress[-1] == (_ms(experiment.end), 0.0)


@pytest.mark.parametrize("path", VALID_JOURNALS, ids=os.path.basename)
def test_free_text_never_becomes_a_label(path):
    run = read_journal(path)
    errors = {str(event.fields["error"]) for event in run.events if event.fields.get("error")}
    for family in run_families(run):
        for series in family.series:
            assert not errors & {value for _, value in series.labels}


def test_a_replay_yields_the_same_series_and_values():
    path = os.path.join(JOURNALS, "generated-continuous.json")
    first, second = run_families(read_journal(path)), run_families(read_journal(path))
    assert openmetrics_text(first) == openmetrics_text(second)
    assert text_exposition(first) == text_exposition(second)


def test_repeated_activity_names_get_distinct_series():
    run = read_journal(os.path.join(JOURNALS, "generated-continuous.json"))
    durations = _series(run_families(run), "chaostoolkit_activity_duration_seconds")
    assert len({series.labels for series in durations}) == len(durations)
    names = [dict(s.labels)["activity"] for s in durations]
    assert len(set(names)) < len(names)


def _event(run_id, kind, name, start, end=None, **extra):
    ids = {"experiment": experiment_id(run_id), "activity": activity_id(run_id, "method", name, 0)}
    return Event(id=ids[kind], run_id=run_id, kind=kind, name=name, start=start, end=end, **extra)


def test_a_live_run_is_in_progress_until_its_experiment_ends():
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    action = _event("r1", "activity", "kill pod", start, start + timedelta(seconds=90), status="succeeded",
                    phase="method", activity_type="action", fields={"duration": 90.0})
    going_on = LiveBatch("r1", "live", (action,), title="my experiment")
    families = run_families(going_on, in_progress=True)
    assert _series(families, "chaostoolkit_experiment_in_progress")[0].points[-1][1] == 1.0
    assert not _series(families, "chaostoolkit_experiment_status")
    assert dict(_series(families, "chaostoolkit_activity_duration_seconds")[0].labels)[
        "chaostoolkit_experiment_title"] == "my experiment"

    # A run cut short and replayed later is not "in progress" for ever.
    replayed = run_families(Run("r1", "side.jsonl", (action,)))
    assert _series(replayed, "chaostoolkit_experiment_in_progress")[0].points[-1][1] == 0.0
    status = {dict(s.labels)["status"]: s.points[0][1] for s in _series(replayed, "chaostoolkit_experiment_status")}
    assert status["unknown"] == 1.0


def test_a_long_run_is_sampled_in_progress_at_least_every_five_minutes():
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    experiment = _event("r2", "experiment", "soak", start, start + timedelta(hours=3), status="completed")
    points = _series(run_families(Run("r2", "j.json", (experiment,))), "chaostoolkit_experiment_in_progress")[0].points
    gaps = [later - earlier for (earlier, _), (later, _) in zip(points, points[1:])]
    assert max(gaps) <= 5 * 60 * 1000
    assert [value for _, value in points[:-1]] == [1.0] * (len(points) - 1)


def test_user_tags_become_valid_labels_without_overriding_ours():
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    experiment = _event("r3", "experiment", "tagged", start, start + timedelta(seconds=1), status="completed",
                        tags={"team": "sre", "env-name": "prod", "9lives": "x", "status": "bogus",
                              "chaostoolkit_run_trace_id": "forged"})
    labels = dict(run_families(Run("r3", "j.json", (experiment,)))[0].series[0].labels)
    assert labels["team"] == "sre" and labels["env_name"] == "prod" and labels["_9lives"] == "x"
    assert labels[RUN_ID_LABEL] == "r3" and "status" not in labels


def test_label_values_and_help_are_escaped_in_both_formats():
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    title = 'say "hi"\\ \nbye'
    experiment = _event("r4", "experiment", title, start, start + timedelta(seconds=1), status="completed")
    families = run_families(Run("r4", "j.json", (experiment,)))
    for text in (text_exposition(families), openmetrics_text(families)):
        assert 'chaostoolkit_experiment_title="say \\"hi\\"\\\\ \\nbye"' in text
        assert all(line for line in text.splitlines())


def test_openmetrics_has_each_family_once_second_timestamps_and_eof():
    runs = [read_journal(path) for path in VALID_JOURNALS[:4]]
    text = openmetrics_text(merge_families(*(run_families(run) for run in runs)))
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    types = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    sample = re.compile(r'^(\w+)\{.*\} \S+ (\d+\.\d{3})$')
    names_in_order = []
    for line in lines:
        if line.startswith("#"):
            continue
        match = sample.match(line)
        assert match, line
        if not names_in_order or names_in_order[-1] != match.group(1):
            names_in_order.append(match.group(1))
        assert 1.5e9 < float(match.group(2)) < 2.5e9
    assert len(names_in_order) == len(set(names_in_order))
    assert {run.run_id for run in runs} <= set(re.findall(rf'{RUN_ID_LABEL}="(\w+)"', text))
