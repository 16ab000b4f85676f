"""What `chaos-replay` prints: a readable timeline, or one JSON document."""
import json
from collections import Counter
from typing import Iterable, Sequence

from .events import ACTIVITY, EXPERIMENT, Event, Run
from .sinks import Delivery, PlannedRequest

_CONTROL_CHARS = {code: f"\\x{code:02x}" for code in range(32)}
_CONTROL_CHARS.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r", 0x7F: "\\x7f"})


def printable(text: str) -> str:
    """Names come from experiments: keep control characters from reaching the terminal."""
    # isprintable() is False for every character the table replaces: most names skip the copy.
    return text if text.isprintable() else text.translate(_CONTROL_CHARS)


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.3f}s"


def timeline_text(run: Run) -> str:
    lines = [f"{printable(run.source)}  run {run.run_id}  {printable(run.title)!s}"]
    origin = min((event.start for event in run.events), default=None)
    # Runs once per event of a run that can have 100,000: the part of each line
    # that depends only on the kind, type, name and status is built once.
    label_of = {}
    for event in run.events:
        what = (event.kind, event.activity_type, event.name, event.status)
        label = label_of.get(what)
        if label is None:
            label = label_of[what] = _label(event)
        offset = (event.start - origin).total_seconds()
        lines.append(f"  {f'+{offset:.3f}s':>11} {_seconds(event.duration):>10}  {label}")
    lines.append(f"  {summary_line(run)}")
    return "\n".join(lines)


def _label(event: Event) -> str:
    """A timeline line's end: indented kind or activity type, name and status."""
    indent = "    " if event.kind == ACTIVITY else "  " if event.kind != EXPERIMENT else ""
    return f"{indent}{event.type_or_kind:<12} {printable(event.name)}  [{event.status}]"


def summary_line(run: Run) -> str:
    experiment = run.experiment
    activities = [event for event in run.events if event.kind == ACTIVITY]
    counts = Counter(event.status for event in activities)
    by_status = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    if experiment is None:
        head = "status unknown (no experiment record: run cut short)"
    else:
        deviated = "deviated" if experiment.fields.get("deviated") else "not deviated"
        head = f"status {experiment.status}, {deviated}"
        if experiment.fields.get("steady_state_before_met") is False:
            head += ", steady state not met before the method"
    return f"{head}; {len(activities)} activities" + (f": {by_status}" if by_status else "")


def plans_text(label: str, requests: Sequence[PlannedRequest]) -> str:
    lines = [f"  -> {label}: {len(requests)} request(s)"]
    for request in requests:
        lines.append(f"     {request.method} {request.url}")
        for name, value in request.headers.items():
            lines.append(f"       {name}: {value}")
        if request.body is not None:
            body = request.body if isinstance(request.body, str) else json.dumps(request.body, ensure_ascii=False)
            for body_line in body.splitlines():
                lines.append(f"       {printable(body_line)}")
    return "\n".join(lines)


def delivery_text(delivery: Delivery) -> str:
    if delivery.ok:
        text = f"  -> {delivery.target}: delivered {len(delivery.delivered)} event(s)"
    else:
        text = (
            f"  -> {delivery.target}: delivered {len(delivery.delivered)}, "
            f"NOT delivered {len(delivery.failed)}: {delivery.error or 'see above'}"
        )
    return "\n".join([text, *(f"     note: {note}" for note in delivery.notes)])


def run_document(run: Run, plans=None, deliveries: Iterable[Delivery] = ()) -> dict:
    document = {
        "journal": run.source,
        "run_id": run.run_id,
        "events": [_event_json(event) for event in run.events],
    }
    if plans is not None:
        document["plans"] = [
            {"target": label, "requests": [request.to_dict() for request in requests]}
            for label, requests in plans
        ]
    deliveries = list(deliveries)
    if deliveries:
        document["deliveries"] = [delivery.to_dict() for delivery in deliveries]
    return document


def _event_json(event: Event) -> dict:
    data = event.to_dict()
    del data["run_id"]
    return data

