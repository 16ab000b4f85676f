"""The pure serializer: events -> Grafana annotations (no server)."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from chaosreplay.events import Event, Run, activity_id, experiment_id, interruption_id, mark_id, phase_id
from chaosreplay.sinks.grafana_annotations import (
    TAGS_LENGTH_LIMIT,
    epoch_ms,
    event_tag,
    run_annotations,
    run_tag,
    tag_value,
    tags_length,
)

RUN = "run0123456789abc"
T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def _run(*events: Event) -> Run:
    return Run(RUN, "test", tuple(events))


def _experiment(**changes) -> Event:
    values = dict(id=experiment_id(RUN), run_id=RUN, kind="experiment", name="Kill: the pod / then wait",
                  start=T0, end=T0 + timedelta(seconds=10), status="failed",
                  fields={"deviated": True, "activities": 4, "failed_activities": 1,
                          "steady_state_before_met": True, "steady_state_after_met": False})
    values.update(changes)
    return Event(**values)


def _activity(name: str, activity_type: str = "action", ordinal: int = 0, **changes) -> Event:
    values = dict(id=activity_id(RUN, "method", name, ordinal), run_id=RUN, kind="activity", name=name,
                  start=T0 + timedelta(seconds=1), end=T0 + timedelta(seconds=3, microseconds=999),
                  status="succeeded", phase="method", activity_type=activity_type,
                  fields={"duration": 2.000999, "provider": "python"})
    values.update(changes)
    return Event(**values)


def test_epoch_ms_truncates_exactly_at_any_microsecond():
    instant = datetime(2024, 5, 6, 7, 8, 9, 999999, tzinfo=timezone.utc)
    assert epoch_ms(instant) == int(instant.replace(microsecond=0).timestamp()) * 1000 + 999
    assert epoch_ms(instant + timedelta(microseconds=1)) == epoch_ms(instant) + 1


def test_experiment_is_one_region_with_title_status_deviation_and_failures():
    [annotation] = run_annotations(_run(_experiment()))
    assert annotation.is_region
    assert (annotation.time, annotation.time_end) == (epoch_ms(T0), epoch_ms(T0) + 10_000)
    for expected in ("Kill: the pod / then wait", "failed", "deviated", "activities: 4, failed: 1",
                     "after not met"):
        assert expected in annotation.text
    assert "experiment" in annotation.tags and "status-failed" in annotation.tags


def test_activity_region_then_point_while_open_and_only_actions_drops_probes():
    action = _activity("stress-cpu")
    probe = _activity("health", activity_type="probe", fields={"tolerance_met": False})
    region, probe_annotation = run_annotations(_run(action, probe))
    assert region.is_region and (region.time, region.time_end) == (epoch_ms(action.start), epoch_ms(action.end))
    assert "action stress-cpu (method)" in region.text and "succeeded in 2.001 s" in region.text
    assert "tolerance NOT met" in probe_annotation.text
    [open_annotation] = run_annotations(_run(action.evolve(end=None)))
    assert not open_annotation.is_region and "running" in open_annotation.text
    assert [a.event_id for a in run_annotations(_run(action, probe), only_actions=True)] == [action.id]


def test_points_for_steady_state_not_met_interruption_and_marks_only():
    met = Event(phase_id(RUN, "before"), RUN, "phase", "steady-state hypothesis before", T0,
                T0 + timedelta(seconds=1), "succeeded", phase="before", fields={"steady_state_met": True})
    not_met = met.evolve(id=phase_id(RUN, "after"), phase="after", name="steady-state hypothesis after",
                         status="failed", fields={"steady_state_met": False})
    method = Event(phase_id(RUN, "method"), RUN, "phase", "method", T0, T0 + timedelta(seconds=2), "succeeded",
                   phase="method")
    interruption = Event(interruption_id(RUN), RUN, "interruption", "interruption", T0 + timedelta(seconds=5),
                         status="interrupted", fields={"reason": "received SIGTERM", "signal": "SIGTERM"})
    mark = Event(mark_id(RUN, "deploy", 0), RUN, "mark", "deploy", T0 + timedelta(seconds=6),
                 fields={"version": "1.2"})
    annotations = run_annotations(_run(met, not_met, method, interruption, mark))
    # A hypothesis that held shows nothing; the method is the one phase shown as a region
    # (chaosdb.grafana marked its start and end, tagged `method`).
    assert [a.kind for a in annotations] == ["steady-state", "method", "interruption", "mark"]
    steady, method_region, interrupted, marked = annotations
    assert method_region.is_region and {"method", "before", "after"} <= set(method_region.tags)
    assert all(not a.is_region for a in (steady, interrupted, marked))
    assert steady.time == epoch_ms(not_met.end) and "NOT met" in steady.text
    assert "received SIGTERM (SIGTERM)" in interrupted.text
    assert "deploy" in marked.text and "version=1.2" in marked.text


def test_tags_identify_run_event_kind_status_and_carry_user_and_target_tags():
    event = _activity("a:b c", tags={"env": "prod:eu", "team": "SRE Core"})
    [annotation] = run_annotations(_run(event), extra_tags=("dashboards", "env:staging"))
    tags = annotation.tags
    assert tags[:3] == ("chaostoolkit", run_tag(RUN), event_tag(event.id))
    assert {"activity", "status-succeeded", "action", "phase-method", "dashboards", "env:staging",
            "env-prod-eu", "team-sre-core"} <= set(tags)
    # The activity's name as written is chaosdb's tag, kept so its queries match; ours are slugs.
    generated = [tag for tag in tags if tag not in ("env:staging", "a:b c")]
    assert "a:b c" in tags
    assert not any(":" in tag or " " in tag for tag in generated)


def test_chaosdb_tags_sit_next_to_ours():
    """chaosdb.grafana tagged an activity's points `chaostoolkit`, `activity`, `before`|`after`,
    its type, its name and its Python function, and the experiment's region `experiment`."""
    event = _activity("stress the cpu", fields={"provider": "python", "module": "chaosk8s.pod.actions",
                                                "func": "terminate_pods"})
    experiment, activity = run_annotations(_run(_experiment(), event))
    assert {"chaostoolkit", "activity", "before", "after", "action", "stress the cpu",
            "terminate_pods"} <= set(activity.tags)
    assert {"chaostoolkit", "experiment"} <= set(experiment.tags)
    assert activity.tags[:3] == ("chaostoolkit", run_tag(RUN), event_tag(event.id))


def test_experiment_tag_is_a_slug_of_the_title():
    _, annotation = run_annotations(_run(_experiment(), _activity("x")))
    assert "experiment-kill-the-pod-then-wait" in annotation.tags


def test_too_many_tags_are_cut_to_grafana_limit_keeping_identity():
    event = _activity("x", tags={f"key{i}": "v" * 30 for i in range(30)})
    [annotation] = run_annotations(_run(event))
    assert tags_length(annotation.tags) <= TAGS_LENGTH_LIMIT
    assert annotation.tags[:3] == ("chaostoolkit", run_tag(RUN), event_tag(event.id))


@given(st.text(max_size=200))
def test_tag_value_never_has_what_grafana_splits_on(text):
    value = tag_value(text)
    assert ":" not in value and not any(character.isspace() for character in value)
    assert len(value) <= 60 and value == value.strip("-")


@pytest.mark.parametrize("status", ["succeeded", "failed", "interrupted", "aborted", "unknown"])
def test_text_is_never_empty(status):
    event = _activity("", status=status, end=None if status == "unknown" else T0 + timedelta(seconds=2))
    [annotation] = run_annotations(_run(event))
    assert annotation.text.strip()
