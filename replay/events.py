"""The one currency of the project: an immutable, timestamped `Event`.

The journal reader and the recording control both produce Events; every sink
only consumes them. Ids are deterministic (a hash of what identifies the run and
the event's place in it) so that sending the same run twice, from a journal,
from a side file or live, addresses the same points and annotations.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from itertools import chain
from operator import is_
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "Event",
    "Run",
    "KINDS",
    "run_id_for",
    "experiment_id",
    "phase_id",
    "activity_id",
    "activity_ids",
    "mark_id",
    "interruption_id",
    "shifted_run_id",
    "shifted_event_id",
    "parse_time",
    "as_utc",
    "format_time",
    "epoch_us",
    "epoch_ms",
    "json_type_name",
    "redacted_event",
]

EXPERIMENT = "experiment"
PHASE = "phase"
ACTIVITY = "activity"
MARK = "mark"
INTERRUPTION = "interruption"
KINDS = (EXPERIMENT, PHASE, ACTIVITY, MARK, INTERRUPTION)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen(mapping: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    # Most events carry no tags: they share one empty read-only mapping.
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


class _EventFields(NamedTuple):
    id: str
    run_id: str
    kind: str
    name: str
    start: datetime
    end: Optional[datetime] = None
    status: str = "unknown"
    phase: Optional[str] = None
    activity_type: Optional[str] = None
    tags: Mapping[str, str] = _EMPTY
    fields: Mapping[str, Any] = _EMPTY


class Event(_EventFields):
    """One thing that happened in a run, with its start and, once it ended, its end.

    A tuple underneath: a big journal makes one Event per activity, and a
    tuple is built four times faster than a frozen dataclass. Every Event is
    checked here, and its tags and fields are frozen, whoever builds it.
    """

    __slots__ = ()

    def __new__(cls, id: str, run_id: str, kind: str, name: str, start: datetime,
                end: Optional[datetime] = None, status: str = "unknown", phase: Optional[str] = None,
                activity_type: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
                fields: Optional[Mapping[str, Any]] = None) -> "Event":
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        if start.tzinfo is None:
            raise ValueError("event start must be timezone-aware")
        if end is not None and end.tzinfo is None:
            raise ValueError("event end must be timezone-aware")
        return tuple.__new__(cls, (id, run_id, kind, name, start, end, status, phase, activity_type,
                                   _frozen(tags), _frozen(fields)))

    @property
    def type_or_kind(self) -> str:
        """What the event is, in a word: an activity's type (action, probe), else its kind."""
        return self.activity_type or self.kind if self.kind == ACTIVITY else self.kind

    @property
    def duration(self) -> Optional[float]:
        """Seconds from start to end, or None while the event is open."""
        if self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    @classmethod
    def checked_activity(cls, id: str, run_id: str, phase: str, name: str, activity_type: Optional[str],
                         start: datetime, end: Optional[datetime], status: str, fields: dict) -> "Event":
        """An activity from the journal reader, which has already made every check `Event()`
        makes (`start` and `end` come from `parse_time`, aware and UTC) and hands over a
        `fields` dict of its own that nobody else holds, so freezing it needs no copy.
        This runs once per activity of every journal: the checks are not made twice."""
        return tuple.__new__(cls, (id, run_id, ACTIVITY, name, start, end, status, phase, activity_type,
                                   _EMPTY, MappingProxyType(fields) if fields else _EMPTY))

    def evolve(self, **changes) -> "Event":
        # Not `_replace`: it would skip the checks and the freezing.
        return Event(**{**self._asdict(), **changes})

    def to_dict(self) -> dict:
        """JSON-native form, used in journals, side files and `--format json`."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "kind": self.kind,
            "phase": self.phase,
            "name": self.name,
            "activity_type": self.activity_type,
            "start": format_time(self.start),
            "end": format_time(self.end) if self.end else None,
            "status": self.status,
            "tags": dict(self.tags),
            "fields": dict(self.fields),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Event":
        """Inverse of `to_dict`; raises KeyError on a missing key, TypeError or
        ValueError naming the key on a bad value, so that no recorded event a sink
        cannot handle gets past the reader."""
        end = data.get("end")
        return cls(
            id=_string(data, "id"),
            run_id=_string(data, "run_id"),
            kind=_string(data, "kind"),
            phase=_optional_string(data, "phase"),
            name=_string(data, "name"),
            activity_type=_optional_string(data, "activity_type"),
            start=_time(data["start"], "start"),
            end=None if end is None else _time(end, "end"),
            status=_optional_string(data, "status") or "unknown",
            tags=_string_mapping(data, "tags"),
            fields=_object(data, "fields"),
        )


def _time(value: Any, key: str) -> datetime:
    try:
        return parse_time(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{key}: {error}") from None


def _string(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key}: expected a string, got {json_type_name(value)}")
    return value


def _optional_string(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key}: expected a string or null, got {json_type_name(value)}")
    return value


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{key}: expected an object, got {json_type_name(value)}")
    return value


def _string_mapping(data: Mapping[str, Any], key: str) -> Mapping[str, str]:
    value = _object(data, key)
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str):
            raise TypeError(f"{key}: {name!r} must map to a string, got {json_type_name(item)}")
    return value


def json_type_name(value: Any) -> str:
    """How a JSON document's reader would call `value`'s type, for error messages."""
    if value is None:
        return "null"
    return {
        bool: "a boolean", int: "a number", float: "a number", str: "a string",
        list: "an array", dict: "an object",
    }.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Run:
    """One experiment run: its id, where it was read from, its ordered events."""

    run_id: str
    source: str
    events: Tuple[Event, ...]
    # The experiment's declared configuration, secrets and controls, and our
    # recorded extension: inputs to target resolution and to --only-undelivered,
    # never printed (repr=False) and never sent.
    configuration: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    secrets: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    controls: Tuple[Any, ...] = field(default=(), repr=False, compare=False)
    extension: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Read from the recorder's side file: its journal, when read too, is the fuller record.
    from_side_file: bool = field(default=False, repr=False, compare=False)
    # chaostoolkit-prometheus' reference of the experiment (chaoslib's `experiment_hash`, or the
    # one a live control recorded) and the chaoslib that ran it: its pushgateway layout's labels.
    experiment_hash: Optional[str] = field(default=None, repr=False, compare=False)
    chaoslib_version: Optional[str] = field(default=None, repr=False, compare=False)

    def with_events(self, events) -> "Run":
        return replace(self, events=tuple(events))

    def redacted(self, redactor) -> "Run":
        """The run with its known secrets, and the user information of URLs in error texts,
        masked in every event (`chaosreplay.config.Redactor`)."""
        if not _may_hold_something_to_mask(self.events, redactor):
            return self
        events = [redacted_event(event, redactor) for event in self.events]
        if all(map(is_, events, self.events)):
            return self
        return self.with_events(events)

    @property
    def experiment(self) -> Optional[Event]:
        for event in self.events:
            if event.kind == EXPERIMENT:
                return event
        return None

    @property
    def title(self) -> str:
        experiment = self.experiment
        return experiment.name if experiment else ""


def redacted_event(event: Event, redactor) -> Event:
    """`event` with the secrets `redactor` knows masked in its name, tags and fields (an
    activity's error, an interruption's reason, a mark's fields); the same event if none is there."""
    if not _holds_something_to_mask(event, redactor):
        return event
    name = redactor.text(event.name)
    tags = redactor.value(dict(event.tags))
    fields = redactor.value(dict(event.fields))
    if name == event.name and tags == event.tags and fields == event.fields:
        return event
    return event.evolve(name=name, tags=tags, fields=fields)


def _holds_something_to_mask(event: Event, redactor) -> bool:
    """A quick look (most events hold nothing): a URL with user information in a text field,
    a known secret in any text (or a shortened one), or nested field values."""
    texts = [event.name]
    for value in event.fields.values():
        kind = type(value)
        if kind is str:
            if "@" in value:
                return True
            texts.append(value)
        elif kind not in _PLAIN_FIELD_TYPES:
            return True  # nested (a mark's fields), or a str subclass
    if not redactor:
        return False
    if event.tags:
        texts.extend(value for value in event.tags.values() if type(value) is str)
    blob = "\0".join(texts)
    return "…" in blob or redactor.finds(blob)


_PLAIN_FIELD_TYPES = frozenset({float, int, bool, type(None)})
_FLAT_FIELD_TYPES = _PLAIN_FIELD_TYPES | {str}


def _may_hold_something_to_mask(events: Sequence[Event], redactor) -> bool:
    """One look at the texts of all the events at once, as most runs hold nothing to mask:
    False only if no event can hold a URL with user information, a known secret (or a
    shortened one) or a nested field value. True sends each event to `redacted_event`."""
    values = list(chain.from_iterable([event.fields.values() for event in events]))
    if not set(map(type, values)) <= _FLAT_FIELD_TYPES:
        return True
    texts = [value for value in values if value.__class__ is str]
    texts += [event.name for event in events]
    texts += [value for event in events if event.tags for value in event.tags.values() if value.__class__ is str]
    try:
        blob = "\0".join(texts)
    except TypeError:  # a name that is no text: each event is looked at
        return True
    return "@" in blob or bool(redactor) and ("…" in blob or redactor.finds(blob))


def parse_time(value: Any) -> datetime:
    """Parse a chaoslib timestamp (naive UTC before 1.43.1, `+00:00` after)."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    try:
        # chaoslib writes datetime.isoformat(), which the C parser reads ~20x faster.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # Imported when needed: chaoslib's own timestamps never need it.
        from dateutil.parser import isoparse
        parsed = isoparse(value)
    return parsed if parsed.tzinfo is timezone.utc else as_utc(parsed)


def as_utc(parsed: datetime) -> datetime:
    """A parsed chaoslib timestamp in UTC: naive ones are UTC already."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(instant: datetime) -> int:
    """Microseconds since the epoch, exactly (journals are precise to the microsecond)."""
    return (instant - _EPOCH) // _MICROSECOND


def epoch_ms(instant: datetime) -> int:
    """Milliseconds since the epoch, truncated: the one rule for every millisecond we send
    (InfluxDB `end_ms`, Grafana `time`/`timeEnd`, Prometheus samples and the pushgateway),
    so one instant is the same millisecond everywhere. Exact integer arithmetic, no float."""
    return epoch_us(instant) // 1000


def _digest(*parts: Any) -> str:
    # surrogatepass: JSON may hold a lone surrogate (`"\\ud800"`); ids of valid text are unchanged.
    return sha256("\x1f".join(map(str, parts)).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def run_id_for(title: str, start: str, node: str) -> str:
    """The run id of a journal that carries no recorded one.

    `start` is the journal's own `start` string, as chaoslib wrote it, so the
    recorder (which sees the journal being built) and the reader agree.
    """
    return _digest("run", title, start, node)


def experiment_id(run_id: str) -> str:
    return _digest(run_id, EXPERIMENT)


def phase_id(run_id: str, phase: str, iteration: int = 0) -> str:
    return _digest(run_id, PHASE, phase, iteration)


def activity_id(run_id: str, phase: str, name: str, ordinal: int) -> str:
    """`ordinal` counts earlier activities of the same name in the same phase.

    Names repeat within a run (and background activities can start in the
    same microsecond), so neither name nor time alone identifies an activity.
    """
    return activity_ids(run_id, phase)(name, ordinal)


def activity_ids(run_id: str, phase: str) -> Callable[[str, int], str]:
    """`activity_id` of one run and phase, as a function of name and ordinal: what the ids
    of a phase share is joined once (a journal reader makes one id per activity)."""
    prefix = "\x1f".join((str(run_id), ACTIVITY, str(phase), ""))

    def activity_id_of(name: str, ordinal: int) -> str:
        return sha256(f"{prefix}{name}\x1f{ordinal}".encode("utf-8", "surrogatepass")).hexdigest()[:16]

    return activity_id_of


def mark_id(run_id: str, name: str, ordinal: int) -> str:
    return _digest(run_id, MARK, name, ordinal)


def interruption_id(run_id: str) -> str:
    return _digest(run_id, INTERRUPTION)


def shifted_run_id(run_id: str, instant: datetime) -> str:
    """The id of `run_id` re-timed to start at `instant` (`--shift-to`): its own run."""
    return _digest(run_id, "shifted-to", format_time(instant))


def shifted_event_id(shifted_run: str, event_id: str) -> str:
    return _digest(shifted_run, event_id)
