"""The recorder driven by control hooks, in real `chaos run`s of a chaostoolkit-lib before 1.26.

Those versions have no run event registry. scripts/test runs this module in
its oldest generation (Python 3.9, chaostoolkit 1.9.0, chaostoolkit-lib
1.19.0); where chaoslib has the registry, the module is skipped and
test_recorder_e2e.py covers the recorder.
"""
from collections import Counter

import pytest

from chaosreplay.controls.recorder import EVENT_REGISTRY_SUPPORTED
from chaosreplay.journal import journal_to_run, read_side_file
from tests.blackhole import Refusing
from tests.test_live_controls import chaos_run, deliveries, experiment, influx_control
from tests.test_recorder_e2e import _of, _recorded, _run, _side_file_lines

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(EVENT_REGISTRY_SUPPORTED, reason="this chaostoolkit-lib has the run event registry: "
                       "scripts/test runs these in its chaostoolkit-lib 1.19 generation"),
]


def _activities_by_phase(events):
    return [(e.phase, e.name, e.status) for e in _of(events, "activity")]


@pytest.mark.parametrize("placements", [("experiment",), ("settings",), ("experiment", "settings")])
def test_each_activity_is_recorded_once_with_the_readers_ids(tmp_path, placements):
    (tmp_path / "marker").write_text("")
    _, journal = _run(tmp_path, "basic.json", placements=placements)
    entry, events = _recorded(journal)
    assert Counter(e.kind for e in events) == {"experiment": 1, "phase": 4, "activity": 10, "mark": 1}
    assert [p.phase for p in _of(events, "phase")] == ["before", "method", "after", "rollbacks"]
    assert [a.name for a in _of(events, "activity", "method")] == [
        "touch", "traffic-peak", "touch", "explode", "check"]
    assert [a.status for a in _of(events, "activity", "method")] == [
        "succeeded", "succeeded", "succeeded", "failed", "succeeded"]

    # The hooks run before the journal exists: the run id is the recorder's own, carried in
    # the journal, and the reader takes it, so both give every activity the same id.
    derived = journal_to_run(journal, "journal.json")
    assert derived.run_id == entry["run_id"]
    recorded_ids = [e.id for e in _of(events, "activity")]
    assert len(set(recorded_ids)) == 10
    assert sorted(recorded_ids) == sorted(e.id for e in _of(derived.events, "activity"))
    assert _activities_by_phase(sorted(_of(events, "activity"), key=lambda e: e.start)) == \
        _activities_by_phase(_of(derived.events, "activity"))


def test_the_side_file_replays_like_the_journal(tmp_path):
    (tmp_path / "marker").write_text("")
    _, journal = _run(tmp_path, "basic.json")
    path, lines = _side_file_lines(tmp_path)
    assert lines[0]["chaostoolkit-replay"] == "side-file"
    from_side_file = read_side_file(path)
    from_journal = journal_to_run(journal, "journal.json")
    assert from_side_file.run_id == from_journal.run_id
    assert {e.id for e in _of(from_side_file.events, "activity")} == \
        {e.id for e in _of(from_journal.events, "activity")}


def test_automatic_false_is_warned_about_and_the_journal_still_has_every_activity(tmp_path):
    (tmp_path / "marker").write_text("")
    done_output = []
    _, journal = _run(tmp_path, "basic.json", placements=("experiment", "not-automatic"),
                      output=done_output)
    [output] = done_output
    assert 'is declared with "automatic": false' in output and "before 1.26" in output
    _, events = _recorded(journal)
    assert _of(events, "activity") == []
    # What the hooks could not see, the replay still derives from the journal.
    assert len(_of(journal_to_run(journal, "journal.json").events, "activity")) == 10


def test_strict_live_delivery_fails_the_run_through_the_hooks(tmp_path):
    with Refusing() as down:
        completed, _, journal_path = chaos_run(
            tmp_path, "strict", experiment([influx_control(down.url, strict=True)]))
    assert completed.returncode == 1, completed.stdout[-2000:] + completed.stderr[-2000:]
    journal, record = deliveries(journal_path)
    assert journal["status"] == "failed"
    assert all(entry["undelivered"] for entry in record.values())
    assert "strict delivery" in completed.stderr
