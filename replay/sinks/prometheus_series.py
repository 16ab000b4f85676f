"""A run as Prometheus series: one pure model, three encoders.

`run_families(run)` turns a run's events into gauge families whose samples sit
at the events' true times. The pushgateway sink publishes the last value of
each series (`text_exposition`, no timestamps: the pushgateway refuses them),
remote write sends every sample with its timestamp (`chaosreplay.sinks.remote_write`)
and `openmetrics_text` writes them for `promtool tsdb create-blocks-from
openmetrics`. Every value and timestamp derives from the events alone, so a run
replayed twice yields the same samples: Prometheus stores them once.

Labels are bounded: the run id, the experiment's ref and title, the run's user
tags, and per activity its phase, type, name, occurrence and status. Outputs,
errors and other free text never become labels.
"""
import hashlib
import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..events import ACTIVITY, Event, Run, epoch_ms

__all__ = [
    "Family",
    "Series",
    "SpooledFamilies",
    "spooled_pieces",
    "whole_families",
    "text_exposition_pieces",
    "openmetrics_pieces",
    "RUN_ID_LABEL",
    "DELIVERY_LABEL",
    "EXPERIMENT_REF_LABEL",
    "EXPERIMENT_STATUSES",
    "experiment_ref_for",
    "run_families",
    "run_family_slices",
    "ACTIVITIES_PER_SLICE",
    "text_exposition",
    "openmetrics_text",
    "openmetrics_header",
    "openmetrics_samples",
    "OPENMETRICS_END",
    "merge_families",
    "label_text",
]

# chaostoolkit-prometheus' label names, so existing dashboards keep working.
RUN_ID_LABEL = "chaostoolkit_run_trace_id"
EXPERIMENT_REF_LABEL = "chaostoolkit_experiment_ref"
TITLE_LABEL = "chaostoolkit_experiment_title"
# Which way a series reached Prometheus (`pushgateway`, `remote_write`, `openmetrics`):
# a run sent both ways is two sets of series, and a query picks one.
DELIVERY_LABEL = "chaostoolkit_delivery"
EXPERIMENT_STATUSES = ("completed", "failed", "aborted", "interrupted", "unknown")

# While a run goes on, "in progress" is sampled this often, so that instant
# queries (5 minutes look-back) see it during a long back-filled run.
IN_PROGRESS_STEP_MS = 60_000
# The line an OpenMetrics file ends with.
OPENMETRICS_END = "# EOF"
IN_PROGRESS_MAX_POINTS = 1000
# Activities whose series a sink holds at a time (`run_family_slices`): 3 series each.
ACTIVITIES_PER_SLICE = 5000

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

_HELP = {
    "chaostoolkit_experiment_in_progress": "1 while the run goes on, 0 once it has ended.",
    "chaostoolkit_experiment_start_timestamp_seconds": "When the run started (Unix seconds).",
    "chaostoolkit_experiment_end_timestamp_seconds": "When the run ended (Unix seconds).",
    "chaostoolkit_experiment_duration_seconds": "How long the run took.",
    "chaostoolkit_experiment_status": "1 for the run's final status, 0 for the others.",
    "chaostoolkit_experiment_deviated": "1 if the steady state deviated, else 0.",
    "chaostoolkit_experiment_steady_state_met": "Whether the steady-state hypothesis was met (before/after).",
    "chaostoolkit_experiment_activities": "Activities of the run by type and status.",
    "chaostoolkit_activity_start_timestamp_seconds": "When the activity started (Unix seconds).",
    "chaostoolkit_activity_duration_seconds": "How long the activity took.",
    "chaostoolkit_activity_status": "1 for the activity's status (succeeded, failed, interrupted, aborted, unknown).",
    "chaostoolkit_activity_tolerance_met": "Whether a hypothesis probe met its tolerance.",
}


@dataclass(frozen=True)
class Series:
    """One time series: its labels (sorted, without __name__) and (ms, value) points in time order."""

    labels: Tuple[Tuple[str, str], ...]
    points: Tuple[Tuple[int, float], ...]
    event_id: Optional[str] = None  # the event it derives from, for delivery reports


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    series: Tuple[Series, ...]


def experiment_ref_for(title: str) -> str:
    """A stable reference of an experiment across its runs (the title's hash)."""
    return hashlib.sha256(title.encode("utf-8")).hexdigest()[:16]


def run_families(
    run: Run,
    trace_id: Optional[str] = None,
    experiment_ref: Optional[str] = None,
    in_progress: bool = False,
    delivery: Optional[str] = None,
) -> List[Family]:
    """The run's gauge families; `in_progress` says the run is still going on (live);
    `delivery` is the DELIVERY_LABEL's value.

    Run-level values are sampled when the run ended (or at its last event when
    it has no end: a run cut short); activity values when the activity ended;
    start timestamps at the start.
    """
    return [family for part in run_family_slices(run, trace_id, experiment_ref, in_progress, delivery)
            for family in part]


def run_family_slices(
    run: Run,
    trace_id: Optional[str] = None,
    experiment_ref: Optional[str] = None,
    in_progress: bool = False,
    delivery: Optional[str] = None,
    activities_per_slice: Optional[int] = None,
) -> Iterator[List[Family]]:
    """`run_families` a part at a time: the run-level families, then the activities'
    families of `activities_per_slice` activities at a time (all at once when None). A
    family of activities comes again in each part: its series, in the parts' order,
    are those `run_families` gives. A run of 10^6 activities is 3 series each: they
    are never all held at once."""
    title = run.title
    experiment = run.experiment
    base = {
        RUN_ID_LABEL: trace_id or run.run_id,
        EXPERIMENT_REF_LABEL: experiment_ref or experiment_ref_for(title),
        TITLE_LABEL: title,
        DELIVERY_LABEL: delivery or "",
        **_user_labels(experiment or (run.events[0] if run.events else None)),
    }
    if not run.events:
        return
    start = epoch_ms(experiment.start if experiment else min(event.start for event in run.events))
    ended = experiment is not None and experiment.end is not None and not in_progress
    end = epoch_ms(experiment.end) if ended else max(epoch_ms(_last_time(event)) for event in run.events)
    experiment_id = experiment.id if experiment else None
    builder = _Builder(base)

    builder.add("chaostoolkit_experiment_in_progress", {}, _in_progress_points(start, end, not in_progress),
                experiment_id)
    builder.add("chaostoolkit_experiment_start_timestamp_seconds", {}, [(end, start / 1000)], experiment_id)
    if ended:
        builder.add("chaostoolkit_experiment_end_timestamp_seconds", {}, [(end, end / 1000)], experiment_id)
        builder.add("chaostoolkit_experiment_duration_seconds", {}, [(end, experiment.duration)], experiment_id)
    if not in_progress:
        status = experiment.status if experiment else "unknown"
        for candidate in EXPERIMENT_STATUSES:
            builder.add("chaostoolkit_experiment_status", {"status": candidate},
                        [(end, 1.0 if candidate == status else 0.0)], experiment_id)
    if experiment is not None:
        if "deviated" in experiment.fields:
            builder.add("chaostoolkit_experiment_deviated", {}, [(end, float(bool(experiment.fields["deviated"])))],
                        experiment_id)
        for phase in ("before", "after"):
            met = experiment.fields.get(f"steady_state_{phase}_met")
            if met is not None:
                builder.add("chaostoolkit_experiment_steady_state_met", {"phase": phase}, [(end, float(bool(met)))],
                            experiment_id)

    activities = [event for event in run.events if event.kind == ACTIVITY]
    counts: Dict[Tuple[str, str], int] = {}
    for event in activities:
        key = (event.activity_type or "unknown", event.status)
        counts[key] = counts.get(key, 0) + 1
    for (activity_type, status), count in sorted(counts.items()):
        builder.add("chaostoolkit_experiment_activities", {"activity_type": activity_type, "status": status},
                    [(end, float(count))], experiment_id)
    yield builder.families()

    occurrences: Dict[Tuple[str, str], int] = {}
    step = activities_per_slice or len(activities) or 1
    for first in range(0, len(activities), step):
        builder = _Builder(base)
        for event in activities[first:first + step]:
            key = (event.phase or "", event.name)
            occurrences[key] = occurrences.get(key, 0) + 1
            labels = {"phase": event.phase or "unknown", "activity_type": event.activity_type or "unknown",
                      "activity": event.name, "occurrence": str(occurrences[key])}
            at = epoch_ms(_last_time(event))
            builder.add("chaostoolkit_activity_start_timestamp_seconds", labels,
                        [(epoch_ms(event.start), epoch_ms(event.start) / 1000)], event.id)
            if event.duration is not None:
                builder.add("chaostoolkit_activity_duration_seconds", labels, [(at, event.duration)], event.id)
            builder.add("chaostoolkit_activity_status", {**labels, "status": event.status}, [(at, 1.0)], event.id)
            if event.fields.get("tolerance_met") is not None:
                builder.add("chaostoolkit_activity_tolerance_met", labels,
                            [(at, float(bool(event.fields["tolerance_met"])))], event.id)
        yield builder.families()


def merge_families(*runs_families: Sequence[Family]) -> List[Family]:
    """Families of several runs as one list, each name once (what a single file needs)."""
    merged: Dict[str, Family] = {}
    for families in runs_families:
        for family in families:
            known = merged.get(family.name)
            merged[family.name] = family if known is None else Family(
                family.name, family.help, known.series + family.series)
    return list(merged.values())


# A family (its series left out) and its series, a part at a time.
FamilyInParts = Tuple[Family, Iterable[Sequence[Series]]]


class SpooledFamilies:
    """Families made a part at a time (`run_family_slices`' parts, or the families of runs
    one after another) given back each family once, in order of first appearance, with
    the series of every part in order: what one text or its requests are made of. Each
    part's series are spooled to a temporary file of their family (in `directory`, else
    the system's) as they come: the 3 series of each of 10^6 activities are never all
    held. `series` counts them; `close` removes the files."""

    def __init__(self, slices: Iterable[Sequence[Family]] = (), directory: Optional[str] = None):
        self._spools: Dict[str, Tuple[Family, IO[bytes]]] = {}
        self._directory = directory
        self.series = 0
        try:
            for families in slices:
                self.add(families)
        except BaseException:
            self.close()
            raise

    def add(self, families: Sequence[Family]) -> None:
        for family in families:
            known = self._spools.get(family.name)
            if known is None:
                known = self._spools[family.name] = (Family(family.name, family.help, ()),
                                                     tempfile.TemporaryFile(prefix=".chaos-replay-",
                                                                            dir=self._directory))
            spool = known[1]
            spool.seek(0, os.SEEK_END)  # after the parts `families` read back, if it did
            pickle.dump([(series.labels, series.points, series.event_id) for series in family.series],
                        spool, pickle.HIGHEST_PROTOCOL)
            self.series += len(family.series)

    def families(self) -> Iterator[FamilyInParts]:
        for family, spool in self._spools.values():
            spool.seek(0)
            yield family, self._parts(spool)

    @staticmethod
    def _parts(spool: IO[bytes]) -> Iterator[List[Series]]:
        while True:
            try:
                part = pickle.load(spool)
            except EOFError:
                return
            yield [Series(*series) for series in part]

    def close(self) -> None:
        for _, spool in self._spools.values():
            spool.close()
        self._spools.clear()


def spooled_pieces(slices: Iterable[Sequence[Family]],
                   pieces: Callable[[Iterable[FamilyInParts]], Iterator[str]]) -> Iterator[str]:
    """The text `pieces` (`openmetrics_pieces`, `text_exposition_pieces`) makes of the
    families of `slices`, spooled (`SpooledFamilies`)."""
    spooled = SpooledFamilies(slices)
    try:
        yield from pieces(spooled.families())
    finally:
        spooled.close()


def whole_families(families: Iterable[Family]) -> Iterator[FamilyInParts]:
    """Families held whole, as `SpooledFamilies.families` gives them."""
    return ((family, [family.series]) for family in families)


def text_exposition(families: Sequence[Family]) -> str:
    """Prometheus text format 0.0.4, last value of each series, no timestamps."""
    return "".join(text_exposition_pieces(whole_families(families)))


def text_exposition_pieces(families: Iterable[FamilyInParts]) -> Iterator[str]:
    """`text_exposition` a family part at a time (joined they are its text)."""
    empty = True
    for family, parts in families:
        empty = False
        yield "\n".join(_family_header(family)) + "\n"
        for part in parts:
            if part:
                yield "".join(f"{family.name}{label_text(series.labels)} {_number(series.points[-1][1])}\n"
                              for series in part)
    if empty:
        yield "\n"


def openmetrics_text(families: Sequence[Family]) -> str:
    """OpenMetrics 1.0 with second timestamps, each family once, each series in time order, `# EOF`."""
    return "".join(openmetrics_pieces(whole_families(families)))


def openmetrics_pieces(families: Iterable[FamilyInParts]) -> Iterator[str]:
    """`openmetrics_text` a family part at a time (joined they are its text)."""
    for family, parts in families:
        yield "\n".join(openmetrics_header(family)) + "\n"
        for part in parts:
            samples = openmetrics_samples(Family(family.name, family.help, tuple(part)))
            if samples:
                yield "\n".join(samples) + "\n"
    yield OPENMETRICS_END + "\n"


def openmetrics_header(family: Family) -> List[str]:
    """The lines a family starts with in an OpenMetrics file (once per file)."""
    return _family_header(family)


def openmetrics_samples(family: Family) -> List[str]:
    """The family's samples as OpenMetrics lines, with second timestamps; a file may hold
    several runs' samples of one family after its one header."""
    lines = []
    for series in family.series:
        labels = label_text(series.labels)
        for timestamp, value in series.points:
            lines.append(f"{family.name}{labels} {_number(value)} {timestamp // 1000}.{timestamp % 1000:03d}")
    return lines


def _family_header(family: Family) -> List[str]:
    """HELP and TYPE, the same in the text format and in OpenMetrics."""
    return [f"# HELP {family.name} {_escape_help(family.help)}", f"# TYPE {family.name} gauge"]


class _Builder:
    def __init__(self, base: Mapping[str, str]):
        self.base = dict(base)
        self._series: Dict[str, List[Series]] = {}

    def add(self, name: str, labels: Mapping[str, str], points: Iterable[Tuple[int, float]],
            event_id: Optional[str]) -> None:
        # An empty label value is no label at all to Prometheus.
        merged = tuple(sorted((key, value) for key, value in {**self.base, **labels}.items() if value))
        self._series.setdefault(name, []).append(Series(merged, tuple(points), event_id))

    def families(self) -> List[Family]:
        return [Family(name, _HELP[name], tuple(series)) for name, series in self._series.items()]


def _in_progress_points(start: int, end: int, finished: bool) -> List[Tuple[int, float]]:
    step = max(IN_PROGRESS_STEP_MS, (end - start) // IN_PROGRESS_MAX_POINTS + 1)
    points = [(at, 1.0) for at in range(start, end, step)]
    points.append((end, 0.0 if finished else 1.0))
    return points


def _user_labels(event: Optional[Event]) -> Dict[str, str]:
    """The run's user tags as labels: names made valid, ours never overridden."""
    if event is None:
        return {}
    labels = {}
    for key, value in sorted(event.tags.items()):
        name = key if _LABEL_NAME.match(key) else _INVALID_LABEL_CHARS.sub("_", key)
        if not _LABEL_NAME.match(name):
            name = f"_{name}"
        if name.startswith("__") or name.startswith("chaostoolkit_") or name in _RESERVED_LABELS:
            continue
        labels[name] = str(value)
    return labels


# Ours, and those Prometheus and the pushgateway give a meaning to.
_RESERVED_LABELS = {"phase", "activity_type", "activity", "occurrence", "status", "job", "instance"}


def _last_time(event: Event) -> datetime:
    return event.end or event.start


def _number(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def label_text(labels: Sequence[Tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in labels) + "}"
