"""The one currency of the project: an immutable, timestamped `Event`.

The journal reader and the recording control both produce Events; every sink
only consumes them. Ids are deterministic (a hash of what identifies the run and
the event's place in it) so that sending the same run twice, from a journal,
from a side file or live, addresses the same points and annotations.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from hashlib import sha256
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

from dateutil.parser import isoparse

__all__ = [
    "Event",
    "Run",
    "KINDS",
    "PHASES",
    "run_id_for",
    "experiment_id",
    "phase_id",
    "activity_id",
    "mark_id",
    "interruption_id",
    "parse_time",
    "format_time",
]

EXPERIMENT = "experiment"
PHASE = "phase"
ACTIVITY = "activity"
MARK = "mark"
INTERRUPTION = "interruption"
KINDS = (EXPERIMENT, PHASE, ACTIVITY, MARK, INTERRUPTION)

# Phases an activity can run in, in the order chaoslib plays them.
PHASES = ("before", "during", "method", "after", "rollbacks")


def _frozen(mapping: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Event:
    id: str
    run_id: str
    kind: str
    name: str
    start: datetime
    end: Optional[datetime] = None
    status: str = "unknown"
    phase: Optional[str] = None
    activity_type: Optional[str] = None
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if self.start.tzinfo is None:
            raise ValueError("event start must be timezone-aware")
        if self.end is not None and self.end.tzinfo is None:
            raise ValueError("event end must be timezone-aware")
        object.__setattr__(self, "tags", _frozen(self.tags))
        object.__setattr__(self, "fields", _frozen(self.fields))

    @property
    def duration(self) -> Optional[float]:
        """Seconds from start to end, or None while the event is open."""
        if self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def evolve(self, **changes) -> "Event":
        return replace(self, **changes)

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
        """Inverse of `to_dict`; raises KeyError/TypeError/ValueError on bad data."""
        end = data.get("end")
        return cls(
            id=str(data["id"]),
            run_id=str(data["run_id"]),
            kind=data["kind"],
            phase=data.get("phase"),
            name=str(data["name"]),
            activity_type=data.get("activity_type"),
            start=parse_time(data["start"]),
            end=parse_time(end) if end else None,
            status=str(data.get("status") or "unknown"),
            tags=dict(data.get("tags") or {}),
            fields=dict(data.get("fields") or {}),
        )


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

    def with_events(self, events) -> "Run":
        return replace(self, events=tuple(events))

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


def parse_time(value: Any) -> datetime:
    """Parse a chaoslib timestamp (naive UTC before 1.43.1, `+00:00` after)."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    try:
        # chaoslib writes datetime.isoformat(), which the C parser reads ~20x faster.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = isoparse(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _digest(*parts: Any) -> str:
    return sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:16]


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
    return _digest(run_id, ACTIVITY, phase, name, ordinal)


def mark_id(run_id: str, name: str, ordinal: int) -> str:
    return _digest(run_id, MARK, name, ordinal)


def interruption_id(run_id: str) -> str:
    return _digest(run_id, INTERRUPTION)
