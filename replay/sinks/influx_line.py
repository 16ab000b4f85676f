"""Events -> InfluxDB line protocol: pure functions, no I/O.

One point per event. The series key (measurement + tags) holds only
low-cardinality dimensions; everything that varies per event is a field.

Timestamps are nanoseconds: the event's start (journals are precise to the
microsecond) plus a sub-microsecond offset in [0, 999] derived from the event
id. Two events of the same series starting in the same microsecond (background
activities of the same name) thus stay two points, the offset is the same on
every replay (so a replay overwrites the same points), and the series count
does not grow with the number of events, as an id tag would make it.

Escaping, checked against a real InfluxDB 1.6 (FACTS §5): in tag keys, tag
values and field keys `,` `=` and space are escaped; a backslash is stored as
is, except that one InfluxDB cannot store in place (a run of backslashes
before `,` `=` or a space, or at the end) is written as `/`; a line break in a
tag value or key (it would end the line) becomes a space. String fields are
stored exactly: `\\` and `"` escaped, line breaks allowed inside the quotes.
"""
import json
import math
import operator
import re
import struct
from functools import lru_cache
from hashlib import sha256
from itertools import islice
from typing import Any, Iterator, List, NamedTuple, Optional, Tuple

from ..events import ACTIVITY, EXPERIMENT, INTERRUPTION, Event, Run, epoch_us

__all__ = [
    "DEFAULT_MEASUREMENT",
    "DIMENSION_TAGS",
    "EventLine",
    "run_lines",
    "iter_lines",
    "timestamp_ns",
    "tag_text",
    "measurement_problem",
    "CHAOSDB_MEASUREMENT",
    "chaosdb_writes",
    "iter_chaosdb_lines",
    "chaosdb_line",
]

DEFAULT_MEASUREMENT = "chaostoolkit_events"
# chaosdb.influx's measurement, and the `experiment` tag it gave every point (fixed in its code).
CHAOSDB_MEASUREMENT = "chaos_toolkit.actions"
CHAOSDB_EXPERIMENT_TAG = "exp1"
DIMENSION_TAGS = ("run_id", "experiment", "kind", "phase", "activity_type", "name", "status")

# Fields whose type is fixed by the event model: InfluxDB rejects a point whose
# field type differs from the one already stored, so types must never drift.
_INTEGER_FIELDS = frozenset({"activities", "failed_activities", "iteration", "end_ms"})
_OWN_FIELDS = frozenset({"event_id", "text", "duration", "end_ms"})
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_SUB_MICROSECOND = 1000

_KEY_ESCAPES = re.compile(r"[,= ]")
_MEASUREMENT_ESCAPES = re.compile(r"[, ]")
# Backslashes InfluxDB cannot store in place: those a special character or the end follows.
_STRANDED_BACKSLASHES = re.compile(r"\\+(?=[,= ]|$)")
_TEXT_LIMIT = 200


class EventLine(NamedTuple):
    """A line and the event it carries, so a rejected line can be traced back."""

    event_id: str
    line: str


def tag_text(value: str) -> str:
    """What InfluxDB will store (and return) for this tag value or key."""
    value = value.replace("\n", " ")
    return _STRANDED_BACKSLASHES.sub(lambda match: "/" * len(match.group()), value)


# Keys and tag values repeat on every line of a run: escape each distinct one once.
@lru_cache(maxsize=16384)
def _key(name: str) -> str:
    name = tag_text(name)
    # InfluxDB rejects tag and field keys named `time`.
    if name == "time":
        name = "time_"
    return _KEY_ESCAPES.sub(lambda match: "\\" + match.group(), name)


@lru_cache(maxsize=16384)
def _tag_value(value: str) -> str:
    return _KEY_ESCAPES.sub(lambda match: "\\" + match.group(), tag_text(value))


def _string_field(value: str) -> str:
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def measurement_problem(name: str) -> Optional[str]:
    """Why `name` cannot be a measurement, or None."""
    if not name:
        return "must not be empty"
    if "\n" in name:
        return "must not contain a line break"
    if name.startswith("#"):
        return "must not start with '#' (a comment line)"
    if name.endswith("\\"):
        return "must not end with a backslash"
    return None


def _measurement(name: str) -> str:
    return _MEASUREMENT_ESCAPES.sub(lambda match: "\\" + match.group(), name)


def _field_value(name: str, value: Any) -> Optional[str]:
    """The field's text, or None for a value InfluxDB cannot hold (None, NaN, Inf)."""
    if value is None:
        return None
    # Strings first: most fields (provider, error, reason) are text.
    if isinstance(value, str):
        return _string_field(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in _INTEGER_FIELDS and isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return f"{value}i"
    if isinstance(value, (int, float)):
        # Other numbers come from user marks: always floats, so one mark
        # writing 1 and another 1.5 under the same key do not conflict.
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    return _string_field(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def timestamp_ns(event: Event) -> int:
    """The event's start in ns, plus its deterministic sub-microsecond offset."""
    return _point_ns(epoch_us(event.start), event.id)


def _point_ns(microsecond: int, event_id: str) -> int:
    """A point's time: `microsecond` in ns plus the event's offset, the same on every replay."""
    return microsecond * _SUB_MICROSECOND + \
        _first_four_bytes(sha256(event_id.encode("utf-8")).digest())[0] % _SUB_MICROSECOND


# The digest's first four bytes as a big-endian number, without slicing a copy first.
_first_four_bytes = struct.Struct(">I").unpack_from


def _what(event: Event) -> str:
    """The first words of an event's text: what, which, how it ended."""
    return f"{event.type_or_kind} {event.name} {event.status}".replace("\n", " ")


def _short_text(event: Event, what: str, duration: Optional[float]) -> str:
    """One line for a Grafana annotation (`what`: `_what(event)`, `duration`: the event's)."""
    text = what
    if duration is not None:
        text += f" in {duration:.3f}s"
    if event.kind == EXPERIMENT and event.fields.get("deviated"):
        text += ", deviated"
    reason = event.fields.get("error") or (event.fields.get("reason") if event.kind == INTERRUPTION else None)
    if reason:
        text += f": {reason}"
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _series_key(measurement: str, title: str, run_id: str, kind: str, phase: Optional[str],
                activity_type: Optional[str], name: str, status: str,
                user_tags: Tuple[Tuple[str, str], ...]) -> str:
    tags = {key: str(value) for key, value in user_tags}
    dimensions = {"run_id": run_id, "experiment": title, "kind": kind, "phase": phase,
                  "activity_type": activity_type, "name": name, "status": status}
    # The model's dimensions win over a user tag of the same name.
    tags.update({key: value for key, value in dimensions.items() if value is not None})
    parts = [_measurement(measurement)]
    for key in sorted(tags):
        value = _tag_value(tags[key])
        # InfluxDB rejects empty tag values: an absent tag reads back as "".
        if value:
            parts.append(f"{_key(key)}={value}")
    return ",".join(parts)


def _other_fields(fields) -> str:
    """The event's own fields, after those the line always has: `,key=value` each."""
    text = ""
    for name, prefix in _shown_fields(tuple(fields)):
        value = fields[name]
        # Most fields are text (provider, error, reason): their line is built here.
        value_text = _string_field(value) if value.__class__ is str else _field_value(name, value)
        if value_text is not None:
            text += prefix + value_text
    return text


# Events of a run share a few sets of field names: each set's order and keys are worked out once.
@lru_cache(maxsize=1024)
def _shown_fields(names: Tuple[str, ...]) -> Tuple[Tuple[str, str], ...]:
    """(name, `,key=`) of the fields of these names a line shows, in the line's order."""
    return tuple((name, f",{_key(name)}=") for name in sorted(names) if name not in _OWN_FIELDS)


def run_lines(run: Run, measurement: str = DEFAULT_MEASUREMENT) -> List[EventLine]:
    """One line per event of the run, in timeline order."""
    return list(iter_lines(run, measurement))


def iter_lines(run: Run, measurement: str = DEFAULT_MEASUREMENT) -> Iterator[EventLine]:
    """`run_lines`, one at a time.

    Two events of one series whose offsets collide in the same microsecond (a
    1-in-1000 chance for background activities started together) take the
    next free nanosecond: they must never merge into one point.
    """
    title = run.title
    taken = set()
    # A run read from a journal or side file comes in start order: a collision can then only
    # be with an event of the same microsecond, and only that microsecond's timestamps are
    # kept. A live batch comes in the order things happened: all of them are kept.
    starts = [event.start for event in run.events]
    forget_earlier = all(map(operator.le, starts, islice(starts, 1, None)))
    del starts
    taken_microsecond = None
    # A run has few series and many events: each series' key and the start of
    # its text are built once (this loop runs once per event of every journal).
    series_of = {}
    new_line = tuple.__new__
    for event in run.events:
        event_id, run_id, kind, name, start, end, status, phase, activity_type, tags, fields = event
        dimensions = (run_id, kind, phase, activity_type, name, status, tuple(tags.items()) if tags else ())
        known = series_of.get(dimensions)
        if known is None:
            what = _what(event)
            # The text of an activity, a phase or a mark is `what` and its duration, both
            # escaped already, unless it is too long or tells an error (`_short_text`).
            quick = kind not in (EXPERIMENT, INTERRUPTION) and len(what) < _TEXT_LIMIT - 24
            known = series_of[dimensions] = (f"{_series_key(measurement, title, *dimensions)} event_id=", what,
                                             _string_field(what)[:-1] if quick else None)
        series, what, quoted_what = known

        microsecond = epoch_us(start)
        timestamp = _point_ns(microsecond, event_id)
        if microsecond != taken_microsecond and forget_earlier:
            taken = {(series, timestamp)}
            taken_microsecond = microsecond
        else:
            if (series, timestamp) in taken:
                first = microsecond * _SUB_MICROSECOND
                while (series, timestamp) in taken:
                    timestamp = first + (timestamp + 1) % _SUB_MICROSECOND
            taken.add((series, timestamp))

        if end is None:
            duration = None
            timing = ""
        else:
            end_microsecond = epoch_us(end)
            # timedelta.total_seconds() is this division: the same float; and `// 1000` is epoch_ms.
            duration = (end_microsecond - microsecond) / 1_000_000
            timing = f",duration={duration!r},end_ms={end_microsecond // 1000}i"
        if quoted_what is not None and "error" not in fields:
            text = f'{quoted_what}"' if duration is None else f'{quoted_what} in {duration:.3f}s"'
        else:
            text = _string_field(_short_text(event, what, duration))
        yield new_line(EventLine, (event_id, f"{series}{_string_field(event_id)},text={text}{timing}"
                                             f"{_other_fields(fields) if fields else ''} {timestamp}"))


def chaosdb_writes(event: Event) -> bool:
    """Whether chaosdb.influx wrote points for this event: actions run by a Python provider."""
    return event.kind == ACTIVITY and event.activity_type == "action" and event.fields.get("provider") == "python"


def iter_chaosdb_lines(run: Run, measurement: str = CHAOSDB_MEASUREMENT) -> Iterator[EventLine]:
    """What chaosdb.influx wrote for a run, at the true times (chaosdb wrote none).

    For each action of a Python provider, in timeline order, a point tagged
    `scope=before` at its start and, once it has ended, one tagged `scope=after`
    at its end; tags `experiment=exp1` and `scope`, fields `type` ("python"),
    `module` and `func` (chaosdb wrote the provider's string values). Each has
    the event's sub-microsecond offset, so a replay overwrites the same points.
    """
    taken = set()
    for event in run.events:
        if not chaosdb_writes(event):
            continue
        fields = {"type": "python", **{name: event.fields[name] for name in ("module", "func")
                                       if isinstance(event.fields.get(name), str)}}
        moments = [("before", event.start)] + ([("after", event.end)] if event.end is not None else [])
        for scope, moment in moments:
            timestamp = _point_ns(epoch_us(moment), event.id)
            while (scope, timestamp) in taken:
                timestamp += 1
            taken.add((scope, timestamp))
            tags = {"experiment": CHAOSDB_EXPERIMENT_TAG, "scope": scope}
            yield EventLine(event.id, chaosdb_line(measurement, fields, tags, timestamp))


def chaosdb_line(measurement: str, fields: dict, tags: Optional[dict] = None,
                 timestamp: Optional[int] = None) -> str:
    """A point as chaosdb's `encode_payload_in_line_protocol` wrote it: tags sorted and bare,
    string fields quoted, numbers as they are, dicts left out; then the time, if any.

    Escaped where chaosdb was not (a space or comma in a value broke its lines).
    """
    series = _measurement(measurement) + "".join(f",{_key(key)}={_tag_value(str(tags[key]))}"
                                                   for key in sorted(tags or {}))
    values = []
    for key, value in fields.items():
        if isinstance(value, dict):
            continue
        if isinstance(value, str):
            values.append(f"{_key(key)}={_string_field(value)}")
        elif isinstance(value, bool):
            values.append(f"{_key(key)}={'true' if value else 'false'}")
        elif isinstance(value, (int, float)) and math.isfinite(value):
            values.append(f"{_key(key)}={value}")
    line = f"{series} {','.join(values)}"
    return line if timestamp is None else f"{line} {timestamp}"
