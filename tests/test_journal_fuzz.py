"""Mutated journals give a clean JournalError or a valid timeline, never a traceback."""
import copy
import json
import os

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaosreplay.cli import replay
from chaosreplay.errors import JournalError
from chaosreplay.events import MARK, Event, mark_id
from chaosreplay.journal import EXTENSION_NAME, journal_to_run

from .conftest import JOURNALS

SEEDS = [
    "generated-basic.json",
    "generated-continuous.json",
    "generated-interrupted-sigterm.json",
    "mdrcs-1.9.0-failed-deviated-k8s.json",
]


def _load(name):
    with open(os.path.join(JOURNALS, name), encoding="utf-8") as handle:
        return json.load(handle)


def _with_recorded_extension(document):
    """`document` as the recorder leaves it: our extension carrying its events and a mark."""
    run = journal_to_run(document, "seed")
    mark = Event(id=mark_id(run.run_id, "peak", 0), run_id=run.run_id, kind=MARK, name="peak",
                 phase="method", start=run.experiment.start, tags={"team": "sre"},
                 fields={"rps": 120, "note": "x"})
    recorded = copy.deepcopy(document)
    recorded["extensions"] = [{
        "name": EXTENSION_NAME, "version": 1, "run_id": run.run_id,
        "events": [event.to_dict() for event in run.events] + [mark.to_dict()],
    }]
    return recorded


SEED_DOCUMENTS = [_load(name) for name in SEEDS]
RECORDED_SEED = _with_recorded_extension(_load("generated-continuous.json"))
SEED_DOCUMENTS.append(RECORDED_SEED)

odd_text = st.text(
    alphabet=st.sampled_from(list("ab \t\n\r\x00\x1b\\\"',=:é☃") + ["\u2028", "\ud7ff"]), max_size=12
)
any_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), odd_text,
    st.lists(st.integers(), max_size=2), st.dictionaries(odd_text, st.integers(), max_size=2),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _parent(document, path):
    current = document
    for part in path[:-1]:
        current = current[part]
    return current


@st.composite
def mutated_journals(draw, seeds=SEED_DOCUMENTS, under=()):
    """A seed with 1 to 4 values dropped or replaced, anywhere below the `under` path."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [path for path in _paths(document) if path[:len(under)] == under and len(path) > len(under)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        action = draw(st.sampled_from(["replace", "drop", "odd-string"]))
        if action == "drop":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif action == "replace":
            parent[path[-1]] = draw(any_value)
        else:
            parent[path[-1]] = draw(odd_text)
    return document


def _assert_reads_cleanly_or_fails_with_a_location(document):
    try:
        run = journal_to_run(document, "fuzz.json")
    except JournalError as error:
        assert str(error).startswith("fuzz.json")
        assert "\n" not in error.location
        return
    starts = [event.start for event in run.events]
    assert starts == sorted(starts)
    assert all(event.start.utcoffset().total_seconds() == 0 for event in run.events)
    json.dumps([event.to_dict() for event in run.events])
    for event in run.events:
        assert all(value is None or isinstance(value, str)
                   for value in (event.phase, event.activity_type))
        assert all(isinstance(key, str) and isinstance(value, str) for key, value in event.tags.items())
        assert isinstance(event.name, str) and isinstance(event.status, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_journals())
def test_mutated_journal_reads_cleanly_or_fails_with_a_location(document):
    _assert_reads_cleanly_or_fails_with_a_location(document)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_journals(seeds=[RECORDED_SEED], under=("extensions", 0)))
def test_mutated_recorded_extension_reads_cleanly_or_fails_with_a_location(document):
    _assert_reads_cleanly_or_fails_with_a_location(document)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(document=mutated_journals())
def test_cli_never_shows_a_traceback(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("fuzz") / "journal.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(replay, [str(path), "--format", "json"])
    assert result.exit_code in (0, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == 3:
        assert len(result.stderr.strip().splitlines()) == 1
