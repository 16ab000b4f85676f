"""The Grafana sink against the Grafana stand-in: every journal, no duplicates, patches, failures, secrets."""
import calendar
import glob
import json
import logging
import os
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from chaosreplay.config import Secret, Settings
from chaosreplay.events import Event, Run, activity_id, experiment_id
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana import GrafanaConfig, GrafanaTarget, targets
from chaosreplay.sinks.grafana_annotations import event_tag, run_tag
from tests.blackhole import Refusing
from tests.conftest import JOURNALS, expected_annotation_kinds
from tests.grafana_standin import (  # noqa: F401 (fixtures)
    ADMIN_USER,
    EDITOR_TOKEN,
    VIEWER_TOKEN,
    GrafanaStandIn,
    grafana,
    grafana_pair,
)

VALID_JOURNALS = sorted(path for path in glob.glob(os.path.join(JOURNALS, "*.json"))
                        if "truncated" not in os.path.basename(path))
KIND_TAGS = ("experiment", "activity", "method", "steady-state", "interruption", "mark")


def _target(server, **changes) -> GrafanaTarget:
    values = dict(url=server.url, token=Secret(EDITOR_TOKEN), retries=0, timeout=5.0)
    values.update(changes)
    return GrafanaTarget(GrafanaConfig(**values))


def _journal_ms(text: str) -> int:
    """A chaoslib timestamp (naive UTC or +00:00) in epoch ms, computed apart from the sink."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is not None:
        instant = instant.astimezone(timezone.utc).replace(tzinfo=None)
    return calendar.timegm(instant.timetuple()) * 1000 + instant.microsecond // 1000


def _journal_activity_bounds(document: dict) -> set:
    entries = list(document.get("run") or []) + list(document.get("rollbacks") or [])
    states = document.get("steady_states") or {}
    for moment in ("before", "after"):
        entries.extend((states.get(moment) or {}).get("probes") or [])
    for during in states.get("during") or []:
        entries.extend((during or {}).get("probes") or [])
    return {(_journal_ms(entry["start"]), _journal_ms(entry["end"])) for entry in entries
            if entry.get("start") and entry.get("end")}


def _kind_of(annotation) -> str:
    return next(tag for tag in annotation.tags if tag in KIND_TAGS)


@pytest.mark.parametrize("path", VALID_JOURNALS, ids=os.path.basename)
def test_every_journal_lands_once_with_journal_bounds_and_tags(grafana, path):
    run = read_journal(path)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)

    delivery = _target(grafana).send(run)

    assert delivery.ok, delivery.error
    assert grafana.violations == []
    stored = grafana.with_tag(run_tag(run.run_id))
    assert Counter(_kind_of(annotation) for annotation in stored) == expected_annotation_kinds(run)
    for annotation in stored:
        assert {"chaostoolkit", run_tag(run.run_id)} <= set(annotation.tags)
        assert sum(tag.startswith("event-") for tag in annotation.tags) == 1
    [experiment] = [a for a in stored if _kind_of(a) == "experiment"]
    assert experiment.time == _journal_ms(document["start"])
    if document.get("end"):
        assert experiment.time_end == _journal_ms(document["end"])
    bounds = _journal_activity_bounds(document)
    for annotation in stored:
        if _kind_of(annotation) == "activity" and annotation.time_end > annotation.time:
            assert (annotation.time, annotation.time_end) in bounds

    posts = grafana.count("POST")
    again = _target(grafana).send(run)

    assert again.ok
    assert grafana.count("POST") == posts
    assert grafana.count("PATCH") == 0
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(stored)


def test_one_ranged_tagged_lookup_per_run_and_target(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-continuous.json"))
    target = _target(grafana)
    target.send(run)
    target.send(run)
    [lookup] = [request for request in grafana.requests if request.method == "GET"]
    assert lookup.params["tags"] == ["chaostoolkit", run_tag(run.run_id)]
    starts = [event.start for event in run.events]
    assert int(lookup.params["from"][0]) <= min(starts).timestamp() * 1000 <= int(lookup.params["to"][0])


def test_two_servers_both_get_every_annotation(grafana_pair):
    first, second = grafana_pair
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    configured = targets(Settings(cli={"grafana_url": (first.url, second.url), "grafana_token": EDITOR_TOKEN},
                                  env={}))
    deliveries = [target.send(run) for target in configured]
    assert [delivery.ok for delivery in deliveries] == [True, True]
    assert len(first.with_tag(run_tag(run.run_id))) == len(second.with_tag(run_tag(run.run_id))) > 0


@pytest.mark.parametrize("failure", ["refused", "5xx"])
def test_a_failing_server_does_not_stop_the_other(grafana, failure):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    with Refusing() as refusing:
        failing_url = refusing.url
        if failure == "5xx":
            broken = GrafanaStandIn()
            broken.fail(503, times=100)
            failing_url = broken.url
        configured = targets(Settings(cli={"grafana_url": (failing_url, grafana.url), "grafana_retries": 0},
                                      env={"GRAFANA_TOKEN": EDITOR_TOKEN}))
        bad, good = [target.send(run) for target in configured]
        if failure == "5xx":
            broken.close()
    assert not bad.ok and set(bad.failed) and ("HTTP 503" in bad.error or "refused" in bad.error)
    assert good.ok
    assert len(grafana.with_tag(run_tag(run.run_id))) == sum(expected_annotation_kinds(run).values())


def _open_and_ended(run_id="live00000000run1"):
    start = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    experiment = Event(experiment_id(run_id), run_id, "experiment", "live run", start, None, "unknown")
    action = Event(activity_id(run_id, "method", "slow-action", 0), run_id, "activity", "slow-action",
                   start + timedelta(seconds=1), None, "unknown", phase="method", activity_type="action")
    ended = action.evolve(end=action.start + timedelta(seconds=42, milliseconds=5), status="succeeded",
                          fields={"duration": 42.005})
    return experiment, action, ended


def test_open_activity_is_a_point_then_patched_into_a_region(grafana):
    experiment, action, ended = _open_and_ended()
    target = _target(grafana)
    assert target.send(Run(action.run_id, "live", (action,))).ok
    [point] = grafana.with_tag(event_tag(action.id))
    assert point.time == point.time_end and "running" in point.text

    assert target.send(Run(action.run_id, "live", (ended,))).ok
    [region] = grafana.with_tag(event_tag(action.id))
    assert region.id == point.id
    assert region.time_end - region.time == 42_005
    assert "succeeded" in region.text and "status-succeeded" in region.tags
    assert grafana.count("POST") == 1 and grafana.count("PATCH") == 1
    patch = next(request for request in grafana.requests if request.method == "PATCH")
    assert set(json.loads(patch.body) if isinstance(patch.body, str) else patch.body) <= {
        "time", "timeEnd", "text", "tags"}


def test_live_then_replay_leaves_one_annotation_per_event(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-interrupted-sigterm.json"))
    live = _target(grafana)
    for event in run.events:
        if event.end is not None and event.kind != "experiment":
            assert live.send(Run(run.run_id, "live", (event.evolve(end=None, status="unknown"),))).ok
        assert live.send(Run(run.run_id, "live", (event,))).ok
    posts = grafana.count("POST")

    assert _target(grafana).send(run).ok
    assert grafana.count("POST") == posts
    tags = Counter(tag for a in grafana.with_tag(run_tag(run.run_id)) for tag in a.tags if tag.startswith("event-"))
    assert set(tags.values()) == {1}


def test_changed_event_is_patched_on_replay_not_duplicated(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    assert _target(grafana).send(run).ok
    activity = next(event for event in run.events if event.kind == "activity")
    moved = run.with_events(event.evolve(end=event.end + timedelta(milliseconds=250)) if event is activity else event
                            for event in run.events)
    posts = grafana.count("POST")
    assert _target(grafana).send(moved).ok
    assert grafana.count("POST") == posts and grafana.count("PATCH") == 1
    [annotation] = grafana.with_tag(event_tag(activity.id))
    assert annotation.time_end == _journal_ms(activity.end.isoformat()) + 250


def test_lookup_pages_through_many_annotations(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-continuous.json"))
    assert _target(grafana).send(run).ok
    stored = len(grafana.with_tag(run_tag(run.run_id)))
    posts = grafana.count("POST")
    assert _target(grafana, page_size=2).send(run).ok
    assert grafana.count("POST") == posts
    assert len(grafana.with_tag(run_tag(run.run_id))) == stored
    assert grafana.count("GET") > 2


def test_copies_already_on_the_server_are_removed(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    first = _target(grafana)
    first.send(run)
    first._stored.clear()  # a second process that missed the first one's answers
    activity = next(event for event in run.events if event.kind == "activity")
    [original] = grafana.with_tag(event_tag(activity.id))
    grafana.annotations[999] = original.__class__(**{**original.__dict__, "id": 999})

    delivery = _target(grafana).send(run)
    assert delivery.ok and any("duplicate" in note for note in delivery.notes)
    assert [a.id for a in grafana.with_tag(event_tag(activity.id))] == [original.id]


@pytest.mark.parametrize("after_store", [False, True])
def test_connection_reset_on_create_never_duplicates(grafana, after_store):
    run = read_journal(os.path.join(JOURNALS, "generated-deviated.json"))
    grafana.reset(times=1, after_store=after_store, method="POST")
    delivery = _target(grafana, retries=1).send(run)
    assert delivery.ok, delivery.error
    tags = Counter(tag for a in grafana.with_tag(run_tag(run.run_id)) for tag in a.tags if tag.startswith("event-"))
    assert sum(tags.values()) == len(tags) == sum(expected_annotation_kinds(run).values())
    assert grafana.count("GET") == 2  # looked the run up again after the lost answer


def test_5xx_is_retried_then_delivered(grafana, monkeypatch):
    monkeypatch.setattr("chaosreplay.sinks.http.BACKOFF_SECONDS", 0.01)
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    grafana.fail(502, times=2, method="POST")
    delivery = _target(grafana, retries=2).send(run)
    assert delivery.ok and grafana.count("POST") == 2 + len(grafana.with_tag(run_tag(run.run_id)))


def test_slow_server_times_out_and_reports_every_event(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    grafana.slow(2.0, times=1, method="GET")
    delivery = _target(grafana, timeout=0.3).send(run)
    assert not delivery.ok and "timed out" in delivery.error
    assert set(delivery.failed) >= {event.id for event in run.events if event.kind == "activity"}
    assert grafana.count("POST") == 0


@pytest.mark.parametrize("token, status", [(VIEWER_TOKEN, 403), ("glsa_not_a_token", 401)])
def test_refused_credentials_stop_the_target_with_the_status(grafana, token, status):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    delivery = _target(grafana, token=Secret(token)).send(run)
    assert f"HTTP {status}" in delivery.error and token not in delivery.error
    assert delivery.refused
    assert not grafana.annotations


def test_basic_auth_org_dashboard_and_panel(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    target = _target(grafana, token=None, username=ADMIN_USER[0], password=Secret(ADMIN_USER[1]), org_id=2,
                     dashboard_uid="chaos-dash", panel_id=3)
    assert target.send(run).ok
    stored = grafana.with_tag(run_tag(run.run_id))
    assert stored and {(a.org_id, a.dashboard_uid, a.dashboard_id, a.panel_id) for a in stored} == {
        (2, "chaos-dash", 7, 3)}


def test_target_only_actions_leaves_probes_out(grafana):
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    assert _target(grafana, only_actions=True).send(run).ok
    stored = grafana.with_tag(run_tag(run.run_id))
    assert "probe" not in {tag for a in stored for tag in a.tags}
    assert sum("action" in a.tags for a in stored) == sum(e.activity_type == "action" for e in run.events)


def test_no_secret_in_logs_plans_errors_or_labels(grafana, caplog):
    caplog.set_level(logging.DEBUG)
    password = "basic-pa55word-XYZ"
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    grafana.fail(503, times=1)
    settings = Settings(cli={"grafana_url": (f"http://someone:{password}@127.0.0.1:{grafana.url.rsplit(':', 1)[1]}",
                                             grafana.url),
                             "grafana_token": EDITOR_TOKEN, "grafana_retries": 1},
                        env={"GRAFANA_PASSWORD": password})
    configured = targets(settings)
    texts = [repr(configured), *(t.label for t in configured)]
    for target in configured:
        texts.append(json.dumps([request.to_dict() for request in target.plan(run)]))
        delivery = target.send(run)
        texts.append(json.dumps(delivery.to_dict()))
    viewer = _target(grafana, token=Secret(VIEWER_TOKEN)).send(run)
    texts.append(json.dumps(viewer.to_dict()))
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert "Bearer ***" in everything
    for secret in (EDITOR_TOKEN, VIEWER_TOKEN, password):
        assert secret not in everything


def test_lost_answer_in_a_later_live_slice_keeps_what_earlier_slices_created(grafana):
    experiment, action, ended = _open_and_ended()
    later = ended.evolve(id=activity_id(action.run_id, "method", "later", 0), name="later",
                         start=ended.end + timedelta(minutes=5), end=ended.end + timedelta(minutes=6))
    target = _target(grafana, retries=1)
    assert target.send(Run(action.run_id, "live", (action,))).ok
    grafana.reset(times=1, after_store=True, method="POST")
    assert target.send(Run(action.run_id, "live", (later,))).ok
    assert target.send(Run(action.run_id, "live", (ended,))).ok
    assert [len(grafana.with_tag(event_tag(event.id))) for event in (action, later)] == [1, 1]
    assert grafana.count("PATCH") == 1
