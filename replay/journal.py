"""Read chaoslib journals (1.0 to 1.45) and the recorder's side files into a Run.

A journal gives the activities (its run entries are authoritative: same ids
with or without our extension); the recorder's extension, when present, adds
precise phase boundaries, marks and the interruption. Any input that cannot be
read raises a JournalError naming the file and the JSON location at fault.
"""
import gc
import hashlib
import glob
import json
import logging
import math
import os
import re
import stat
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from datetime import datetime, timezone
from types import MappingProxyType
from typing import (Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Tuple)

from .errors import JournalError, NotAJournal, ReplayError
from .events import (
    ACTIVITY,
    EXPERIMENT,
    INTERRUPTION,
    KINDS,
    MARK,
    PHASE,
    Event,
    Run,
    activity_ids,
    as_utc,
    experiment_id,
    interruption_id,
    json_type_name,
    parse_time,
    phase_id,
    run_id_for,
)
from .jsonstream import CHUNK_BYTES, JsonStream, JsonSyntaxError, StreamDisagrees

__all__ = ["EXTENSION_NAME", "SIDE_FILE_MARKER", "PHASE_NAMES", "read_runs", "read_source", "read_journal",
           "read_side_file", "journal_to_run", "recorded_extension", "error_text", "phase_name",
           "activity_fields", "experiment_fields", "experiment_hash", "expand_inputs", "find_inputs", "Input",
           "order", "cycle_collection_paused"]

EXTENSION_NAME = "chaostoolkit-replay"
SIDE_FILE_MARKER = "side-file"

PHASE_NAMES = {
    "before": "steady-state hypothesis before",
    "method": "method",
    "after": "steady-state hypothesis after",
    "rollbacks": "rollbacks",
}

logger = logging.getLogger("chaostoolkit_replay")
_from_iso = datetime.fromisoformat
_UTC = timezone.utc
_ERROR_TEXT_LIMIT = 200


def read_runs(path: str, chunk_bytes: int = CHUNK_BYTES) -> List[Run]:
    """The runs of a journal (one) or of a side file (one per header: several runs may
    have appended to one fixed `events_path`), told apart by the side file's first line.

    A journal is read a chunk of `chunk_bytes` at a time (see `_streamed_journal_run`)."""
    with _opened(path) as handle:
        head = _head(path, handle)
        if _SIDE_FILE_START.match(head):
            data = head + _read(path, handle)
            if _starts_with_side_file_header(data):
                return _side_file_runs(path, data)
            return [_streamed_journal_run(path, handle, data, chunk_bytes)]
        return [_streamed_journal_run(path, handle, head, chunk_bytes)]


def read_source(path: str) -> Run:
    """The run of a journal or of a side file holding one run."""
    return _only_run(path, read_runs(path))


def read_journal(path: str, chunk_bytes: int = CHUNK_BYTES) -> Run:
    with _opened(path) as handle:
        return _streamed_journal_run(path, handle, _head(path, handle), chunk_bytes)


def read_side_file(path: str) -> Run:
    return _only_run(path, _side_file_runs(path, _read_bytes(path)))


def _only_run(path: str, runs: List[Run]) -> Run:
    if len(runs) != 1:
        raise JournalError(path, "", f"holds {len(runs)} runs (read them with read_runs)")
    return runs[0]


def _streamed_journal_run(path: str, handle: BinaryIO, head: bytes, chunk_bytes: int) -> Run:
    """The journal's run, read in one pass without ever holding its whole text or document.

    Its members other than the run arrays are small and kept whole; the run arrays'
    entries become Events one by one as they are read (`_RunEntries`), and so do the
    probes of a continuous hypothesis' runs (`_DuringStates`) and the events a recorder
    repeats in its `extensions` entry (`_StreamedExtensions`). What needs the
    whole journal (the run id, which a recorder's `extensions` written after `run` may
    give; every check, in the order the reader has always made them) is settled at the
    end (`_Journal.run`). Errors are those of the whole text's reading: UTF-8, then JSON
    (json's own messages, line and column), then the rest, as when the whole text was
    decoded and parsed first.
    """
    stream = JsonStream(lambda size: _read(path, handle, size), lambda: handle.seek(0), head, chunk_bytes)
    escapes: List[bool] = []
    stream.watch(lambda text: escapes or not _SURROGATE_ESCAPE.search(text) or escapes.append(True))
    try:
        with cycle_collection_paused():
            if stream.next_char() != "{":
                # Not an object, so no journal: json tells what it is, or what is wrong with it.
                return _whole_journal_run(path, stream.rest())
            journal = _Journal(_Reader(path))
            for key in stream.members():
                if key in _RUN_ARRAYS and stream.next_char() == "[":
                    journal.run_entries(key).read(stream.entries())
                elif key == "extensions" and stream.next_char() == "[":
                    journal.extensions().read(stream)
                elif key == "steady_states" and stream.next_char() == "{":
                    journal.add(key, _streamed_steady_states(stream, journal))
                else:
                    journal.add(key, stream.value())
            stream.end()
            run = journal.run()
    except UnicodeDecodeError:
        # Where: as the whole text's decoding says it (rare enough to read the file again for).
        handle.seek(0)
        _decoded(path, handle.read())
        raise JournalError(path, "", "not UTF-8 text") from None
    except (StreamDisagrees, _ReadWhole):
        handle.seek(0)
        return _whole_journal_run(path, _decoded(path, handle.read()))
    except (JsonSyntaxError, RecursionError, ValueError) as error:
        if isinstance(error, ReplayError):
            raise
        raise _json_error(path, error) from None
    if escapes:
        _reject_lone_surrogates(path, run.events)
    return run


def _whole_journal_run(path: str, text: str) -> Run:
    with cycle_collection_paused():
        document = _parsed_json(path, text)
        may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
        del text
        run = journal_to_run(document, path)
    if may_hold_surrogates:
        _reject_lone_surrogates(path, run.events)
    return run


@contextmanager
def cycle_collection_paused():
    """Pause the cyclic garbage collector while big acyclic data is built and used.

    Turning a journal into a Run allocates one object after another and frees
    none, so the collector would run again and again over a growing heap that
    holds no cycle (about 40% of the reading time of a 100,000-activity
    journal). Nothing is leaked: these objects are freed by reference counting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_bytes(path: str) -> bytes:
    with _opened(path) as handle:
        data = _read(path, handle)
    if not data.strip():
        raise JournalError(path, "", "empty file")
    return data


@contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    """The file, open for reading once checked to be a regular file."""
    try:
        # Opened without blocking and checked before reading: a FIFO would wait for a
        # writer forever and /dev/zero would never end.
        handle = open(path, "rb", opener=_without_blocking)
    except IsADirectoryError:
        raise JournalError(path, "", "is a directory, not a journal file") from None
    except FileNotFoundError:
        raise JournalError(path, "", "no such file") from None
    except OSError as error:
        raise JournalError(path, "", f"cannot read: {error.strerror}") from None
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise JournalError(path, "", "is a directory, not a journal file")
        if not stat.S_ISREG(mode):
            raise JournalError(path, "", "not a regular file (a FIFO, device or socket), not a journal")
        yield handle


def _read(path: str, handle: BinaryIO, size: int = -1) -> bytes:
    try:
        return handle.read(size)
    except IsADirectoryError:
        raise JournalError(path, "", "is a directory, not a journal file") from None
    except OSError as error:
        raise JournalError(path, "", f"cannot read: {error.strerror}") from None


# Enough to tell a side file's header from a journal's start.
_HEAD_BYTES = 1 << 16


def _head(path: str, handle: BinaryIO) -> bytes:
    """The file's first bytes: `_HEAD_BYTES` (or all), and more while they are whitespace
    (a file of nothing else is refused as empty)."""
    head = _read(path, handle, _HEAD_BYTES)
    while not head.strip():
        more = _read(path, handle, _HEAD_BYTES)
        if not more:
            raise JournalError(path, "", "empty file")
        head += more
    return head


def _without_blocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


# The recorder writes the header first, compact, its first key ours: a side file is told
# by its first bytes, however long the header (a long title) and however big a journal.
_SIDE_FILE_START = re.compile(rb'\s*\{\s*"' + EXTENSION_NAME.encode() + rb'"\s*:')


def _starts_with_side_file_header(data: bytes) -> bool:
    if not _SIDE_FILE_START.match(data):
        return False
    first = data.split(b"\n", 1)[0]
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return _is_side_file_header(header)


def _is_side_file_header(record: Any) -> bool:
    return isinstance(record, dict) and record.get(EXTENSION_NAME) == SIDE_FILE_MARKER


# A lone UTF-16 surrogate can only come in as a JSON escape (raw bytes would not be UTF-8).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_ESCAPE_BYTES = re.compile(_SURROGATE_ESCAPE.pattern.encode())
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_lone_surrogates(path: str, events: Iterable[Event]) -> None:
    """A lone surrogate (`"\\udc80"`) is not text: no sink can encode it, so an event
    holding one is refused, naming where, instead of failing in a sink."""
    for event in events:
        texts = [("name", event.name), ("status", event.status), ("phase", event.phase),
                 ("activity_type", event.activity_type)]
        texts += [(f"tags.{key}", f"{key}{value}") for key, value in event.tags.items()]
        texts += [(f"fields.{key}", f"{key}{value}") for key, value in event.fields.items()]
        for where, text in texts:
            if isinstance(text, str) and _SURROGATE.search(text):
                raise JournalError(path, f"{event.kind} {event.id} {where}".encode("ascii", "backslashreplace").decode(),
                                   "contains a lone UTF-16 surrogate (like \\udc80): not text")


def _decoded(path: str, data: bytes) -> str:
    try:
        # chaostoolkit writes UTF-8; json.loads(bytes) would guess UTF-16/32 instead of failing.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JournalError(path, f"byte {error.start}", "not UTF-8 text") from None


def _parsed_json(path: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _json_error(path, JsonSyntaxError(error.msg, error.lineno, error.colno,
                                                truncated=error.pos >= len(text.rstrip()))) from None
    except (RecursionError, ValueError) as error:
        raise _json_error(path, error) from None


def _json_error(path: str, error: Exception) -> JournalError:
    """What json found wrong with a journal's text, said on one line."""
    if isinstance(error, JsonSyntaxError):
        reason = "truncated JSON" if error.truncated else "invalid JSON"
        return JournalError(path, f"line {error.lineno} column {error.colno}", f"{reason}: {error.msg}")
    if isinstance(error, RecursionError):
        return JournalError(path, "", "JSON nested too deeply")
    # Python refuses integers of over 4,300 digits (CVE-2020-10735).
    return JournalError(path, "", "a number of more than 4,300 digits")


class _Reader:
    """Walks one journal document, tracking the JSON location for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, location: str, message: str) -> JournalError:
        return JournalError(self.source, location, message)

    def expect(self, value: Any, types, location: str, what: str) -> Any:
        if not isinstance(value, types) or isinstance(value, bool) and bool not in _as_tuple(types):
            raise self.fail(location, f"expected {what}, got {json_type_name(value)}")
        return value

    def time(self, value: Any, location: str) -> datetime:
        if not isinstance(value, str):
            raise self.fail(location, f"expected an ISO-8601 timestamp, got {json_type_name(value)}")
        try:
            return parse_time(value)
        except (ValueError, OverflowError):
            raise self.fail(location, f"unparsable timestamp {value[:40]!r}") from None

    def optional_time(self, value: Any, location: str) -> Optional[datetime]:
        return None if value is None else self.time(value, location)


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def recorded_extension(document: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Our journal-level `extensions` entry, if the recorder wrote one."""
    extensions = document.get("extensions")
    if not isinstance(extensions, list):
        return None
    for entry in extensions:
        if isinstance(entry, dict) and entry.get("name") == EXTENSION_NAME:
            return entry
    return None


def journal_to_run(document: Any, source: str) -> Run:
    """The run of a journal document already parsed whole (as `read_journal` reads a file)."""
    reader = _Reader(source)
    members = reader.expect(document, dict, "$", "a journal object")
    journal = _Journal(reader, known=members)
    for key, value in members.items():
        if key in _RUN_ARRAYS and isinstance(value, list):
            journal.run_entries(key).read(value)
        else:
            journal.add(key, value)
    return journal.run()


# The journal's arrays of run entries: each entry becomes its Event as it comes (and, read
# from a file, is dropped then: a journal of 10^6 activities is mostly these entries).
_RUN_ARRAYS = {"run": ("method", "$.run"), "rollbacks": ("rollbacks", "$.rollbacks")}


class _Journal:
    """A journal's members, given in their order: the run arrays as their entries' Events
    (`_RunEntries`), the others as they are. `run()` makes the Run, checking everything
    in the order the reader always has (the first problem found is the one reported)."""

    def __init__(self, reader: "_Reader", known: Optional[Mapping[str, Any]] = None):
        self.reader = reader
        self.members: Dict[str, Any] = {}
        # The whole document, when it is at hand: its run id is then known from the start.
        self._known = known
        # The run's texts met again and again (names, statuses, types), held once.
        self._texts: Dict[str, str] = {}

    def add(self, key: str, value: Any) -> None:
        self.members[key] = value

    def run_entries(self, key: str) -> "_RunEntries":
        """The run array `key`, whose entries are given next (a repeated key replaces it)."""
        known = self._known if self._known is not None else self.members
        phase, location = _RUN_ARRAYS[key]
        entries = self.members[key] = _RunEntries(
            self.reader, phase, location, _run_id_so_far(known), _run_status(known), self._texts)
        return entries

    def extensions(self) -> "_StreamedExtensions":
        """The `extensions` array, whose entries are read next (a repeated key replaces it)."""
        extensions = self.members["extensions"] = _StreamedExtensions(self.reader, self.members)
        return extensions

    def run(self) -> Run:
        reader, journal = self.reader, self.members
        _reject_non_journals(reader, journal)

        experiment = reader.expect(journal["experiment"], dict, "$.experiment", "an object")
        title = experiment.get("title", "")
        reader.expect(title, str, "$.experiment.title", "a string")
        start_text = journal.get("start")
        start = reader.time(start_text, "$.start")
        end = reader.optional_time(journal.get("end"), "$.end")
        status = journal.get("status")
        if status is not None:
            reader.expect(status, str, "$.status", "a string")
        node = journal.get("node") or ""
        reader.expect(node, str, "$.node", "a string")

        extension = _our_extension(journal)
        recorded = _recorded_events(reader, extension, journal) if extension else []
        run_id = _recorded_run_id(reader, extension) or run_id_for(title, start_text, node)

        run_status = status or "unknown"
        activities, phases = _derive_activities(reader, journal, run_id, run_status)

        steady_states = journal.get("steady_states") or {}
        experiment_event = Event(
            id=experiment_id(run_id),
            run_id=run_id,
            kind=EXPERIMENT,
            name=title,
            start=start,
            end=end,
            status=run_status,
            fields=experiment_fields(
                journal.get("deviated"),
                _steady_state_met(steady_states.get("before")),
                _steady_state_met(steady_states.get("after")),
                activities,
            ),
        )
        interruption = _derived_interruption(reader, journal, run_id, activities, end or start)
        derived = [experiment_event, *phases, *activities]
        del activities, phases  # each event is held once: replaced below, the old one is freed
        if interruption:
            derived.append(interruption)
        run_tags = _recorded_tags(reader, extension, recorded) if extension else None
        if run_tags:
            # One mapping for every event without tags of its own (all those the journal
            # gives): one each would be a fifth of a big run's memory.
            shared_tags = MappingProxyType(dict(run_tags))
            for index, event in enumerate(derived):
                derived[index] = event._replace(tags=shared_tags) if not event.tags \
                    else event.evolve(tags={**run_tags, **event.tags})
        return Run(
            run_id,
            reader.source,
            _merge(derived, recorded),
            configuration=_mapping(experiment.get("configuration")),
            secrets=_mapping(experiment.get("secrets")),
            controls=tuple(experiment["controls"]) if isinstance(experiment.get("controls"), list) else (),
            extension={key: value for key, value in extension.items() if key != "events"} if extension else {},
            experiment_hash=_recorded_experiment_ref(extension) or experiment_hash(experiment),
            chaoslib_version=(journal.get("chaoslib-version") if isinstance(journal.get("chaoslib-version"), str)
                              else None),
        )


def _run_id_so_far(journal: Mapping[str, Any]) -> str:
    """The run id as the members given so far tell it, unchecked (`_Journal.run` checks them)."""
    extension = _our_extension(journal)
    recorded = extension.get("run_id") if extension else None
    if isinstance(recorded, str) and recorded:
        return recorded
    experiment = journal.get("experiment")
    title = experiment.get("title", "") if isinstance(experiment, dict) else ""
    return run_id_for(title, journal.get("start"), journal.get("node") or "")


def _run_status(journal: Mapping[str, Any]) -> Any:
    return journal.get("status") or "unknown"


class _RunEntries:
    """The Events of a run array's entries (`$.run`, `$.rollbacks`), made as each entry is
    given, with the run id and status known then. `events` gives them with the run's
    final id and status (a recorder's extension after `run` may change the id).

    A bad entry's error is kept for `_Journal.run` to raise in its turn (an earlier part
    of the journal may be wrong too); the entries after it are only looked at for the
    pre-1.0 format, which is reported before anything else."""

    __slots__ = ("reader", "phase", "location", "run_id", "run_status", "texts", "_events", "_defaulted",
                 "error", "pre_1_0")

    def __init__(self, reader: "_Reader", phase: str, location: str, run_id: str, run_status: Any,
                 texts: Dict[str, str]):
        self.reader, self.phase, self.location = reader, phase, location
        self.run_id, self.run_status, self.texts = run_id, run_status, texts
        self._events: List[Event] = []
        # The entries that have no status: they take the run's (see `_activity_event`).
        self._defaulted: List[int] = []
        self.error: Optional[JournalError] = None
        self.pre_1_0 = False

    def read(self, entries: Iterable[Any]) -> None:
        """Make the entries' Events, in order (the array's entries, all of them)."""
        reader, location, run_id, phase, run_status = self.reader, self.location, self.run_id, self.phase, \
            self.run_status
        texts, events, defaulted = self.texts, self._events, self._defaulted
        id_of, seen, share = activity_ids(run_id, phase), {}, texts.setdefault
        entries = iter(entries)
        # Runs once per activity of a journal that can have 10^6: locals only.
        for index, entry in enumerate(entries):
            try:
                event = _activity_event(reader, entry, location, index, run_id, phase, id_of, seen, run_status,
                                        share)
            except JournalError as error:
                self._failed(error, _is_pre_1_0_entry(entry), entries)
                return
            # A pre-1.0 entry has no activity name: only a nameless one needs the closer look.
            if not event.name and phase == "method" and _is_pre_1_0_entry(entry):
                self._failed(reader.fail("$.run", _PRE_1_0), True, entries)
                return
            if entry.get("status") is None:
                defaulted.append(index)
            events.append(event)

    def _failed(self, error: JournalError, pre_1_0: bool, rest: Iterator[Any]) -> None:
        self.error, self._events = error, []
        self.pre_1_0 = self.phase == "method" and pre_1_0
        for entry in rest:  # read to the end (JSON errors come first), looked at for pre-1.0 only
            if self.phase == "method" and not self.pre_1_0:
                self.pre_1_0 = _is_pre_1_0_entry(entry)

    def events(self, run_id: str, run_status: str) -> List[Event]:
        """The entries' Events of the run `run_id` of status `run_status` (handed over once)."""
        if self.error is not None:
            raise self.error
        events, self._events = self._events, []
        return _of_the_run(events, self.phase, self.run_id, self.run_status, self._defaulted, run_id, run_status, {})


def _of_the_run(events: List[Event], phase: str, made_with_id: str, made_with_status: Any, defaulted: List[int],
                run_id: str, run_status: str, ordinals: Dict[str, int]) -> List[Event]:
    """A phase's Events, made with the run id and status the members read until then told,
    as those of the run `run_id` of status `run_status`; `defaulted`: the positions of those
    whose entry had no status; `ordinals`: the phase's activities before these, per name."""
    if run_id != made_with_id:
        # The run id came after the entries: each activity's id is the one of its run.
        id_of = activity_ids(run_id, phase)
        for index, event in enumerate(events):
            ordinal = ordinals.get(event.name, 0)
            ordinals[event.name] = ordinal + 1
            # _replace: the event is checked and frozen already, only its ids change.
            events[index] = event._replace(id=id_of(event.name, ordinal), run_id=run_id)
    defaulted_status = _status_of_unfinished(run_status)
    if defaulted and defaulted_status != _status_of_unfinished(made_with_status):
        # (every entry has its Event: an index is a position in `events`)
        for index in defaulted:
            events[index] = events[index]._replace(status=defaulted_status)
    return events


def _status_of_unfinished(run_status: Any) -> str:
    # As `_activity_event` gives an entry without a status.
    return run_status if run_status in ("interrupted", "aborted") else "unknown"


def experiment_hash(experiment: Mapping[str, Any]) -> str:
    """chaoslib's `experiment_hash` (1.27+; older chaoslib has none): blake2b, 12 bytes, of the
    experiment as canonical JSON. chaostoolkit-prometheus' default `experiment_ref`."""
    canonical = json.dumps(experiment, skipkeys=True, sort_keys=True, indent=None, default=str)
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=12).hexdigest()


def _recorded_experiment_ref(extension: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The `experiment_ref` a live pushgateway control used: a replay keeps to the same group."""
    ref = (extension or {}).get("experiment_ref")
    return ref if isinstance(ref, str) and ref else None


def _mapping(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


_PRE_1_0 = "pre-1.0 (2017) journal format is not supported"


def _reject_non_journals(reader: _Reader, journal: Dict[str, Any]) -> None:
    run = journal.get("run")
    if "experiment" not in journal or ("start" not in journal and "run" not in journal):
        raise NotAJournal(reader.source, "$", "not a chaostoolkit journal (no experiment/start/run)")
    if isinstance(run, _RunEntries) and run.pre_1_0:
        raise reader.fail("$.run", _PRE_1_0)


def _is_pre_1_0_entry(entry: Any) -> bool:
    """chaoslib before 0.8 wrote run entries without an activity, and then
    method steps (a `title` holding `action`/`probes` objects) instead of named
    activities: neither has the names, statuses or phases a replay is made of."""
    if not isinstance(entry, dict):
        return False
    if "kind" in entry and "activity" not in entry:
        return True
    activity = entry.get("activity")
    return (isinstance(activity, dict) and "name" not in activity and "title" in activity
            and any(key in activity for key in ("action", "probes", "probe")))


def _recorded_run_id(reader: _Reader, extension: Optional[Dict[str, Any]]) -> Optional[str]:
    if not extension or extension.get("run_id") is None:
        return None
    return reader.expect(extension["run_id"], str, "$.extensions[].run_id", "a string")


def _recorded_tags(reader: _Reader, extension: Dict[str, Any], recorded: List[Event]) -> Mapping[str, str]:
    """The recorder's user tags, which every event of the run carries in the side file and
    live: recorded in the extension, or (older recorders wrote no `tags`) on its experiment event."""
    location = f"$.extensions[name={EXTENSION_NAME}].tags"
    tags = extension.get("tags")
    if tags is None:
        started = [event for event in recorded if event.kind == EXPERIMENT]
        return started[0].tags if started else {}
    reader.expect(tags, dict, location, "an object")
    for key, value in tags.items():
        reader.expect(value, str, f"{location}.{key}", "a string")
    return tags


_RECORDED_EVENTS = f"$.extensions[name={EXTENSION_NAME}].events"


def _recorded_events(reader: _Reader, extension: Dict[str, Any], journal: Mapping[str, Any]) -> List[Event]:
    entries = extension.get("events", [])
    if isinstance(entries, _RecordedEvents):
        return entries.events(extension, journal)
    reader.expect(entries, list, _RECORDED_EVENTS, "an array")
    return [_event_from_record(reader, entry, f"{_RECORDED_EVENTS}[{i}]") for i, entry in enumerate(entries)]


def _our_extension(journal: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """`recorded_extension` of a journal's members, its `extensions` read whole or streamed."""
    extensions = journal.get("extensions")
    if isinstance(extensions, _StreamedExtensions):
        return extensions.ours
    return recorded_extension(journal)


class _ReadWhole(Exception):
    """The stream's shortcut does not hold for this journal (a member it relied on came
    again later): it is read whole instead, as a document whose keys repeat is rare."""


class _StreamedExtensions:
    """A journal's `extensions` array read entry by entry, as `recorded_extension` reads it
    whole: `ours` is the first object whose `name` is ours, its members as they are but
    `events`, whose entries become Events as they are read (`_RecordedEvents`). The live
    recorder repeats every event of the run there: held whole, they were as big as the run."""

    __slots__ = ("reader", "journal", "ours")

    def __init__(self, reader: _Reader, journal: Mapping[str, Any]):
        self.reader, self.journal = reader, journal
        self.ours: Optional[Dict[str, Any]] = None

    def read(self, stream: JsonStream) -> None:
        for _ in stream.slots():
            if self.ours is not None or stream.next_char() != "{":
                stream.value()  # (only the first of ours counts; an entry that is no object is skipped)
                continue
            members: Dict[str, Any] = {}
            for key in stream.members():
                # Another tool's entry (its name given first) keeps its events as they are.
                if key == "events" and stream.next_char() == "[" and members.get("name", EXTENSION_NAME) == EXTENSION_NAME:
                    members[key] = _RecordedEvents(self.reader, self.journal, members.get("run_id"))
                    members[key].read(stream.entries())
                else:
                    members[key] = stream.value()
            if members.get("name") == EXTENSION_NAME:
                self.ours = members


class _RecordedEvents:
    """Our extension's `events`, made Events one by one as they are read, as
    `_recorded_events` makes them (the first bad one's error kept for `_Journal.run` to
    raise in its turn).

    Only those `_merge` may keep are held: a recorded activity the journal's own entries
    give too (its id made of the run id, phase, name and ordinal, the journal's entries
    holding that name that often in that phase) is dropped as it is read, when the run
    id and those entries are known by then, as the recorder writes its journal (its run
    id first in its entry, `extensions` after the run's entries). Should a member this
    relied on come again later, `events` has the journal read whole instead."""

    __slots__ = ("reader", "_events", "error", "_run_id", "_basis", "_derived", "_seen", "_ids", "_relied")

    def __init__(self, reader: _Reader, journal: Mapping[str, Any], run_id: Any):
        self.reader = reader
        self._events: List[Event] = []
        self.error: Optional[JournalError] = None
        self._run_id = run_id
        # The members the derived activities come from, as they were when this was read,
        # and those an event was dropped for.
        self._basis = {key: journal.get(key) for key in _DERIVED_FROM.values()}
        self._relied: set = set()
        self._derived = _derived_names(journal) if isinstance(run_id, str) and run_id else None
        self._seen: Dict[Tuple[Any, str], int] = {}
        self._ids: Dict[Any, Callable[[str, int], str]] = {}

    def read(self, records: Iterable[Any]) -> None:
        records = iter(records)
        events, reader, dropped = self._events, self.reader, self._dropped
        for index, record in enumerate(records):
            try:
                event = _event_from_record(reader, record, f"{_RECORDED_EVENTS}[{index}]")
            except JournalError as error:
                self.error, self._events = error, []
                for _ in records:  # read to the end: a JSON error further on comes first
                    pass
                return
            if not dropped(event):
                events.append(event)

    def _dropped(self, event: Event) -> bool:
        """Whether the journal's own entries give an activity of this id (`_merge` keeps theirs)."""
        if self._derived is None or event.kind != ACTIVITY:
            return False
        key = (event.phase, event.name)
        ordinal = self._seen.get(key, 0)
        self._seen[key] = ordinal + 1
        if self._derived.get(key, 0) <= ordinal:
            return False
        id_of = self._ids.get(event.phase)
        if id_of is None:
            id_of = self._ids[event.phase] = activity_ids(self._run_id, event.phase)
        # (the recorder numbers a name's activities in the order it writes them: if not, it is kept)
        if id_of(event.name, ordinal) != event.id:
            return False
        self._relied.add(_DERIVED_FROM.get(event.phase, "steady_states"))
        return True

    def events(self, extension: Mapping[str, Any], journal: Mapping[str, Any]) -> List[Event]:
        """The Events recorded (handed over once), `extension` being the entry they are of."""
        if self.error is not None:
            raise self.error
        if self._relied and (extension.get("run_id") != self._run_id
                             or any(journal.get(key) is not self._basis[key] for key in self._relied)):
            raise _ReadWhole()
        events, self._events = self._events, []
        return events


# The journal's member each phase's activities are derived from (`_derive_activities`).
_DERIVED_FROM = {"method": "run", "rollbacks": "rollbacks", "before": "steady_states", "during": "steady_states",
                 "after": "steady_states"}


def _derived_names(journal: Mapping[str, Any]) -> Dict[Tuple[str, str], int]:
    """How many activities of each (phase, name) the journal's members read so far give
    (`_derive_activities`); those it cannot tell (a member that will fail) count none."""
    counts: Dict[Tuple[str, str], int] = {}
    for key, (phase, _) in _RUN_ARRAYS.items():
        entries = journal.get(key)
        if isinstance(entries, _RunEntries) and entries.error is None:
            for event in entries._events:
                name = (phase, event.name)
                counts[name] = counts.get(name, 0) + 1
    steady_states = journal.get("steady_states")
    if not isinstance(steady_states, dict):
        return counts
    during = steady_states.get("during")
    if isinstance(during, _DuringStates):
        for state in during.states if during.error is None else ():
            for event in state.probes if state is not None else ():
                counts[("during", event.name)] = counts.get(("during", event.name), 0) + 1
        during = None
    states = [("before", steady_states.get("before")), ("after", steady_states.get("after"))]
    states += [("during", state) for state in during] if isinstance(during, list) else []
    for phase, state in states:
        probes = state.get("probes") if isinstance(state, dict) else None
        for entry in probes if isinstance(probes, list) else ():
            activity = entry.get("activity") if isinstance(entry, dict) else None
            name = activity.get("name", "") if isinstance(activity, dict) else None
            if isinstance(name, str):
                counts[(phase, name)] = counts.get((phase, name), 0) + 1
    return counts


def _event_from_record(reader: _Reader, entry: Any, location: str) -> Event:
    reader.expect(entry, dict, location, "an event object")
    try:
        event = Event.from_dict(entry)
    except KeyError as error:
        raise reader.fail(location, f"missing key {error.args[0]!r}") from None
    except (TypeError, ValueError, OverflowError) as error:
        raise reader.fail(location, f"invalid event: {error}") from None
    for key, value in event.fields.items():
        if isinstance(value, (int, float)) and not _finite(value):
            raise reader.fail(location, f"invalid event: fields.{key}: number out of range")
    if event.kind == MARK and (event.end is None or event.status == "unknown"):
        # Earlier recorders stamped marks `unknown` without an end: a mark is a succeeded instant.
        event = event.evolve(end=event.end or event.start, status="succeeded")
    return event


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer beyond any float: no sink stores it as a number
        return False


def experiment_fields(deviated: Any, steady_state_before_met: Optional[bool],
                      steady_state_after_met: Optional[bool], activities: Sequence[Event]) -> Dict[str, Any]:
    """The experiment event's summary of a run, from the journal or from the recorder."""
    return {
        "deviated": bool(deviated),
        "steady_state_before_met": steady_state_before_met,
        "steady_state_after_met": steady_state_after_met,
        "activities": len(activities),
        "failed_activities": sum(1 for event in activities if event.status == "failed"),
    }


def _steady_state_met(state: Any) -> Optional[bool]:
    if isinstance(state, dict) and "steady_state_met" in state:
        return bool(state["steady_state_met"])
    return None


def _streamed_steady_states(stream: JsonStream, journal: "_Journal") -> Dict[str, Any]:
    """The `steady_states` object, its `during` runs read one by one (`_DuringStates`)."""
    steady_states: Dict[str, Any] = {}
    for key in stream.members():
        if key == "during" and stream.next_char() == "[":
            steady_states[key] = _DuringStates(journal).read(stream)
        else:
            steady_states[key] = stream.value()
    return steady_states


class _DuringStates:
    """A continuous hypothesis' runs (`$.steady_states.during`), each read whole and its
    probes made Events at once (`_StateProbes`), as `_RunEntries` does with the run's
    entries: they are as many as the run lasted. `states` holds them in their order (None
    for a null run, as `_derive_activities` skips it). The first run in error keeps the
    error, for `_derive_activities` to raise in its turn; the runs after it are not kept."""

    __slots__ = ("journal", "states", "error", "_seen")

    def __init__(self, journal: "_Journal"):
        self.journal = journal
        self.states: List[Optional[_StateProbes]] = []
        self.error: Optional[JournalError] = None
        # The probes of every run so far, per name: `_derive_activities` numbers them across runs.
        self._seen: Dict[str, int] = {}

    def read(self, stream: JsonStream) -> "_DuringStates":
        known = self.journal.members
        run_id, run_status = _run_id_so_far(known), _run_status(known)
        reader, share, seen = self.journal.reader, self.journal._texts.setdefault, self._seen
        id_of = activity_ids(run_id, "during")
        for index in stream.slots():
            state = stream.value()
            if state is None or self.error is not None:
                self.states.append(None)
                continue
            location = f"$.steady_states.during[{index}]"
            try:
                reader.expect(state, dict, location, "an object")
                entries = reader.expect(state.get("probes") or [], list, f"{location}.probes", "an array")
                probes = [_activity_event(reader, entry, f"{location}.probes", number, run_id, "during", id_of, seen,
                                          run_status, share) for number, entry in enumerate(entries)]
            except JournalError as error:
                self.error = error
                self.states.append(_StateProbes(run_id, run_status, [], None, [], error))
                continue
            defaulted = [number for number, entry in enumerate(entries) if entry.get("status") is None]
            self.states.append(_StateProbes(run_id, run_status, probes, _steady_state_met(state), defaulted, None))
        return self


class _StateProbes:
    """One run of the continuous hypothesis: its probes' Events, made with the run id and
    status known then (`events` gives them with the final ones, as `_RunEntries.events`)."""

    __slots__ = ("run_id", "run_status", "probes", "met", "defaulted", "error")

    def __init__(self, run_id: str, run_status: Any, probes: List[Event], met: Optional[bool],
                 defaulted: List[int], error: Optional[JournalError]):
        self.run_id, self.run_status, self.probes, self.met = run_id, run_status, probes, met
        self.defaulted, self.error = defaulted, error

    def events(self, run_id: str, run_status: str, ordinals: Dict[str, int]) -> Tuple[List[Event], Optional[bool]]:
        """(the probes' Events, whether the hypothesis was met); `ordinals` counts the probes of
        the runs before, per name."""
        if self.error is not None:
            raise self.error
        events, self.probes = self.probes, []
        return _of_the_run(events, "during", self.run_id, self.run_status, self.defaulted, run_id, run_status,
                           ordinals), self.met


def _derive_activities(
    reader: _Reader, journal: Dict[str, Any], run_id: str, run_status: str
) -> Tuple[List[Event], List[Event]]:
    """Activity events in chaoslib's order of play, and their phase events."""
    steady_states = journal.get("steady_states")
    if steady_states is None:
        steady_states = {}
    reader.expect(steady_states, dict, "$.steady_states", "an object")

    groups: List[Tuple[str, int, str, Any]] = []  # (phase, iteration, location, state or entries)
    if steady_states.get("before") is not None:
        groups.append(("before", 0, "$.steady_states.before", steady_states["before"]))
    during = steady_states.get("during") or []
    if isinstance(during, _DuringStates):
        during = during.states
    reader.expect(during, list, "$.steady_states.during", "an array")
    for index, state in enumerate(during):
        if state is not None:
            groups.append(("during", index + 1, f"$.steady_states.during[{index}]", state))
    groups.append(("method", 0, "$.run", journal.get("run") or []))
    if steady_states.get("after") is not None:
        groups.append(("after", 0, "$.steady_states.after", steady_states["after"]))
    groups.append(("rollbacks", 0, "$.rollbacks", journal.get("rollbacks") or []))

    ordinals: Dict[str, Dict[str, int]] = {}  # per phase, per name: activities seen so far
    share = {}.setdefault  # the run's repeated texts held once (see `_activity_event`)
    activities: List[Event] = []
    phases: List[Event] = []
    for phase, iteration, location, content in groups:
        met = None
        if isinstance(content, _StateProbes):
            events, met = content.events(run_id, run_status, ordinals.setdefault(phase, {}))
            activities.extend(events)
            phase_event = _phase_event(run_id, phase, iteration, events, met)
            if phase_event:
                phases.append(phase_event)
            continue
        if isinstance(content, _RunEntries):
            events = content.events(run_id, run_status)
            activities.extend(events)
            phase_event = _phase_event(run_id, phase, iteration, events, met)
            if phase_event:
                phases.append(phase_event)
            continue
        if phase in ("method", "rollbacks"):
            entries = reader.expect(content, list, location, "an array")
            entries_location = location
        else:
            reader.expect(content, dict, location, "an object")
            entries_location = f"{location}.probes"
            entries = reader.expect(content.get("probes") or [], list, entries_location, "an array")
            met = _steady_state_met(content)
        id_of = activity_ids(run_id, phase)
        seen = ordinals.setdefault(phase, {})
        events = [
            _activity_event(reader, entry, entries_location, i, run_id, phase, id_of, seen, run_status, share)
            for i, entry in enumerate(entries)
        ]
        activities.extend(events)
        phase_event = _phase_event(run_id, phase, iteration, events, met)
        if phase_event:
            phases.append(phase_event)
    return activities, phases


def _activity_event(
    reader: _Reader,
    entry: Any,
    entries_location: str,
    index: int,
    run_id: str,
    phase: str,
    id_of: Callable[[str, int], str],
    ordinals: Dict[str, int],
    run_status: str,
    share: Callable[[str, str], str],
) -> Event:
    """The entry's Event. `share` (a dict's `setdefault`) gives the run's one copy of a text:
    a big run repeats a few names, statuses and types in every entry, and each Event holds them."""
    # Runs once per activity: the common case is checked inline, and only a
    # value that fails goes through `reader` (same checks, same messages), so
    # the entry's JSON location is spelt out only then.
    if entry.__class__ is not dict:
        reader.expect(entry, dict, f"{entries_location}[{index}]", "a run entry object")
    activity = entry.get("activity")
    if activity.__class__ is not dict:
        reader.expect(activity, dict, f"{entries_location}[{index}].activity", "an object")
    name = activity.get("name", "")
    if name.__class__ is not str:
        reader.expect(name, str, f"{entries_location}[{index}].activity.name", "a string")
    activity_type = activity.get("type")
    if activity_type is not None and activity_type.__class__ is not str:
        reader.expect(activity_type, str, f"{entries_location}[{index}].activity.type", "a string")
    # parse_time's common case inline (a call saved twice per activity); any other
    # timestamp goes through parse_time itself, by `reader.time`.
    start_text = entry.get("start")
    try:
        start = _from_iso(start_text)
        if start.tzinfo is not _UTC:
            start = as_utc(start)
    except (TypeError, ValueError, OverflowError):
        start = reader.time(start_text, f"{entries_location}[{index}].start")
    end_text = entry.get("end")
    if end_text is None:
        end = None
    else:
        try:
            end = _from_iso(end_text)
            if end.tzinfo is not _UTC:
                end = as_utc(end)
        except (TypeError, ValueError, OverflowError):
            end = reader.time(end_text, f"{entries_location}[{index}].end")

    status = entry.get("status")
    if status is None:
        status = run_status if run_status in ("interrupted", "aborted") else "unknown"
    elif status.__class__ is not str:
        reader.expect(status, str, f"{entries_location}[{index}].status", "a string")
    else:
        status = share(status, status)
    name = share(name, name)
    if activity_type is not None:
        activity_type = share(activity_type, activity_type)

    ordinal = ordinals.get(name, 0)
    ordinals[name] = ordinal + 1

    provider = activity.get("provider")
    if provider.__class__ is dict and provider.get("type").__class__ is str \
            and provider["type"] != "python" and not activity.get("background"):
        fields = {"provider": share(provider["type"], provider["type"])}
    else:
        fields = activity_fields(activity)
        for key in ("provider", "module", "func"):  # the texts it may copy from the definition
            if key in fields:
                fields[key] = share(fields[key], fields[key])
    if end is not None:
        fields["duration"] = (end - start).total_seconds()
    if "tolerance_met" in entry:
        fields["tolerance_met"] = bool(entry["tolerance_met"])
    exception = entry.get("exception")
    if exception is not None:
        error = error_text(exception)
        if error:
            fields["error"] = error
    return Event.checked_activity(id_of(name, ordinal), run_id, phase, name, activity_type, start, end, status,
                                  fields)


def activity_fields(activity: Mapping[str, Any]) -> Dict[str, Any]:
    """What an activity's definition tells, nothing more: no argument or configuration
    value, so no secret, is ever copied into an event."""
    fields: Dict[str, Any] = {}
    if activity.get("background"):
        fields["background"] = True
    provider = activity.get("provider")
    if isinstance(provider, (dict, Mapping)) and isinstance(provider.get("type"), str):
        fields["provider"] = provider["type"]
        # chaosdb recorded a Python provider's module and function (its InfluxDB
        # fields, its Grafana tag): code names, never an argument's value.
        if provider["type"] == "python":
            for key in ("module", "func"):
                if isinstance(provider.get(key), str) and provider[key]:
                    fields[key] = provider[key]
    return fields


def error_text(exception: Any) -> Optional[str]:
    """The last meaningful line of chaoslib's formatted exception, kept short."""
    if isinstance(exception, list):
        lines = [line for chunk in exception if isinstance(chunk, str) for line in chunk.splitlines()]
    elif isinstance(exception, str):
        lines = exception.splitlines()
    else:
        return None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return None
    text = lines[-1]
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[: _ERROR_TEXT_LIMIT - 1] + "…"


def _phase_event(
    run_id: str, phase: str, iteration: int, activities: List[Event], met: Optional[bool]
) -> Optional[Event]:
    if not activities:
        return None
    start = min(event.start for event in activities)
    ends = [event.end for event in activities if event.end is not None]
    end = max(ends) if ends else None
    failed = any(event.status == "failed" for event in activities) or met is False
    fields: Dict[str, Any] = {}
    if met is not None:
        fields["steady_state_met"] = met
    if phase == "during":
        fields["iteration"] = iteration
    return Event(
        id=phase_id(run_id, phase, iteration),
        run_id=run_id,
        kind=PHASE,
        phase=phase,
        name=phase_name(phase, iteration),
        start=start,
        end=end,
        status="failed" if failed else "succeeded",
        fields=fields,
    )


def phase_name(phase: str, iteration: int = 0) -> str:
    """The phase event's name; `iteration` counts the continuous hypothesis' runs from 1."""
    if phase == "during":
        return f"steady-state hypothesis during #{iteration}"
    return PHASE_NAMES.get(phase, phase)


def _derived_interruption(
    reader: _Reader, journal: Dict[str, Any], run_id: str, activities: List[Event], fallback: datetime
) -> Optional[Event]:
    """An interruption point from the journal alone: at the end of the activity it cut short."""
    interruption = journal.get("interruption")
    if journal.get("status") != "interrupted" and interruption is None:
        return None
    fields: Dict[str, Any] = {}
    if isinstance(interruption, dict):
        for key, field_name in (("reason", "reason"), ("name", "signal")):
            if isinstance(interruption.get(key), str):
                fields[field_name] = interruption[key]
    cut = [event for event in activities if event.status == "interrupted"]
    when = (cut[-1].end or cut[-1].start) if cut else fallback
    return Event(
        id=interruption_id(run_id),
        run_id=run_id,
        kind=INTERRUPTION,
        name="interruption",
        start=when,
        status="interrupted",
        fields=fields,
    )


def _merge(derived: Iterable[Event], recorded: Sequence[Event]) -> Tuple[Event, ...]:
    """One timeline: the journal's activities and experiment, the recorder's phases, marks
    and interruption; what only one side has is kept from that side."""
    if not recorded:
        return order(derived)
    by_id: Dict[str, Event] = {}
    for event in derived:
        by_id[event.id] = event
    for event in recorded:
        current = by_id.get(event.id)
        if current is None or current.kind in (PHASE, MARK, INTERRUPTION):
            by_id[event.id] = event
    return order(by_id.values())


def order(events: Iterable[Event]) -> Tuple[Event, ...]:
    """Start order; at equal starts the enclosing event comes first."""
    # Grouped by kind first, enclosing kinds first, then sorted by start alone: the sort is
    # stable, so this is the order of (start, kind rank) without a key built per event,
    # and events of equal start and kind keep their given order.
    by_kind: Dict[str, List[Event]] = {kind: [] for kind in KINDS}
    for event in events:
        by_kind[event.kind].append(event)
    return tuple(sorted(chain.from_iterable(by_kind.values()), key=_START))


_START = itemgetter(Event._fields.index("start"))


def _side_file_runs(path: str, data: bytes) -> List[Run]:
    """The recorder's NDJSON side file: a header line, then events (a later line wins).
    Each further header starts another run: runs sharing one fixed `events_path` append
    to the same file, and each replays as itself.

    It is the crash-safe record: a run killed mid-write leaves a partial last line,
    dropped; a line that is not a JSON object anywhere else (a cut line another run
    appended after, a stray write) is skipped with a warning naming it; the rest is kept.
    """
    raw_lines = data.split(b"\n")
    while raw_lines and not raw_lines[-1].strip():
        raw_lines.pop()
    may_hold_surrogates = _SURROGATE_ESCAPE_BYTES.search(data) is not None
    del data
    reader = _Reader(path)
    runs: List[Run] = []
    run_id: Optional[str] = None
    by_id: Dict[str, Event] = {}
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        record = _side_line(path, raw, number, last=number == len(raw_lines))
        if record is None:
            continue
        if _is_side_file_header(record):
            if run_id is not None:
                runs.append(_side_file_run(path, run_id, by_id))
            run_id, by_id = record.get("run_id"), {}
            if not isinstance(run_id, str) or not run_id:
                raise JournalError(path, f"line {number}", "side file header has no run_id")
            continue
        if run_id is None:
            raise JournalError(path, f"line {number}", "not a side file: no chaostoolkit-replay header first")
        event = _event_from_record(reader, record, f"line {number}")
        by_id[event.id] = event
    if run_id is None:
        raise JournalError(path, "", "not a side file: no chaostoolkit-replay header")
    runs.append(_side_file_run(path, run_id, by_id))
    if may_hold_surrogates:
        for run in runs:
            _reject_lone_surrogates(path, run.events)
    return runs


def _side_file_run(path: str, run_id: str, by_id: Dict[str, Event]) -> Run:
    return Run(run_id, path, order(_ended_by_the_last_stamp(run_id, list(by_id.values()))),
               from_side_file=True)


def _ended_by_the_last_stamp(run_id: str, events: List[Event]) -> List[Event]:
    """A side file whose experiment never ended is a run the process did not survive
    (SIGKILL, power loss): it ended, `interrupted`, at its last stamp, and so did whatever
    was still open, so every sink shows the same finished run instead of one still running."""
    experiment = next((event for event in events if event.kind == EXPERIMENT), None)
    if experiment is None or experiment.end is not None:
        return events
    last = max(event.end or event.start for event in events)
    ended = [
        event if event.end is not None or event.kind in (MARK, INTERRUPTION)
        else event.evolve(end=last, status="interrupted", fields=_with_duration(event, last))
        for event in events if event.kind != EXPERIMENT
    ]
    activities = [event for event in ended if event.kind == ACTIVITY]
    met = {event.phase: event.fields.get("steady_state_met") for event in ended if event.kind == PHASE}
    ended.append(experiment.evolve(
        end=last, status="interrupted",
        fields={**experiment_fields(False, met.get("before"), met.get("after"), activities),
                **experiment.fields},
    ))
    if not any(event.kind == INTERRUPTION for event in ended):
        ended.append(Event(
            id=interruption_id(run_id), run_id=run_id, kind=INTERRUPTION, name="interruption",
            start=last, status="interrupted", tags=experiment.tags,
            fields={"reason": "the run stopped without ending (its side file ends here)"},
        ))
    return ended


def _with_duration(event: Event, end: datetime) -> Dict[str, Any]:
    if event.kind != ACTIVITY:
        return dict(event.fields)
    return {**event.fields, "duration": (end - event.start).total_seconds()}


def _side_line(path: str, raw: bytes, number: int, last: bool) -> Optional[Dict[str, Any]]:
    """Line `number` as an object; None for a partial last line, and for a line that is
    not a JSON object (skipped with a warning naming it)."""
    try:
        # Decoded first: json.loads(bytes) would guess UTF-16 or UTF-32 for odd bytes.
        record = json.loads(raw.decode("utf-8"))
        problem = None if isinstance(record, dict) else "not a JSON object"
    except RecursionError:
        problem = "JSON nested too deeply"
    except ValueError as error:  # invalid JSON or UTF-8, or a number too long
        if last:
            return None
        problem = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else f"invalid JSON: {error}"
    if problem is None:
        return record
    logger.warning(f"{path}: line {number}: skipped, {problem[:120]}; the other lines are replayed")
    return None


class Input(NamedTuple):
    """A file to read, and whether the command named it (rather than a directory or a glob
    it gave: there, a JSON file that is no journal, like the experiment, is not an error)."""

    path: str
    named: bool


def find_inputs(paths: Iterable[str]) -> List[Input]:
    """Journals named on the command line: files as given, directories and globs
    (`**` matching any depth of folders) expanded; each file once, however often it is
    given or reached (a symlink loop under a `**` glob reaches one file by endless paths)."""
    found: List[Input] = []
    seen: set = set()

    def add(path: str, named: bool) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(Input(path, named))

    for path in paths:
        if os.path.isdir(path):
            matches = sorted(
                name for pattern in ("*.json", "*.jsonl")
                for name in glob.glob(os.path.join(path, pattern))
            )
        elif any(char in path for char in "*?[") and not os.path.exists(path):
            matches = sorted(glob.glob(path, recursive=True))
        else:
            matches = []
        for match in matches:
            add(match, named=False)
        if not matches:
            add(path, named=True)
    return found


def expand_inputs(paths: Iterable[str]) -> List[str]:
    """The paths of `find_inputs`."""
    return [item.path for item in find_inputs(paths)]
