"""The journal reader on every bundled real journal, and on bad input."""
import json
import os
from collections import Counter
import random
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.errors import JournalError
from chaosreplay.events import ACTIVITY, EXPERIMENT, INTERRUPTION, KINDS, PHASE, Event, run_id_for
from chaosreplay.journal import EXTENSION_NAME, journal_to_run, order, read_journal, read_side_file, read_source

from .conftest import JOURNALS

# Per journal, read by hand from the file (see fixtures/journals/SOURCES.md):
# (experiment status, deviated, phases, activities by status, interruption events)
EXPECTED = {
    "ansible10779164-1.15.0-interrupted.json": ("interrupted", False, 0, {}, 1),
    "azurechaos-1.28.0-secret-refs-deviated.json": ("failed", True, 3, {"succeeded": 3}, 0),
    "devops21f-1.44.0-55k-completed.json": ("completed", False, 3, {"succeeded": 8}, 0),
    "experimento-1.41.0-pauses.json": ("completed", False, 3, {"succeeded": 3}, 0),
    "generated-aborted.json": ("aborted", False, 3, {"succeeded": 3, "aborted": 1}, 0),
    "generated-basic.json": ("completed", False, 4, {"succeeded": 5}, 0),
    "generated-before-ssh-failed-lib144.json": ("completed", False, 2, {"succeeded": 2}, 0),
    "generated-continuous.json": ("completed", False, 8, {"succeeded": 10}, 0),
    "generated-controls-lib144.json": ("completed", False, 4, {"succeeded": 5}, 0),
    "generated-deviated.json": ("completed", True, 4, {"succeeded": 5}, 0),
    "generated-interrupted-sigterm.json": ("interrupted", False, 2, {"succeeded": 2, "interrupted": 1}, 1),
    "luis-1.19.0-before-failed-extensions.json": ("failed", False, 2, {"succeeded": 2}, 0),
    "marzouk-1.8.1-completed-rollbacks.json": ("completed", False, 4, {"succeeded": 7}, 0),
    "mdrcs-1.9.0-failed-deviated-k8s.json": ("failed", True, 3, {"succeeded": 4, "failed": 1}, 0),
    "ngt-1.15.1-before-ssh-failed.json": ("failed", False, 1, {"succeeded": 1}, 0),
    "tauber-1.44.0-method-probe-failed.json": ("completed", False, 4, {"succeeded": 5, "failed": 1}, 0),
}


def journal_path(name):
    return os.path.join(JOURNALS, name)


def test_every_valid_fixture_is_covered():
    names = {name for name in os.listdir(JOURNALS) if name.endswith(".json")}
    assert names - set(EXPECTED) == {"generated-truncated-unserializable.json"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_timeline(name):
    status, deviated, phases, activities, interruptions = EXPECTED[name]
    run = read_journal(journal_path(name))
    kinds = Counter(event.kind for event in run.events)
    assert kinds[EXPERIMENT] == 1
    assert kinds[PHASE] == phases
    assert kinds[INTERRUPTION] == interruptions
    assert Counter(e.status for e in run.events if e.kind == ACTIVITY) == Counter(activities)
    experiment = run.experiment
    assert experiment.status == status
    assert experiment.fields["deviated"] is deviated
    assert experiment.fields["activities"] == sum(activities.values())
    assert experiment.fields["failed_activities"] == activities.get("failed", 0)
    # One ordered timeline, timezone-aware UTC, experiment first.
    starts = [event.start for event in run.events]
    assert starts == sorted(starts)
    assert run.events[0].kind == EXPERIMENT
    assert all(event.start.tzinfo == timezone.utc for event in run.events)
    assert len({event.id for event in run.events}) == len(run.events)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activities_match_the_raw_journal(name):
    with open(journal_path(name), encoding="utf-8") as handle:
        raw = json.load(handle)
    states = raw.get("steady_states") or {}
    entries = [
        *((states.get("before") or {}).get("probes") or []),
        *(probe for state in states.get("during") or [] for probe in state["probes"]),
        *(raw.get("run") or []),
        *((states.get("after") or {}).get("probes") or []),
        *(raw.get("rollbacks") or []),
    ]
    run = read_journal(journal_path(name))
    activities = [event for event in run.events if event.kind == ACTIVITY]
    assert sorted(e.name for e in activities) == sorted(entry["activity"]["name"] for entry in entries)
    assert sorted(e.activity_type for e in activities) == sorted(entry["activity"]["type"] for entry in entries)
    for event in activities:
        if event.end is not None:
            assert event.fields["duration"] == pytest.approx(event.duration)
            assert event.end >= event.start


def test_ids_are_deterministic_and_depend_on_the_run():
    first = read_journal(journal_path("generated-continuous.json"))
    second = read_journal(journal_path("generated-continuous.json"))
    assert [e.id for e in first.events] == [e.id for e in second.events]
    other = read_journal(journal_path("generated-basic.json"))
    assert not {e.id for e in first.events} & {e.id for e in other.events}


def test_run_id_is_the_hash_of_the_journal_identity():
    with open(journal_path("generated-basic.json"), encoding="utf-8") as handle:
        raw = json.load(handle)
    run = read_journal(journal_path("generated-basic.json"))
    assert run.run_id == run_id_for(raw["experiment"]["title"], raw["start"], raw["node"])


def test_repeated_names_in_continuous_runs_get_distinct_ids():
    run = read_journal(journal_path("generated-continuous.json"))
    probes = [e for e in run.events if e.kind == ACTIVITY and e.name == "marker-exists"]
    assert len(probes) == 6
    assert len({probe.id for probe in probes}) == 6
    during = [e for e in run.events if e.kind == PHASE and e.phase == "during"]
    assert [e.fields["iteration"] for e in during] == [1, 2, 3, 4]


def test_naive_and_aware_timestamps_are_both_utc():
    naive = read_journal(journal_path("experimento-1.41.0-pauses.json"))
    aware = read_journal(journal_path("generated-basic.json"))
    with open(journal_path("experimento-1.41.0-pauses.json"), encoding="utf-8") as handle:
        raw_start = json.load(handle)["start"]
    assert "+" not in raw_start
    assert naive.experiment.start.isoformat().startswith(raw_start[:19])
    assert naive.experiment.start.utcoffset().total_seconds() == 0
    assert aware.experiment.start.utcoffset().total_seconds() == 0


def test_interrupted_activity_without_status_takes_the_run_status():
    run = read_journal(journal_path("generated-interrupted-sigterm.json"))
    cut = [e for e in run.events if e.status == "interrupted" and e.kind == ACTIVITY]
    assert [e.name for e in cut] == ["sleep-5s"]
    interruption = next(e for e in run.events if e.kind == INTERRUPTION)
    assert interruption.fields == {"reason": "received SIGTERM", "signal": "SIGTERM"}
    assert interruption.start == cut[0].end


def test_failed_activity_keeps_a_short_error_and_tolerance():
    run = read_journal(journal_path("mdrcs-1.9.0-failed-deviated-k8s.json"))
    failed = [e for e in run.events if e.status == "failed" and e.kind == ACTIVITY]
    assert len(failed) == 1
    assert failed[0].fields["tolerance_met"] is False
    assert 0 < len(failed[0].fields["error"]) <= 200
    assert "\n" not in failed[0].fields["error"]


def test_steady_state_not_met_before_is_reported():
    run = read_journal(journal_path("generated-before-ssh-failed-lib144.json"))
    assert run.experiment.fields["steady_state_before_met"] is False
    assert run.experiment.fields["steady_state_after_met"] is None
    before = next(e for e in run.events if e.kind == PHASE and e.phase == "before")
    assert before.status == "failed"


def test_huge_outputs_do_not_reach_events():
    run = read_journal(journal_path("devops21f-1.44.0-55k-completed.json"))
    encoded = json.dumps([e.to_dict() for e in run.events])
    assert len(encoded) < 10_000


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def _basic():
    with open(journal_path("generated-basic.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.mark.parametrize(
    "mutate, location, message",
    [
        (lambda j: j.update(run={"not": "a list"}), "$.run", "expected an array, got an object"),
        (lambda j: j["run"][1].update(start=12), "$.run[1].start", "expected an ISO-8601 timestamp, got a number"),
        (lambda j: j["run"][0].update(end="yesterday-ish"), "$.run[0].end", "unparsable timestamp"),
        (lambda j: j.update(start="2023-13-45T99:00:00"), "$.start", "unparsable timestamp"),
        (lambda j: j["run"][0]["activity"].update(name=["x"]), "$.run[0].activity.name", "expected a string"),
        (lambda j: j["steady_states"].update(before="met"), "$.steady_states.before", "expected an object"),
        (lambda j: j["rollbacks"].append(None), "$.rollbacks[1]", "expected a run entry object"),
        (lambda j: j.update(experiment=[]), "$.experiment", "expected an object"),
        (lambda j: j.update(status=True), "$.status", "expected a string, got a boolean"),
    ],
)
def test_wrong_types_name_the_json_location(tmp_path, mutate, location, message):
    journal = _basic()
    mutate(journal)
    path = _write(tmp_path, "bad.json", journal)
    with pytest.raises(JournalError) as caught:
        read_journal(path)
    assert caught.value.location == location
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{path}: {location}: ")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file"),
        ("   \n", "empty file"),
        ("not json at all", "invalid JSON"),
        ('{"experiment": {"title": "x"}, "run": [', "truncated JSON"),
        ("[1, 2]", "expected a journal object"),
        ('{"hello": "world"}', "not a chaostoolkit journal"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_unreadable_content(tmp_path, content, message):
    path = _write(tmp_path, "j.json", content)
    with pytest.raises(JournalError) as caught:
        read_source(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(path)


def test_truncated_real_journal_names_line_and_column():
    path = journal_path("generated-truncated-unserializable.json")
    with pytest.raises(JournalError) as caught:
        read_source(path)
    assert str(caught.value) == f"{path}: line 195 column 17: truncated JSON: Expecting value"


def test_pre_1_0_format_is_rejected(tmp_path):
    legacy = {
        "chaoslib-version": "0.8.0",
        "experiment": {"title": "old"},
        "start": "2017-11-02T10:00:00",
        "run": [{"kind": "probe", "name": "x", "start": "2017-11-02T10:00:00"}],
    }
    with pytest.raises(JournalError) as caught:
        read_journal(_write(tmp_path, "old.json", legacy))
    assert "pre-1.0 (2017) journal format" in str(caught.value)


def test_pre_1_0_method_steps_are_rejected_not_read_without_names(tmp_path):
    """The 2017 method steps (a title with action/probes objects) used to give nameless activities."""
    legacy = {
        "chaoslib-version": "0.6.0",
        "experiment": {"title": "old", "method": [{"title": "kill a pod", "action": {"type": "python"}}]},
        "start": "2017-11-02T10:00:00",
        "end": "2017-11-02T10:00:05",
        "status": "completed",
        "run": [{
            "activity": {"title": "kill a pod", "action": {"type": "python", "module": "m", "func": "f"},
                         "probes": {"before": [], "after": []}},
            "start": "2017-11-02T10:00:01", "end": "2017-11-02T10:00:02", "status": "succeeded",
        }],
    }
    with pytest.raises(JournalError) as caught:
        read_journal(_write(tmp_path, "2017.json", legacy))
    assert str(caught.value) == f"{tmp_path / '2017.json'}: $.run: pre-1.0 (2017) journal format is not supported"


@pytest.mark.parametrize("old_entry", [
    {"kind": "probe", "name": "x", "start": "2017-11-02T10:00:03"},
    {"activity": {"title": "step", "action": {"type": "python"}}, "start": "2017-11-02T10:00:03"},
], ids=["entry without activity", "method step"])
def test_an_old_entry_after_new_ones_is_still_refused_as_pre_1_0(tmp_path, old_entry):
    """Only the first entry is looked at up front: an old one further on is found when read."""
    journal = {
        "experiment": {"title": "mixed"}, "start": "2017-11-02T10:00:00",
        "run": [{"activity": {"type": "probe", "name": "new"}, "start": "2017-11-02T10:00:01",
                 "end": "2017-11-02T10:00:02", "status": "succeeded"}, old_entry],
    }
    with pytest.raises(JournalError) as caught:
        read_journal(_write(tmp_path, "mixed.json", journal))
    assert str(caught.value) == f"{tmp_path / 'mixed.json'}: $.run: pre-1.0 (2017) journal format is not supported"


def test_pre_1_0_journal_exits_3_and_the_others_are_still_read(tmp_path):
    legacy = {"experiment": {"title": "old"}, "start": "2017-11-02T10:00:00",
              "run": [{"activity": {"title": "step", "probes": {}}, "start": "2017-11-02T10:00:01"}]}
    done = CliRunner().invoke(replay, [_write(tmp_path, "old.json", legacy), journal_path("generated-basic.json")])
    assert done.exit_code == 3
    assert done.stderr.strip().splitlines() == [
        f"chaos-replay: error: {tmp_path / 'old.json'}: $.run: pre-1.0 (2017) journal format is not supported"
    ]
    assert "generated basic: one steady-state probe" in done.stdout


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(JournalError, match="no such file"):
        read_source(str(tmp_path / "missing.json"))
    with pytest.raises(JournalError, match="is a directory"):
        read_source(str(tmp_path))


def test_missing_during_and_status_and_unknown_keys_are_tolerated():
    journal = _basic()
    del journal["steady_states"]["during"]
    del journal["status"]
    del journal["run"][0]["status"]
    journal["something_new"] = {"from": "a future chaoslib"}
    run = journal_to_run(journal, "mem")
    assert run.experiment.status == "unknown"
    assert "unknown" in {e.status for e in run.events if e.kind == ACTIVITY}


def test_recorded_extension_supplies_phases_marks_and_run_id_without_changing_activities():
    plain = _basic()
    run = journal_to_run(plain, "plain")
    method = next(e for e in run.events if e.kind == PHASE and e.phase == "method")
    precise_method = method.evolve(start=method.start.replace(microsecond=0), fields={"recorded": True})
    from chaosreplay.events import MARK, Event, mark_id

    mark = Event(id=mark_id(run.run_id, "peak", 0), run_id=run.run_id, kind=MARK, name="peak",
                 start=method.start, fields={"rps": 120})
    recorded = dict(plain)
    recorded["extensions"] = [{"name": "chaosiq"}, {
        "name": "chaostoolkit-replay", "version": 1, "run_id": run.run_id,
        "events": [precise_method.to_dict(), mark.to_dict()],
    }]
    merged = journal_to_run(recorded, "recorded")
    activities = lambda r: [e for e in r.events if e.kind == ACTIVITY]  # noqa: E731
    assert activities(merged) == activities(run)
    merged_method = next(e for e in merged.events if e.id == method.id)
    assert merged_method.fields == {"recorded": True}
    assert merged_method.start == precise_method.start
    assert [e.name for e in merged.events if e.kind == MARK] == ["peak"]


def test_bad_recorded_event_is_reported_at_its_location():
    journal = _basic()
    journal["extensions"] = [{"name": "chaostoolkit-replay", "run_id": "r", "events": [{"id": "x"}]}]
    with pytest.raises(JournalError) as caught:
        journal_to_run(journal, "j")
    assert caught.value.location == "$.extensions[name=chaostoolkit-replay].events[0]"
    assert "missing key" in caught.value.message


def test_side_file_last_line_wins_and_partial_tail_is_dropped(tmp_path):
    run = read_journal(journal_path("generated-basic.json"))
    header = {"chaostoolkit-replay": "side-file", "version": 1, "run_id": run.run_id,
              "experiment": run.title, "start": "x", "node": "n"}
    lines = [json.dumps(header)]
    for event in run.events:
        lines.append(json.dumps(event.evolve(end=None).to_dict()))
        lines.append(json.dumps(event.to_dict()))
    content = "\n".join(lines) + '\n{"id": "cut-in-the-mid'
    path = _write(tmp_path, "run.events.jsonl", content)
    replayed = read_source(path)
    assert replayed.run_id == run.run_id
    assert [e.to_dict() for e in replayed.events] == [e.to_dict() for e in run.events]


def test_side_file_with_a_garbage_middle_line_skips_it_with_a_warning_naming_it(tmp_path, caplog):
    run = read_journal(journal_path("generated-basic.json"))
    lines = [json.dumps({"chaostoolkit-replay": "side-file", "version": 1, "run_id": run.run_id})]
    lines += [json.dumps(event.to_dict()) for event in run.events]
    lines.insert(3, "{oops")
    path = _write(tmp_path, "s.events.jsonl", "\n".join(lines) + "\n")
    assert read_side_file(path).events == run.events
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(f"{path}: line 4: skipped, invalid JSON")


def _recorded_mark(run):
    from chaosreplay.events import MARK, Event, mark_id

    return Event(id=mark_id(run.run_id, "peak", 0), run_id=run.run_id, kind=MARK, name="peak",
                 phase="method", start=run.experiment.start, end=run.experiment.start, status="succeeded",
                 tags={"team": "sre"}, fields={"rps": 1})


BAD_RECORDED_VALUES = [
    ("phase", 5, "phase: expected a string or null, got a number"),
    ("activity_type", ["probe"], "activity_type: expected a string or null, got an array"),
    ("tags", {"team": 1}, "tags: 'team' must map to a string, got a number"),
    ("tags", ["team:sre"], "tags: expected an object, got an array"),
    ("fields", [1], "fields: expected an object, got an array"),
    ("kind", "bogus", "unknown event kind 'bogus'"),
    ("kind", None, "kind: expected a string, got null"),
    ("name", 7, "name: expected a string, got a number"),
    ("id", 7, "id: expected a string, got a number"),
    ("status", False, "status: expected a string or null, got a boolean"),
    ("start", 12, "start: expected an ISO-8601 string"),
    ("end", "soon", "end: "),
]


@pytest.mark.parametrize("key, value, message", BAD_RECORDED_VALUES)
def test_recorded_extension_event_with_a_bad_value_names_its_location(key, value, message):
    journal = _basic()
    run = journal_to_run(journal, "j")
    record = _recorded_mark(run).to_dict()
    record[key] = value
    journal["extensions"] = [{"name": "chaostoolkit-replay", "run_id": run.run_id,
                              "events": [_recorded_mark(run).to_dict(), record]}]
    with pytest.raises(JournalError) as caught:
        journal_to_run(journal, "j")
    assert caught.value.location == "$.extensions[name=chaostoolkit-replay].events[1]"
    assert message in caught.value.message


@pytest.mark.parametrize("key, value, message", BAD_RECORDED_VALUES)
def test_side_file_line_with_a_bad_value_names_its_line(tmp_path, key, value, message):
    run = read_journal(journal_path("generated-basic.json"))
    header = {"chaostoolkit-replay": "side-file", "version": 1, "run_id": run.run_id}
    record = _recorded_mark(run).to_dict()
    record[key] = value
    lines = [json.dumps(header), json.dumps(_recorded_mark(run).to_dict()), json.dumps(record), ""]
    path = _write(tmp_path, "run.events.jsonl", "\n".join(lines))
    with pytest.raises(JournalError) as caught:
        read_source(path)
    assert caught.value.location == "line 3"
    assert message in caught.value.message


def test_a_good_recorded_mark_keeps_its_phase_tags_and_fields():
    journal = _basic()
    run = journal_to_run(journal, "j")
    mark = _recorded_mark(run)
    journal["extensions"] = [{"name": "chaostoolkit-replay", "run_id": run.run_id,
                              "events": [mark.to_dict()]}]
    assert mark in journal_to_run(journal, "j").events


def test_deeply_nested_json_is_a_journal_error(tmp_path, caplog):
    nested = "[" * 100_000 + "]" * 100_000
    journal = _write(tmp_path, "deep.json", '{"experiment": {"title": "x"}, "start": ' + nested + "}")
    with pytest.raises(JournalError) as caught:
        read_source(journal)
    assert str(caught.value) == f"{journal}: JSON nested too deeply"

    header = json.dumps({"chaostoolkit-replay": "side-file", "version": 1, "run_id": "r1"})
    side_file = _write(tmp_path, "deep.events.jsonl", header + "\n" + nested + "\n")
    # The side file is the crash-safe record: the line is skipped, naming it, the rest read.
    assert read_source(side_file).events == ()
    assert [record.getMessage() for record in caplog.records] == [
        f"{side_file}: line 2: skipped, JSON nested too deeply; the other lines are replayed"]


def test_deeply_nested_first_line_is_read_as_a_journal(tmp_path):
    # Deeper than any Python's JSON decoder goes (3.13 reads 2,000 levels, 3.12 does not).
    path = _write(tmp_path, "deep.json", "[" * 100_000 + "\n" + "]" * 100_000)
    with pytest.raises(JournalError) as caught:
        read_source(path)
    assert "JSON nested too deeply" in str(caught.value)


@pytest.mark.parametrize("name, reader", [
    ("generated-basic.json", read_source),
    ("generated-basic.json", read_journal),
])
def test_each_file_is_opened_once(monkeypatch, name, reader):
    import builtins

    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    path = journal_path(name)
    run = reader(path)
    assert run.experiment is not None
    assert opened == [path]


def test_side_file_is_opened_once(monkeypatch, tmp_path):
    import builtins

    header = {"chaostoolkit-replay": "side-file", "version": 1, "run_id": "r1"}
    path = _write(tmp_path, "s.events.jsonl", json.dumps(header) + "\n")
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: opened.append(file) or real_open(file, *a, **k))
    assert read_source(path).run_id == "r1"
    assert opened == [path]


def test_recursive_glob_finds_journals_at_any_depth(tmp_path, monkeypatch):
    from chaosreplay.journal import expand_inputs

    for folder in ("a", "a/b", "a/b/c"):
        (tmp_path / "runs" / folder).mkdir(parents=True)
        (tmp_path / "runs" / folder / "journal.json").write_text("{}")
    (tmp_path / "runs" / "a" / "other.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert expand_inputs(["runs/**/journal.json"]) == [
        "runs/a/b/c/journal.json", "runs/a/b/journal.json", "runs/a/journal.json",
    ]
    assert expand_inputs(["runs/*/journal.json"]) == ["runs/a/journal.json"]


def test_marks_recorded_without_status_or_end_read_as_succeeded_instants():
    """Earlier recorders stamped marks `unknown` without an end; a mark is an instant."""
    journal = json.loads(open(os.path.join(JOURNALS, "generated-basic.json"), encoding="utf-8").read())
    run_id = "recorded-run"
    start = journal["start"]
    journal["extensions"] = [{"name": EXTENSION_NAME, "version": 1, "run_id": run_id, "events": [
        {"id": "m1", "run_id": run_id, "kind": "mark", "name": "peak", "start": start, "end": None,
         "status": "unknown", "phase": "method", "activity_type": None, "tags": {}, "fields": {"rps": 3}}]}]
    [mark] = [event for event in journal_to_run(journal, "old-marks.json").events if event.kind == "mark"]
    assert (mark.status, mark.end) == ("succeeded", mark.start)


def test_order_is_start_then_enclosing_kind_first_and_keeps_the_given_order_of_equals():
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    shuffler = random.Random(7)
    events = [Event(id=f"e{i}", run_id="r", kind=shuffler.choice(KINDS), name=f"n{i}",
                    start=t0 + timedelta(microseconds=shuffler.randrange(4))) for i in range(300)]
    ordered = order(events)
    rank = {kind: position for position, kind in enumerate(KINDS)}
    assert ordered == tuple(sorted(events, key=lambda event: (event.start, rank[event.kind])))
    # Equal start and kind: as given (the ids count up in the given order).
    for first, second in zip(ordered, ordered[1:]):
        if (first.start, first.kind) == (second.start, second.kind):
            assert int(first.id[1:]) < int(second.id[1:])
