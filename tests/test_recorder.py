"""The recorder driven by chaoslib in this process (run_experiment), faster than `chaos run`.

What the CLI adds (placements, signals, the journal file) is in test_recorder_e2e.py.
"""
import copy
import json
import logging
import os
import sys
from collections import Counter
from datetime import datetime, timezone

import pytest
from chaoslib.experiment import run_experiment
from chaoslib.run import EventHandlerRegistry
from chaoslib.types import Schedule, Strategy

import chaosreplay.controls.recorder as recorder_module
from chaosreplay.controls.recorder import Recorder, install, mark
from chaosreplay.events import Event, activity_id
from chaosreplay.journal import EXTENSION_NAME, journal_to_run, read_side_file

from .conftest import REPO

EXPERIMENTS = os.path.join(REPO, "tests", "experiments")
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def experiment_helpers_importable(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(EXPERIMENTS)
    monkeypatch.chdir(tmp_path)
    # Each test sees its own "logged once" warnings.
    monkeypatch.setattr(recorder_module, "_warned", set())


def _control(module="chaosreplay.controls.recorder", name="chaostoolkit-replay", **arguments):
    provider = {"type": "python", "module": module}
    if arguments:
        provider["arguments"] = arguments
    return {"name": name, "provider": provider}


def _action(name, **extra):
    return dict({"type": "action", "name": name,
                 "provider": {"type": "process", "path": "true"}}, **extra)


def _experiment(method, controls=None, **extra):
    experiment = {
        "version": "1.0.0",
        "title": "recorder unit",
        "description": "in-process",
        "steady-state-hypothesis": {"title": "ok", "probes": [
            {"type": "probe", "name": "always-true", "tolerance": 0,
             "provider": {"type": "process", "path": "true"}}]},
        "method": method,
        "controls": controls if controls is not None else [_control()],
    }
    experiment.update(extra)
    return experiment


def _extension(journal):
    (entry,) = [e for e in journal["extensions"] if e["name"] == EXTENSION_NAME]
    return entry, [Event.from_dict(record) for record in entry["events"]]


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name.startswith("chaostoolkit.replay")]


def test_background_activities_and_continuous_hypothesis_from_many_threads():
    method = [_action("parallel", background=True,
                      provider={"type": "python", "module": "replay_helpers", "func": "pause",
                                "arguments": {"seconds": 0.05}}) for _ in range(24)]
    journal = run_experiment(_experiment(method), strategy=Strategy.CONTINUOUS,
                             schedule=Schedule(continuous_hypothesis_frequency=0.02))
    entry, events = _extension(journal)
    run_id = entry["run_id"]

    parallel = [e for e in events if e.name == "parallel"]
    assert sorted(e.id for e in parallel) == sorted(
        activity_id(run_id, "method", "parallel", n) for n in range(24))
    assert all(e.status == "succeeded" and e.end is not None for e in parallel)
    during = [e for e in events if e.kind == "activity" and e.phase == "during"]
    assert len(during) == len(journal["steady_states"]["during"]) >= 1
    derived = journal_to_run({k: v for k, v in journal.items() if k != "extensions"}, "j")
    assert sorted(e.id for e in derived.events if e.kind == "activity") == sorted(
        e.id for e in events if e.kind == "activity")


def test_unwritable_side_file_warns_once_and_the_journal_still_records(tmp_path, caplog):
    missing = str(tmp_path / "no-such-dir" / "events.jsonl")
    caplog.set_level(logging.WARNING)
    journal = run_experiment(_experiment([_action("a"), _action("b")],
                                         controls=[_control(events_path=missing)]))
    assert journal["status"] == "completed"
    _, events = _extension(journal)
    assert [e.name for e in events if e.kind == "activity"] == ["always-true", "a", "b", "always-true"]
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and missing in warnings[0] and "No such file" in warnings[0]


def test_side_file_can_be_disabled_or_put_in_a_directory(tmp_path):
    run_experiment(_experiment([_action("a")], controls=[_control(events_path="")]))
    assert not list(tmp_path.glob("*.jsonl"))
    (tmp_path / "records").mkdir()
    journal = run_experiment(_experiment([_action("a")], controls=[_control(events_path="records")]))
    entry, _ = _extension(journal)
    (path,) = (tmp_path / "records").glob("*.jsonl")
    assert path.name == f"chaostoolkit-replay-{entry['run_id']}.events.jsonl"
    assert read_side_file(str(path)).run_id == entry["run_id"]


def test_listeners_see_start_then_end_and_a_failing_listener_changes_nothing(caplog):
    seen = []
    registry = EventHandlerRegistry()
    recorder = install(registry, events_path="")
    assert install(registry, tags={"team": "sre"}) is recorder, "one recorder per run"

    def broken(event):
        raise RuntimeError("listener bug")

    recorder.add_listener(broken)
    recorder.add_listener(seen.append)
    caplog.set_level(logging.WARNING)
    journal = run_experiment(_experiment([_action("a"), _action("b")], controls=[]),
                             event_handlers=registry.handlers)
    assert journal["status"] == "completed"
    activities = [e for e in seen if e.kind == "activity"]
    by_id = {}
    for event in activities:
        by_id.setdefault(event.id, []).append(event)
    assert len(by_id) == 4
    for versions in by_id.values():
        assert versions[0].end is None and versions[-1].end is not None
        assert all(v.tags == {"team": "sre"} for v in versions)
    assert [e.kind for e in seen].count("experiment") == 2
    assert seen[-1].kind == "experiment" and seen[-1].status == "completed"
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "listener bug" in warnings[0], "logged once, not per event"
    latest = {event.id: event for event in seen}
    assert recorder.events() == [latest[event.id] for event in recorder.events()]


def test_contributors_add_keys_but_not_replace_ours():
    registry = EventHandlerRegistry()
    recorder = install(registry, events_path="")
    recorder.add_extension_contributor(lambda journal: {"deliveries": {"influx": {"delivered": 3}},
                                                "events": "overridden?", "when": datetime(2024, 1, 1)})
    recorder.add_extension_contributor(lambda journal: 1 / 0)
    journal = run_experiment(_experiment([_action("a")], controls=[]), event_handlers=registry.handlers)
    entry, events = _extension(journal)
    assert entry["deliveries"] == {"influx": {"delivered": 3}}
    assert entry["when"] == "2024-01-01 00:00:00", "made JSON-native"
    assert Counter(e.kind for e in events) == {"experiment": 1, "phase": 3, "activity": 3}
    json.dumps(journal, allow_nan=False)


def test_mark_fields_become_json_native_and_the_journal_encodes(tmp_path):
    marker = {"type": "action", "name": "odd-mark", "provider": {
        "type": "python", "module": "replay_helpers", "func": "mark_with_odd_fields"}}
    journal = run_experiment(_experiment([marker]))
    _, events = _extension(journal)
    (event,) = [e for e in events if e.kind == "mark"]
    assert dict(event.fields) == {"ratio": "nan", "ids": [1, 2], "at": "2024-01-01 00:00:00+00:00",
                                  "nested": {"1": "inf"}}
    json.dumps(journal, allow_nan=False)


def test_mark_without_a_running_recorder_returns_none_and_warns(caplog):
    caplog.set_level(logging.WARNING)
    assert mark("nothing listens") is None
    assert len(_warnings(caplog)) == 1 and "nothing listens" in _warnings(caplog)[0]


def test_the_experiment_is_not_mutated_and_no_secret_is_copied(tmp_path):
    experiment = _experiment(
        [{"type": "action", "name": "uses-token",
          "provider": {"type": "process", "path": "echo", "arguments": "${token}"}}],
        controls=[_control(events_path="events.jsonl", tags={"env": "ci"})],
        secrets={"api": {"token": TOKEN}},
        configuration={"token": TOKEN, "grafana": {"api_token": TOKEN}},
    )
    before = copy.deepcopy(experiment)
    journal = run_experiment(experiment)
    assert experiment == before
    assert TOKEN in json.dumps(journal["run"]), "the activity really used it"
    entry, events = _extension(journal)
    assert TOKEN not in json.dumps(entry)
    assert TOKEN not in (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert {e.tags.get("env") for e in events} == {"ci"}


def test_hooks_record_the_same_run_where_chaoslib_has_no_registry(monkeypatch):
    monkeypatch.setattr(recorder_module, "EVENT_REGISTRY_SUPPORTED", False)
    sys.modules.pop("legacy_control", None)
    # Declared twice: hooks fire once per declaration, the record must not double.
    experiment = _experiment(
        [_action("a"), _action("a"), _action("b", background=True)],
        controls=[_control("legacy_control", name="first"), _control("legacy_control", name="second")],
        rollbacks=[_action("undo")],
    )
    journal = run_experiment(experiment)
    entry, events = _extension(journal)
    run_id = entry["run_id"]
    activities = [e for e in events if e.kind == "activity"]
    assert Counter((e.phase, e.name) for e in activities) == {
        ("before", "always-true"): 1, ("method", "a"): 2, ("method", "b"): 1,
        ("after", "always-true"): 1, ("rollbacks", "undo"): 1}
    assert [e.id for e in activities if e.name == "a"] == [
        activity_id(run_id, "method", "a", n) for n in (0, 1)]
    assert [e.phase for e in events if e.kind == "phase"] == ["before", "method", "after", "rollbacks"]
    assert all(e.fields["tolerance_met"] for e in activities if e.name == "always-true")
    (run,) = [e for e in events if e.kind == "experiment"]
    assert run.status == "completed" and run.fields["activities"] == 6
    # The reader takes the recorded run id, so both sources agree on every id.
    derived = journal_to_run(journal, "j")
    assert sorted(e.id for e in derived.events if e.kind == "activity") == sorted(e.id for e in activities)


@pytest.mark.parametrize("automatic, warned", [(False, True), (True, False), (None, False)])
def test_hooks_era_warns_when_automatic_false_would_record_no_activity(monkeypatch, caplog, automatic, warned):
    monkeypatch.setattr(recorder_module, "EVENT_REGISTRY_SUPPORTED", False)
    monkeypatch.setattr(recorder_module, "_warned", set())
    caplog.set_level(logging.WARNING)
    control = {"name": "replay-recorder", "provider": {"type": "python", "module": "chaosreplay.controls.recorder"}}
    if automatic is not None:
        control["automatic"] = automatic
    experiment = {"title": "t", "method": [], "controls": [control]}
    hooks = recorder_module.hook_functions()
    recorder = recorder_module.install(None, events_path="")
    try:
        hooks["before_experiment_control"](context=experiment)
    finally:
        recorder.finish({"status": "completed"})
    found = [w for w in _warnings(caplog) if '"automatic": false' in w]
    assert bool(found) is warned
    if warned:
        assert "'replay-recorder'" in found[0] and "before 1.26" in found[0]


def test_a_recorder_that_was_never_started_ignores_events():
    recorder = Recorder(events_path="")
    recorder.start_activity({"name": "x", "type": "action"})
    recorder.activity_completed({"name": "x"}, {"status": "succeeded"})
    assert recorder.mark("m") is None
    assert recorder.events() == [] and recorder.run_id is None


def test_handler_errors_never_reach_chaoslib(caplog):
    recorder = Recorder(events_path="")
    caplog.set_level(logging.WARNING)
    recorder.running({}, {"experiment": {"title": "t"}, "start": "2024-01-01T00:00:00", "node": "n"})
    assert recorder.start_activity(None) is None  # not a dict: logged, not raised
    assert recorder.finish({"status": "completed", "end": datetime(2024, 1, 1, tzinfo=timezone.utc)}) is None
    assert any("start_activity" in w for w in _warnings(caplog))


def test_recorded_names_and_fields_are_the_ones_the_reader_derives():
    method = [_action("slow", background=True), _action("fails", provider={
        "type": "process", "path": "false"}), _action("fast")]
    journal = run_experiment(_experiment(method), strategy=Strategy.CONTINUOUS,
                             schedule=Schedule(continuous_hypothesis_frequency=0.02))
    _, events = _extension(journal)
    recorded = {event.id: event for event in events}
    derived = journal_to_run({k: v for k, v in journal.items() if k != "extensions"}, "j")

    phases = [event for event in derived.events if event.kind == "phase"]
    assert {event.phase for event in phases} >= {"before", "during", "method", "after"}
    assert [recorded[event.id].name for event in phases] == [event.name for event in phases]
    assert recorded[derived.experiment.id].fields == derived.experiment.fields
    assert derived.experiment.fields["activities"] == len(
        [event for event in derived.events if event.kind == "activity"])
    for event in derived.events:
        if event.kind == "activity":
            assert recorded[event.id].fields == event.fields, event.name
