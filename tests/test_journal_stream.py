"""A journal file is read in one pass, a chunk at a time (never its whole text or document):
the Run and every error are the ones of the whole document parsed at once.

The chunk size is made tiny here so that every entry, key, number, escape and multi-byte
character straddles chunk boundaries somewhere.
"""
import copy
import json
import os

import pytest

from chaosreplay.errors import JournalError, NotAJournal
from chaosreplay.events import ACTIVITY, activity_id, run_id_for
from chaosreplay.journal import EXTENSION_NAME, journal_to_run, read_journal, read_runs

from .conftest import JOURNALS

FIXTURES = sorted(name for name in os.listdir(JOURNALS) if name.endswith(".json"))
READABLE = [name for name in FIXTURES if name != "generated-truncated-unserializable.json"]
CHUNKS = [1, 2, 7, 64, 4096]


def _load(name):
    with open(os.path.join(JOURNALS, name), encoding="utf-8") as handle:
        return json.load(handle)


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return str(path)


def _whole(run):
    """Everything a Run carries, compared field by field (a Run compares its events only)."""
    return (run.run_id, run.events, run.configuration, run.secrets, run.controls, run.extension,
            run.from_side_file, run.experiment_hash, run.chaoslib_version)


def _error_of_the_whole_text(path):
    """The error json.loads of the whole text gives, in the reader's words."""
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        reason = "truncated JSON" if error.pos >= len(text.rstrip()) else "invalid JSON"
        return f"{path}: line {error.lineno} column {error.colno}: {reason}: {error.msg}"
    return None


@pytest.mark.parametrize("name", READABLE)
@pytest.mark.parametrize("chunk", CHUNKS)
def test_every_bundled_journal_reads_as_its_whole_document(name, chunk):
    path = os.path.join(JOURNALS, name)
    streamed = read_journal(path, chunk_bytes=chunk)
    assert _whole(streamed) == _whole(journal_to_run(_load(name), path))
    assert streamed.source == path


@pytest.mark.parametrize("name", READABLE)
def test_members_in_any_order_give_the_same_run(name, tmp_path):
    document = _load(name)
    expected = _whole(journal_to_run(document, "whole"))
    for order in (list(document), list(reversed(list(document))), sorted(document)):
        path = _write(tmp_path, "j.json", json.dumps({key: document[key] for key in order}, indent=1))
        assert _whole(read_journal(path, chunk_bytes=7)) == expected


def _recorded(document, run_id="recorded-run-id", tags=None):
    recorded = copy.deepcopy(document)
    recorded["extensions"] = [{"name": "chaosiq"}, {"name": EXTENSION_NAME, "version": 1, "run_id": run_id,
                                                   "tags": tags or {}, "events": []}]
    return recorded


def test_a_recorded_run_id_after_the_run_entries_names_every_activity(tmp_path):
    # chaoslib writes `extensions` last: the run id is known only once the entries are read.
    document = _recorded(_load("marzouk-1.8.1-completed-rollbacks.json"), tags={"team": "sre"})
    assert list(document)[-1] == "extensions" and list(document).index("run") < list(document).index("rollbacks")
    path = _write(tmp_path, "j.json", json.dumps(document))
    run = read_journal(path, chunk_bytes=5)
    assert run.run_id == "recorded-run-id"
    expected_ids = set()
    for phase, entries in (("method", document["run"]), ("rollbacks", document["rollbacks"])):
        assert entries
        counted = {}
        for entry in entries:
            name = entry["activity"]["name"]
            counted[name] = counted.get(name, -1) + 1
            expected_ids.add(activity_id("recorded-run-id", phase, name, counted[name]))
    read_ids = {event.id for event in run.events if event.kind == ACTIVITY and event.phase in ("method", "rollbacks")}
    assert read_ids == expected_ids
    assert all(event.run_id == "recorded-run-id" and event.tags == {"team": "sre"} for event in run.events)
    first = {"extensions": document["extensions"], **{k: v for k, v in document.items() if k != "extensions"}}
    assert _whole(read_journal(_write(tmp_path, "first.json", json.dumps(first)), chunk_bytes=5)) == _whole(run)


def test_without_a_recorded_run_id_the_ids_are_the_journal_identity_s(tmp_path):
    document = _load("generated-basic.json")
    path = _write(tmp_path, "j.json", json.dumps({"run": document["run"], **document}))
    run = read_journal(path, chunk_bytes=3)
    assert run.run_id == run_id_for(document["experiment"]["title"], document["start"], document["node"])


def test_a_status_after_the_run_entries_is_the_status_of_those_without_one(tmp_path):
    document = _load("generated-basic.json")
    for entry in document["run"]:
        del entry["status"]
    del document["status"]
    document["status"] = "interrupted"
    run = read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=11)
    method = [event for event in run.events if event.kind == ACTIVITY and event.phase == "method"]
    assert method and {event.status for event in method} == {"interrupted"}
    assert _whole(run) == _whole(journal_to_run(document, "whole"))


def test_a_repeated_run_member_is_read_as_json_reads_it_the_last_one(tmp_path):
    document = _load("generated-basic.json")
    text = json.dumps(document)
    path = _write(tmp_path, "j.json", '{"run": [{"activity": {"name": "gone"}, "start": 5}], ' + text[1:])
    run = read_journal(path, chunk_bytes=9)
    assert _whole(run) == _whole(journal_to_run(document, "whole"))


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_entries_with_multibyte_text_numbers_and_escapes_straddling_chunks(tmp_path, chunk):
    document = _load("generated-basic.json")
    for index, entry in enumerate(document["run"]):
        entry["activity"]["name"] = f"é☃𝄞 \"quoted\" \\ {index}"
        entry["tolerance_met"] = 123456789 * (index + 1)
        entry["number"] = 1.25e-7
    path = _write(tmp_path, "j.json", json.dumps(document, ensure_ascii=False))
    run = read_journal(path, chunk_bytes=chunk)
    assert {event.name for event in run.events if event.phase == "method" and event.kind == ACTIVITY} == \
        {f"é☃𝄞 \"quoted\" \\ {index}" for index in range(len(document["run"]))}
    assert _whole(run) == _whole(journal_to_run(document, "whole"))
    escaped = _write(tmp_path, "escaped.json", json.dumps(document, ensure_ascii=True))
    assert _whole(read_journal(escaped, chunk_bytes=chunk)) == _whole(run)


def test_a_byte_order_mark_is_dropped_as_the_whole_text_reader_does(tmp_path):
    path = _write(tmp_path, "j.json", b"\xef\xbb\xbf" + json.dumps(_load("generated-basic.json")).encode())
    assert _whole(read_journal(path, chunk_bytes=2)) == _whole(journal_to_run(_load("generated-basic.json"), "x"))


@pytest.mark.parametrize("name", ["generated-basic.json", "marzouk-1.8.1-completed-rollbacks.json"])
def test_truncated_anywhere_gives_json_s_error_with_line_and_column(tmp_path, name):
    with open(os.path.join(JOURNALS, name), "rb") as handle:
        data = handle.read()
    cuts = sorted(set(range(1, len(data), max(1, len(data) // 60))) | {len(data) - 1})
    for cut in cuts:
        for tail in (b"", b" \n"):
            path = _write(tmp_path, "cut.json", data[:cut] + tail)
            expected = _error_of_the_whole_text(path)
            with pytest.raises(JournalError) as caught:
                read_journal(path, chunk_bytes=7)
            assert str(caught.value) == expected, cut


@pytest.mark.parametrize("corrupt", [b",", b"]", b"}", b"x", b":", b"\n,"])
def test_invalid_json_anywhere_gives_json_s_error_with_line_and_column(tmp_path, corrupt):
    with open(os.path.join(JOURNALS, "generated-basic.json"), "rb") as handle:
        data = handle.read()
    checked = sum(_fails_as_the_whole_text(tmp_path, data[:at] + corrupt + data[at:], chunk_bytes=5)
                  for at in range(5, len(data), max(1, len(data) // 40)))
    assert checked > 20


def _fails_as_the_whole_text(tmp_path, data: bytes, chunk_bytes: int) -> bool:
    """Read a chunk at a time, `data` fails with the error its whole text gives; False when
    the whole text gives none (still JSON: the reader says what is wrong with the journal)."""
    path = _write(tmp_path, "bad.json", data)
    expected = _error_of_the_whole_text(path)
    if expected is None:
        return False
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=chunk_bytes)
    assert str(caught.value) == expected, data[-80:]
    return True


@pytest.mark.parametrize("text", [
    '{"experiment": {}, "start": "2024-01-01T00:00:00", "run": [1,]}',
    '{"experiment": {}, "start": "2024-01-01T00:00:00", "run": [{}, ,]}',
    '{"experiment": {}, "start": "2024-01-01T00:00:00",}',
    '{"experiment": {} "start": 1}',
    '{"experiment" {}}',
    '{"experiment": {}, 5: 1}',
    '{"experiment": {}}  {}',
    '{"experiment": {}, "run": [{"a": 1} {"b": 2}]}',
    '{"experiment": {}, "run": [{"a": "\x01"}]}',
    '{"experiment": {}, "run": [{"a": "\\q"}]}',
    '{"experiment": {}, "run": [tru]}',
    '{',
    '{"run": [',
    '{"run": [1',
    '{"run": [1,',
    '{"run"',
    '{"run":',
])
def test_structure_errors_are_json_s_own_on_this_python(tmp_path, text):
    path = _write(tmp_path, "bad.json", text)
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=2)
    assert str(caught.value) == _error_of_the_whole_text(path)


def test_a_number_cut_by_a_chunk_is_read_whole(tmp_path):
    document = _load("generated-basic.json")
    document["zz"] = 12345678901234567890
    path = _write(tmp_path, "j.json", json.dumps(document))
    for chunk in range(1, 30):
        assert read_journal(path, chunk_bytes=chunk).run_id == journal_to_run(document, "x").run_id


def test_utf8_is_checked_before_json_as_when_the_whole_text_was_decoded(tmp_path):
    # The JSON goes wrong first, the bytes further on: the bytes are reported, where the
    # whole text's decoding says.
    data = b'{"experiment": {}, "run": [, "\xff"]}'
    path = _write(tmp_path, "j.json", data)
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=4)
    with pytest.raises(UnicodeDecodeError) as decoding:
        data.decode("utf-8")
    assert decoding.value.start == data.index(b"\xff")
    assert str(caught.value) == f"{path}: byte {decoding.value.start}: not UTF-8 text"


def test_a_later_problem_of_json_wins_over_an_earlier_entry_s_problem(tmp_path):
    # As when the whole text was parsed first: the entry is never looked at.
    path = _write(tmp_path, "j.json", '{"experiment": {}, "start": "2024-01-01T00:00:00", "run": [7], "x": }')
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=3)
    assert str(caught.value) == _error_of_the_whole_text(path)


def test_problems_are_reported_in_the_reader_s_order_not_the_file_s(tmp_path):
    document = _load("generated-basic.json")
    document["run"][1] = 7
    path = _write(tmp_path, "j.json", json.dumps(document))
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=16)
    assert str(caught.value) == f"{path}: $.run[1]: expected a run entry object, got a number"
    # A wrong node (read before the activities) is reported first, wherever it is written.
    document["node"] = 3
    path = _write(tmp_path, "j.json", json.dumps({"run": document.pop("run"), **document}))
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=16)
    assert str(caught.value) == f"{path}: $.node: expected a string, got a number"


def test_a_pre_1_0_entry_after_a_bad_one_is_still_the_reason_given(tmp_path):
    document = _load("generated-basic.json")
    document["run"][0] = 7
    document["run"].append({"kind": "probe", "name": "x"})
    path = _write(tmp_path, "j.json", json.dumps(document))
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=8)
    assert str(caught.value) == f"{path}: $.run: pre-1.0 (2017) journal format is not supported"
    del document["experiment"]
    with pytest.raises(NotAJournal):
        read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=8)


def test_a_lone_surrogate_escape_cut_by_chunks_is_refused(tmp_path):
    document = _load("generated-basic.json")
    document["run"][-1]["activity"]["name"] = "cut \udc80 here"
    path = _write(tmp_path, "j.json", json.dumps(document))
    for chunk in (1, 2, 3, 5):
        with pytest.raises(JournalError, match="lone UTF-16 surrogate"):
            read_journal(path, chunk_bytes=chunk)


def test_read_runs_takes_the_same_chunk_size_and_still_tells_side_files(tmp_path):
    path = os.path.join(JOURNALS, "generated-continuous.json")
    assert [_whole(run) for run in read_runs(path, chunk_bytes=3)] == [_whole(read_journal(path))]
    header = json.dumps({"chaostoolkit-replay": "side-file", "version": 1, "run_id": "r1"})
    assert read_runs(_write(tmp_path, "s.events.jsonl", header + "\n"), chunk_bytes=3)[0].run_id == "r1"


def test_repeated_texts_of_a_read_run_are_held_once(tmp_path):
    document = _load("generated-continuous.json")
    document["run"] = [copy.deepcopy(document["run"][0]) for _ in range(20)]
    run = read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=64)
    method = [event for event in run.events if event.kind == ACTIVITY and event.phase == "method"]
    assert len(method) == 20
    for attribute in ("name", "status", "activity_type"):
        assert len({id(getattr(event, attribute)) for event in method}) == 1, attribute
    assert len({id(event.fields["provider"]) for event in method}) == 1


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk", [64, 4096, 1 << 20])
def test_entries_holding_what_looks_like_the_gap_between_two_entries(tmp_path, indent, chunk):
    # The entries of a chunk are parsed in one go up to the last place that looks like the
    # end of one: here texts and nested arrays of objects look like it too.
    document = _load("generated-basic.json")
    template = document["run"][0]
    document["run"] = []
    for index in range(300):
        entry = copy.deepcopy(template)
        entry["activity"]["name"] = ["}, {", "},\n    {", '"}, {"', "plain"][index % 4] + str(index)
        entry["output"] = [{"a": index}, {"b": [{"c": 1}, {"d": 2}]}] if index % 3 else {"x": "}, {"}
        document["run"].append(entry)
    path = _write(tmp_path, "j.json", json.dumps(document, indent=indent))
    run = read_journal(path, chunk_bytes=chunk)
    assert _whole(run) == _whole(journal_to_run(document, "whole"))
    assert sum(1 for event in run.events if event.kind == ACTIVITY and event.phase == "method") == 300


# -- journals our recorder wrote: its extension repeats every event ------------------------------

RECORDED_TAGS = {"team": "sre", "env": "ci"}


def _recorder_control(**arguments):
    return {"name": "chaostoolkit-replay", "provider": {
        "type": "python", "module": "chaosreplay.controls.recorder", "arguments": arguments}}


@pytest.fixture(scope="module")
def recorded_document(tmp_path_factory):
    """A journal as a run recorded by our control ends (in this process, by chaoslib itself):
    background activities of one name, a failure, a mark, a continuous hypothesis, rollbacks,
    the run's tags, and a live delivery's record (`deliveries`, as chaosreplay.controls.live
    contributes it) naming two events one target missed."""
    from chaoslib.experiment import run_experiment
    from chaoslib.run import EventHandlerRegistry
    from chaoslib.types import Schedule, Strategy

    from chaosreplay.controls.recorder import install

    def action(name, **provider):
        return {"type": "action", "name": name,
                "provider": provider or {"type": "process", "path": "true"}}

    experiment = {
        "version": "1.0.0", "title": "recorded é☃", "description": "streamed",
        "steady-state-hypothesis": {"title": "ok", "probes": [
            {"type": "probe", "name": "always-true", "tolerance": 0,
             "provider": {"type": "process", "path": "true"}}]},
        "method": [*[dict(action("parallel"), background=True) for _ in range(3)],
                   action("fails", type="process", path="false"),
                   action("odd-mark", type="python", module="replay_helpers", func="mark_with_odd_fields"),
                   action("parallel")],
        "rollbacks": [action("undo"), action("undo")],
    }
    registry = EventHandlerRegistry()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(os.path.join(os.path.dirname(JOURNALS), "..", "tests", "experiments"))
        patch.chdir(tmp_path_factory.mktemp("recorded"))
        recorder = install(registry, events_path="", tags=RECORDED_TAGS)
        recorder.add_extension_contributor(lambda journal: {"deliveries": {
            "influx": {"delivered": 1, "undelivered": [], "last_error": None}}})
        journal = run_experiment(experiment, event_handlers=registry.handlers, strategy=Strategy.CONTINUOUS,
                                 schedule=Schedule(continuous_hypothesis_frequency=0.01))
    document = json.loads(json.dumps(journal, allow_nan=False))
    extension = _our_entry(document)
    assert list(document)[-1] == "extensions" and list(extension)[:5] == ["name", "version", "run_id", "tags",
                                                                           "events"]
    kinds = [event["kind"] for event in extension["events"]]
    assert kinds.count("mark") == 1 and kinds.count("activity") >= 11 and document["steady_states"]["during"]
    missed = [event["id"] for event in extension["events"] if event["name"] in ("fails", "undo")][:2]
    extension["deliveries"]["grafana"] = {"delivered": len(kinds) - 2, "undelivered": missed, "last_error": "503"}
    return document


def _our_entry(document):
    (entry,) = [entry for entry in document["extensions"] if entry.get("name") == EXTENSION_NAME]
    return entry


def _reordered(document, first):
    """The document with the members `first` written first, the others after in their order."""
    return {**{key: document[key] for key in first}, **document}


def test_a_recorded_journal_reads_as_its_whole_document_at_every_chunk_size(recorded_document, tmp_path):
    expected = _whole(journal_to_run(recorded_document, "whole"))
    assert expected[0] == _our_entry(recorded_document)["run_id"]
    for indent in (None, 1):
        path = _write(tmp_path, "j.json", json.dumps(recorded_document, indent=indent, ensure_ascii=False))
        for chunk in [*range(1, 40), 4096, 1 << 20]:
            assert _whole(read_journal(path, chunk_bytes=chunk)) == expected, (indent, chunk)


def test_a_recorded_journal_s_extension_anywhere_gives_the_same_run(recorded_document, tmp_path):
    expected = _whole(journal_to_run(recorded_document, "whole"))
    orders = [["extensions"], ["experiment", "start", "extensions"], ["run", "extensions"],
              ["steady_states", "run", "rollbacks", "extensions"], ["extensions", "run"]]
    for first in orders:
        path = _write(tmp_path, "j.json", json.dumps(_reordered(recorded_document, first)))
        assert _whole(read_journal(path, chunk_bytes=13)) == expected, first
    # Its own members in any order: its name or run id after its events, another tool's entry after it.
    document = copy.deepcopy(recorded_document)
    entry = _our_entry(document)
    for first in (["events"], ["events", "tags", "name"], ["deliveries", "events", "run_id"]):
        document["extensions"] = [_reordered(entry, first), {"name": EXTENSION_NAME, "events": 5}]
        path = _write(tmp_path, "j.json", json.dumps(document))
        assert _whole(read_journal(path, chunk_bytes=13)) == expected, first


def test_the_run_holds_the_recorder_s_extension_but_not_its_events(recorded_document, tmp_path):
    from chaosreplay.delivery import undelivered_run

    path = _write(tmp_path, "j.json", json.dumps(recorded_document))
    run = read_journal(path, chunk_bytes=4096)
    entry = _our_entry(recorded_document)
    assert dict(run.extension) == {key: value for key, value in entry.items() if key != "events"}
    # What --only-undelivered re-sends is read from it: the two events missed and the experiment.
    missed = set(entry["deliveries"]["grafana"]["undelivered"])
    resent = undelivered_run(run, "grafana")
    assert {event.id for event in resent.events} == missed | {run.experiment.id}
    assert undelivered_run(run, "influx").events == ()
    assert all(event.tags == RECORDED_TAGS for event in run.events)
    assert [event.name for event in run.events if event.kind == "mark"] == ["odd"]


def test_the_recorded_events_are_read_one_by_one_and_those_the_journal_gives_dropped(
        recorded_document, tmp_path, monkeypatch):
    import chaosreplay.journal as journal_module
    from chaosreplay.jsonstream import JsonStream

    values, merged = [], []
    whole_value, merge = JsonStream.value, journal_module._merge
    monkeypatch.setattr(JsonStream, "value", lambda self: values.append(whole_value(self)) or values[-1])
    monkeypatch.setattr(journal_module, "_merge", lambda derived, recorded: merged.append(recorded) or merge(
        derived, recorded))
    run = read_journal(_write(tmp_path, "j.json", json.dumps(recorded_document)), chunk_bytes=4096)
    # No value read whole holds the extension or its events ...
    entry = _our_entry(recorded_document)
    assert values and not [value for value in values if value in (recorded_document["extensions"], entry,
                                                                  entry["events"])]
    assert not [value for value in values if isinstance(value, dict) and value.get("id") in {
        event["id"] for event in entry["events"]}]
    # ... and of the recorded events, those the journal's own entries give too were not kept.
    (recorded,) = merged
    activities = {event.id for event in run.events if event.kind == ACTIVITY}
    assert activities and not [event for event in recorded if event.id in activities and event.kind == ACTIVITY]
    assert {event.kind for event in recorded} >= {"experiment", "phase", "mark"}
    journal_to_run(recorded_document, "whole")
    (recorded_whole,) = merged[1:]
    assert len([event for event in recorded_whole if event.kind == ACTIVITY]) == len(activities)


def test_a_recorded_activity_the_journal_lacks_is_kept(recorded_document, tmp_path):
    document = copy.deepcopy(recorded_document)
    dropped = document["run"].pop(1)  # (a journal cut short by a crash lacks what the recorder saw)
    document["rollbacks"] = []
    run = read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=64)
    assert _whole(run) == _whole(journal_to_run(document, "whole"))
    names = [event.name for event in run.events if event.kind == ACTIVITY]
    assert names.count("undo") == 2 and names.count(dropped["activity"]["name"]) >= 1
    # One whose id is not the one the journal's entries give its name and place is kept too.
    document = copy.deepcopy(recorded_document)
    (undo, _) = [event for event in _our_entry(document)["events"] if event["name"] == "undo"]
    undo["id"] = "0123456789abcdef"
    run = read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=64)
    assert _whole(run) == _whole(journal_to_run(document, "whole"))
    assert [event.name for event in run.events if event.kind == ACTIVITY].count("undo") == 3


def _invalid_recorded_events(document):
    """(what is wrong, the document with it in its first, middle or last recorded event)."""
    events = _our_entry(document)["events"]
    middle = len(events) // 2
    changes = [
        ("not an object", 0, lambda event: 7),
        ("no id", middle, lambda event: {key: value for key, value in event.items() if key != "id"}),
        ("bad start", -1, lambda event: {**event, "start": "yesterday"}),
        ("bad kind", middle, lambda event: {**event, "kind": "meteor"}),
        ("bad tags", 1, lambda event: {**event, "tags": {"team": 5}}),
        ("huge field", middle + 1, lambda event: {**event, "fields": {"x": 10 ** 400}}),
    ]
    for what, index, change in changes:
        changed = copy.deepcopy(document)
        entries = _our_entry(changed)["events"]
        entries[index] = change(entries[index])
        yield what, changed


def test_an_invalid_recorded_event_gives_the_whole_reader_s_error_and_location(recorded_document, tmp_path):
    for what, document in _invalid_recorded_events(recorded_document):
        for first in ([], ["extensions"]):
            path = _write(tmp_path, "j.json", json.dumps(_reordered(document, first)))
            with pytest.raises(JournalError) as whole:
                journal_to_run(document, path)
            assert whole.value.location.startswith(f"$.extensions[name={EXTENSION_NAME}].events["), what
            for chunk in (1, 9, 4096):
                with pytest.raises(JournalError) as streamed:
                    read_journal(path, chunk_bytes=chunk)
                assert str(streamed.value) == str(whole.value) and "\n" not in str(streamed.value), (what, chunk)


def test_a_recorded_event_s_error_comes_after_the_journal_s_own_and_before_its_entries(recorded_document, tmp_path):
    # The whole reader's order: the journal's node, then the recorded events, then the run entries.
    document = copy.deepcopy(recorded_document)
    _our_entry(document)["events"][2] = {}
    document["run"][0] = 7
    path = _write(tmp_path, "j.json", json.dumps(document))
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=32)
    assert caught.value.location == f"$.extensions[name={EXTENSION_NAME}].events[2]"
    document["node"] = 3
    path = _write(tmp_path, "j.json", json.dumps(document))
    with pytest.raises(JournalError) as caught:
        read_journal(path, chunk_bytes=32)
    assert str(caught.value) == f"{path}: $.node: expected a string, got a number"
    # Another tool's entry named before its events is not ours: its events are never looked at.
    document = copy.deepcopy(recorded_document)
    document["extensions"].insert(0, {"name": "ctkprobe", "events": [7, {"id": 1}]})
    path = _write(tmp_path, "j.json", json.dumps(document))
    assert _whole(read_journal(path, chunk_bytes=32)) == _whole(journal_to_run(recorded_document, "whole"))


def test_a_recorded_journal_cut_or_corrupted_anywhere_gives_json_s_error(recorded_document, tmp_path):
    data = json.dumps(recorded_document, indent=1).encode()
    start = data.index(b'"extensions"')
    checked = sum(_fails_as_the_whole_text(tmp_path, changed, chunk_bytes=7)
                  for at in range(start, len(data), max(1, (len(data) - start) // 40))
                  for changed in (data[:at], data[:at] + b"]" + data[at:], data[:at] + b"," + data[at:]))
    assert checked > 60


def test_members_repeated_after_the_recorded_events_read_as_json_reads_them_the_last(recorded_document, tmp_path):
    # The recorded activities were dropped for the run entries then known: later ones change that.
    text = json.dumps(recorded_document)
    fewer = json.dumps(recorded_document["run"][:2])
    for key, value in (("run", fewer), ("rollbacks", "[]"), ("steady_states", '{"before": null}')):
        path = _write(tmp_path, "j.json", text[:-1] + f', "{key}": {value}}}')
        document = json.loads(text[:-1] + f', "{key}": {value}}}')
        assert _whole(read_journal(path, chunk_bytes=64)) == _whole(journal_to_run(document, "whole")), key
    entry = json.dumps(_our_entry(recorded_document))
    other_id = entry[:-1] + ', "run_id": "another-run"}'
    path = _write(tmp_path, "j.json", text.replace(entry, other_id))
    run = read_journal(path, chunk_bytes=64)
    assert run.run_id == "another-run"
    assert _whole(run) == _whole(journal_to_run(json.loads(text.replace(entry, other_id)), "whole"))


# -- a continuous hypothesis' runs: as many as the run lasted ---------------------------------------

def _many_hypothesis_runs(runs=60):
    """generated-continuous.json with `runs` runs of its continuous hypothesis: some null, some
    met, some not, some of two probes, some probes without a status (they take the run's)."""
    document = _load("generated-continuous.json")
    template = document["steady_states"]["during"][0]
    during = []
    for index in range(runs):
        state = copy.deepcopy(template)
        state["steady_state_met"] = bool(index % 5)
        if index % 4 == 1:
            state["probes"].append(copy.deepcopy(state["probes"][0]))
            state["probes"][-1]["activity"]["name"] = f"second-{index % 3}"
        if index % 6 == 2:
            del state["probes"][0]["status"]
        during.append(None if index % 9 == 8 else state)
    document["steady_states"]["during"] = during
    return document


@pytest.mark.parametrize("run_id_after", [False, True])
def test_many_continuous_hypothesis_runs_read_as_the_whole_document(tmp_path, run_id_after):
    document = _many_hypothesis_runs()
    if run_id_after:
        # The run id and status come after the runs: their probes' ids and default status change then.
        document = _recorded(document, run_id="recorded-later")
        document["status"] = "interrupted"
        document = {**{key: value for key, value in document.items() if key not in ("status", "extensions")},
                    "status": "interrupted", "extensions": document["extensions"]}
    expected = _whole(journal_to_run(document, "whole"))
    during = [event for event in expected[1] if event.kind == ACTIVITY and event.phase == "during"]
    assert len(during) > 60 and {event.status for event in during} >= {"succeeded"}
    assert ("interrupted" in {event.status for event in during}) == run_id_after
    path = _write(tmp_path, "j.json", json.dumps(document, indent=1))
    for chunk in (1, 2, 5, 64, 4096, 1 << 20):
        assert _whole(read_journal(path, chunk_bytes=chunk)) == expected, chunk


def test_the_hypothesis_runs_are_read_one_by_one(tmp_path, monkeypatch):
    from chaosreplay.jsonstream import JsonStream

    document = _many_hypothesis_runs()
    values = []
    whole_value = JsonStream.value
    monkeypatch.setattr(JsonStream, "value", lambda self: values.append(whole_value(self)) or values[-1])
    read_journal(_write(tmp_path, "j.json", json.dumps(document)), chunk_bytes=4096)
    during = document["steady_states"]["during"]
    assert during[0] in values
    assert not [value for value in values if value in (during, document["steady_states"])]


@pytest.mark.parametrize("where, change", [
    ("a run", lambda during: during.__setitem__(3, 7)),
    ("its probes", lambda during: during[5].__setitem__("probes", {"a": 1})),
    ("a probe", lambda during: during[10]["probes"].__setitem__(0, "probe")),
    ("a probe's start", lambda during: during[20]["probes"][0].__setitem__("start", "soon")),
    ("two runs", lambda during: (during[30]["probes"][0].__setitem__("end", 5), during.__setitem__(2, []))),
])
def test_an_invalid_hypothesis_run_gives_the_whole_reader_s_error_in_its_turn(tmp_path, where, change):
    document = _many_hypothesis_runs()
    change(document["steady_states"]["during"])
    path = _write(tmp_path, "j.json", json.dumps(document))
    with pytest.raises(JournalError) as whole:
        journal_to_run(document, path)
    assert whole.value.location.startswith("$.steady_states.during["), where
    for chunk in (3, 4096):
        with pytest.raises(JournalError) as streamed:
            read_journal(path, chunk_bytes=chunk)
        assert str(streamed.value) == str(whole.value), (where, chunk)
    # After the hypothesis before the method, before the method's entries: whatever the file's order.
    document["run"][0] = 7
    moved = _write(tmp_path, "moved.json", json.dumps(_reordered(document, ["run", "experiment"])))
    with pytest.raises(JournalError) as streamed:
        read_journal(moved, chunk_bytes=64)
    assert streamed.value.location == whole.value.location
    document["steady_states"]["before"]["probes"] = 3
    moved = _write(tmp_path, "moved.json", json.dumps(_reordered(document, ["run", "experiment"])))
    with pytest.raises(JournalError) as streamed:
        read_journal(moved, chunk_bytes=64)
    assert streamed.value.location == "$.steady_states.before.probes"
