"""Events -> Grafana annotations: pure functions, no I/O.

What a run looks like on a dashboard:

- the experiment: one region from the run's start to its end, its text giving
  the title, the status, whether it deviated and how many activities failed;
- every activity (action or probe): a region from its start to its end (a
  point while it still runs, or when it took no time), its text saying what
  it was, in which phase, how it ended and how long it took;
- a steady-state hypothesis not met, an interruption, a user mark: a point.

The method is a region too (chaosdb posted a point at its start and one at
its end, tagged `method`).

Every annotation carries the tags `chaostoolkit`, `run-<run id>`,
`event-<event id>`, its kind (`experiment`, `activity`, `steady-state`,
`interruption`, `mark`), `status-<status>`, `experiment-<title>` and, for
activities, `action`/`probe` and `phase-<phase>`; then the target's tags and
the events' user tags (`key-value`). Grafana splits a tag on its first `:`
into key and value (FACTS §7), so generated tags never contain one: anything
but letters, digits, `.`, `_` and `-` becomes `-`.

`run-<id>` and `event-<id>` are how a later send finds what is already on the
server: the event id tag maps an annotation back to its event.

Next to ours, each annotation keeps the tags chaosdb.grafana put on its own,
so a dashboard's annotation query written for chaosdb keeps matching:
`experiment` on the run; `method`, `before`, `after` on the method; `activity`,
`before`, `after`, `action`/`probe`, the activity's name as written and its
Python function on an activity (chaosdb sent one point tagged `before` and one
tagged `after`; our one region carries both).
"""
import re
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..events import ACTIVITY, EXPERIMENT, INTERRUPTION, MARK, PHASE, Event, Run, epoch_ms
from ..journal import PHASE_NAMES
from . import shorten

__all__ = [
    "Annotation",
    "CHAOSTOOLKIT_TAG",
    "TAGS_LENGTH_LIMIT",
    "epoch_ms",
    "event_annotation",
    "event_tag",
    "run_annotations",
    "iter_run_annotations",
    "run_tag",
    "tag_value",
    "tags_length",
]

CHAOSTOOLKIT_TAG = "chaostoolkit"
RUN_TAG_PREFIX = "run-"
EVENT_TAG_PREFIX = "event-"
# Grafana's `[annotations] tags_length` default: the length of the tags as a
# JSON array; a longer list is refused with a 400.
TAGS_LENGTH_LIMIT = 500
_SLUG_LIMIT = 60
_ERROR_LIMIT = 300
_UNSAFE_TAG_CHARACTERS = re.compile(r"[^\w.-]+")

# The journal's phase names; every `during` hypothesis is labelled alike.
_PHASE_LABELS = {**PHASE_NAMES, "during": "steady-state hypothesis during"}


class Annotation(NamedTuple):
    """One annotation as we want it on the server."""

    event_id: str
    kind: str
    time: int  # epoch ms
    time_end: int  # epoch ms; equal to `time` for a point
    text: str
    tags: Tuple[str, ...]

    @property
    def is_region(self) -> bool:
        return self.time_end > self.time

    def body(self) -> dict:
        """The fields Grafana stores for it (PostAnnotationsCmd / PatchAnnotationsCmd)."""
        return {"time": self.time, "timeEnd": self.time_end, "text": self.text, "tags": list(self.tags)}


def tag_value(text: str, limit: int = _SLUG_LIMIT) -> str:
    """`text` as a tag fragment Grafana keeps whole: no `:`, no spaces, lower case."""
    slug = _UNSAFE_TAG_CHARACTERS.sub("-", text.strip().lower()).strip("-")
    return slug[:limit].rstrip("-")


def run_tag(run_id: str) -> str:
    return RUN_TAG_PREFIX + tag_value(run_id)


def event_tag(event_id: str) -> str:
    return EVENT_TAG_PREFIX + tag_value(event_id)


def tags_length(tags: Sequence[str]) -> int:
    """Grafana's estimate of the tags' length: a JSON array of quoted strings."""
    return 2 + sum(len(tag) + 2 for tag in tags) + max(len(tags) - 1, 0)


def run_annotations(run: Run, only_actions: bool = False,
                    extra_tags: Sequence[str] = ()) -> List[Annotation]:
    """The annotations of a run's events, in the run's order; events that show nothing are left out."""
    return list(iter_run_annotations(run, only_actions, extra_tags))


def iter_run_annotations(run: Run, only_actions: bool = False,
                         extra_tags: Sequence[str] = ()) -> Iterator[Annotation]:
    """`run_annotations`, one at a time."""
    for event in run.events:
        if only_actions and event.kind == ACTIVITY and event.activity_type == "probe":
            continue
        annotation = event_annotation(event, run.title, extra_tags)
        if annotation is not None:
            yield annotation


def event_annotation(event: Event, title: str, extra_tags: Sequence[str] = ()) -> Optional[Annotation]:
    """The annotation of one event, or None for events shown through others (phases that went well)."""
    start = epoch_ms(event.start)
    end = epoch_ms(event.end) if event.end is not None else start
    if event.kind == EXPERIMENT:
        kind, text, time, time_end = "experiment", _experiment_text(event), start, end
    elif event.kind == ACTIVITY:
        kind, text, time, time_end = "activity", _activity_text(event), start, end
    elif event.kind == PHASE and event.phase == "method":
        kind, text, time, time_end = "method", _method_text(event, title), start, end
    elif event.kind == PHASE:
        if event.fields.get("steady_state_met") is not False:
            return None
        # The hypothesis is found not met when it ends.
        kind, text, time, time_end = "steady-state", _steady_state_text(event), end, end
    elif event.kind == INTERRUPTION:
        kind, text, time, time_end = "interruption", _interruption_text(event), start, start
    elif event.kind == MARK:
        kind, text, time, time_end = "mark", _mark_text(event), start, end
    else:
        return None
    return Annotation(event.id, kind, time, time_end, text, _tags(event, kind, title, extra_tags))


def _tags(event: Event, kind: str, title: str, extra_tags: Sequence[str]) -> Tuple[str, ...]:
    """Identity tags first: when the list is too long for Grafana, the last ones are dropped."""
    tags = [CHAOSTOOLKIT_TAG, run_tag(event.run_id), event_tag(event.id), kind,
            "status-" + tag_value(event.status)]
    if event.kind == ACTIVITY and event.activity_type:
        tags.append(tag_value(event.activity_type))
    if event.phase:
        tags.append("phase-" + tag_value(event.phase))
    if tag_value(title):
        tags.append("experiment-" + tag_value(title))
    tags.extend(_chaosdb_tags(event, kind))
    tags.extend(tag for tag in extra_tags if tag)
    for key, value in event.tags.items():
        user_tag = "-".join(part for part in (tag_value(key), tag_value(str(value))) if part)
        if user_tag:
            tags.append(user_tag)
    unique = list(dict.fromkeys(tags))
    while tags_length(unique) > TAGS_LENGTH_LIMIT:
        unique.pop()
    return tuple(unique)


def _chaosdb_tags(event: Event, kind: str) -> List[str]:
    """The tags chaosdb.grafana gave the same moment: an annotation query written for it keeps matching.

    The activity's name goes as it was written (chaosdb's queries match it
    exactly); the experiment's description, which chaosdb put on the method's
    points, is left out: free text of any length would crowd out the tags
    that identify the annotation (Grafana refuses tags over 500 characters).
    """
    if kind == "experiment":
        return ["experiment"]
    if kind == "method":
        return ["method", "before", "after"]
    if kind != "activity":
        return []
    tags = ["activity", "before", "after"]
    if event.activity_type:
        tags.append(event.activity_type)
    if event.name and event.name.strip():
        tags.append(event.name)
    if event.fields.get("func"):
        tags.append(str(event.fields["func"]))
    return tags


def _method_text(event: Event, title: str) -> str:
    state = "running" if event.end is None else f"{event.status} in {_seconds(event.duration)}"
    return f"method: {title}\nstatus: {state}"


def _seconds(value: Optional[float]) -> str:
    return f"{value:.3f} s" if value is not None else ""


def _experiment_text(event: Event) -> str:
    fields = event.fields
    if event.end is None:
        state = "running"
    else:
        state = f"{event.status}, {'deviated' if fields.get('deviated') else 'not deviated'}"
    lines = [f"Chaos Toolkit experiment: {event.name}", f"status: {state}"]
    activities = fields.get("activities")
    if activities is not None:
        lines.append(f"activities: {activities}, failed: {fields.get('failed_activities', 0)}")
    hypotheses = [
        f"{moment} {'met' if met else 'not met'}"
        for moment, met in (("before", fields.get("steady_state_before_met")),
                            ("after", fields.get("steady_state_after_met")))
        if met is not None
    ]
    if hypotheses:
        lines.append("steady state: " + ", ".join(hypotheses))
    if event.duration is not None:
        lines.append(f"duration: {_seconds(event.duration)}")
    return "\n".join(lines)


def _activity_text(event: Event) -> str:
    phase = _PHASE_LABELS.get(event.phase or "", event.phase or "")
    head = f"{event.type_or_kind} {event.name}" + (f" ({phase})" if phase else "")
    if event.end is None:
        lines = [head, "status: running"]
    else:
        lines = [head, f"status: {event.status} in {_seconds(event.duration)}"]
    tolerance = event.fields.get("tolerance_met")
    if tolerance is not None:
        lines.append(f"tolerance {'met' if tolerance else 'NOT met'}")
    if event.fields.get("background"):
        lines.append("ran in the background")
    if event.fields.get("error"):
        lines.append("error: " + shorten(event.fields["error"], _ERROR_LIMIT))
    return "\n".join(lines)


def _steady_state_text(event: Event) -> str:
    text = f"steady state NOT met: {event.name}"
    if event.fields.get("iteration") is not None:
        text += f" (iteration {event.fields['iteration']})"
    return text


def _interruption_text(event: Event) -> str:
    reason = event.fields.get("reason") or "interrupted"
    signal = event.fields.get("signal")
    return f"run interrupted: {shorten(reason, _ERROR_LIMIT)}" + (f" ({signal})" if signal else "")


def _mark_text(event: Event) -> str:
    details = ", ".join(f"{key}={shorten(value, 80)}" for key, value in sorted(event.fields.items()))
    return f"mark: {event.name}" + (f"\n{details}" if details else "")
