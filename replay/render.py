"""What `chaos-replay` prints: a readable timeline, or one JSON document."""
import json
import unicodedata
from collections import Counter
from typing import Iterable, Iterator, Sequence

from .events import ACTIVITY, EXPERIMENT, Event, Run
from .sinks import Delivery, PlannedRequest


class _Escapes(dict):
    """What `printable` turns each character into, filled in as characters are met.

    Escaped: C0 and C1 control characters (a newline could print a forged
    line, ESC a terminal escape sequence), format characters (bidi overrides
    that reorder what the terminal shows, zero-width characters), line and
    paragraph separators, and lone surrogates. Everything else prints as is.
    """

    _NAMED = {ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}

    def __missing__(self, code: int):
        if code in self._NAMED:
            escaped = self._NAMED[code]
        elif unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            escaped = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        else:
            escaped = chr(code)
        self[code] = escaped
        return escaped


_ESCAPES = _Escapes()


def printable(text: object) -> str:
    """Text from a journal, a side file or a server, safe to print on one line.

    The one filter for everything `chaos-replay` and the live controls print:
    names, run ids, statuses, activity types, labels, errors. No journal can
    print a line of its own or send escape codes to the terminal.
    """
    text = str(text)
    # isprintable() is False for every character escaped: most texts skip the copy.
    return text if text.isprintable() else text.translate(_ESCAPES)


def timeline_text(run: Run) -> str:
    return "\n".join(timeline_blocks(run))


# Lines of a timeline made into one text at a time (`timeline_blocks`).
TIMELINE_LINES_PER_BLOCK = 1000


def timeline_blocks(run: Run, lines_per_block: int = TIMELINE_LINES_PER_BLOCK) -> Iterator[str]:
    """`timeline_text` in blocks of `lines_per_block` lines (joined by newlines they are that
    text): a run of 10^6 events is printed a block at a time, never held as one text."""
    lines = [f"{printable(run.source)}  run {printable(run.run_id)}  {printable(run.title)}"]
    origin = min((event.start for event in run.events), default=None)
    # Runs once per event of a run that can have 100,000: the part of each line
    # that depends only on the kind, type, name and status is built once.
    label_of = {}
    append = lines.append
    for event in run.events:
        _, _, kind, name, start, end, status, _, activity_type, _, _ = event
        what = (kind, activity_type, name, status)
        label = label_of.get(what)
        if label is None:
            label = label_of[what] = _label(event)
        # One format per line: the offset is never negative (`origin` is the earliest start), so
        # `+` and the width of the number give what `f"+{offset:.3f}s"` right-aligned in 11 gives.
        if end is None:
            append(f"  {(start - origin).total_seconds():>+10.3f}s          -  {label}")
        else:
            append(f"  {(start - origin).total_seconds():>+10.3f}s {(end - start).total_seconds():>9.3f}s  {label}")
        if len(lines) >= lines_per_block:
            yield "\n".join(lines)
            lines.clear()
    lines.append(f"  {summary_line(run)}")
    yield "\n".join(lines)


def _label(event: Event) -> str:
    """A timeline line's end: indented kind or activity type, name and status."""
    indent = "    " if event.kind == ACTIVITY else "  " if event.kind != EXPERIMENT else ""
    return f"{indent}{printable(event.type_or_kind):<12} {printable(event.name)}  [{printable(event.status)}]"


def summary_line(run: Run) -> str:
    experiment = run.experiment
    activities = [event for event in run.events if event.kind == ACTIVITY]
    counts = Counter(event.status for event in activities)
    by_status = ", ".join(f"{count} {printable(status)}" for status, count in sorted(counts.items()))
    if experiment is None:
        head = "status unknown (no experiment record: run cut short)"
    else:
        deviated = "deviated" if experiment.fields.get("deviated") else "not deviated"
        head = f"status {printable(experiment.status)}, {deviated}"
        if experiment.fields.get("steady_state_before_met") is False:
            head += ", steady state not met before the method"
    return f"{head}; {len(activities)} activities" + (f": {by_status}" if by_status else "")


def plans_text(label: str, requests: Sequence[PlannedRequest]) -> str:
    lines = [f"  -> {printable(label)}: {len(requests)} request(s)"]
    for request in requests:
        lines.append(f"     {request.method} {printable(request.url)}")
        for name, value in request.headers.items():
            lines.append(f"       {name}: {printable(value)}")
        if request.body is not None:
            body = request.body if isinstance(request.body, str) else json.dumps(request.body, ensure_ascii=False)
            for body_line in body.splitlines():
                lines.append(f"       {printable(body_line)}")
    return "\n".join(lines)


def delivery_text(delivery: Delivery) -> str:
    if delivery.ok:
        text = f"  -> {printable(delivery.target)}: delivered {len(delivery.delivered)} event(s)"
    else:
        text = (
            f"  -> {printable(delivery.target)}: delivered {len(delivery.delivered)}, "
            f"NOT delivered {len(delivery.failed)}: {printable(delivery.error or 'see above')}"
        )
    return "\n".join([text, *(f"     note: {printable(note)}" for note in delivery.notes)])


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


# Events written as one block: json.dumps with an indent runs json's pure-Python encoder,
# which makes a reference cycle per call, and the replay pauses the cycle collector
# (chaosreplay.journal.cycle_collection_paused): one call per event would hold them all.
EVENTS_PER_BLOCK = 1000


def run_document_blocks(run: Run, plans=None, deliveries: Iterable[Delivery] = (),
                        events_per_block: int = EVENTS_PER_BLOCK) -> Iterator[str]:
    """`json.dumps(run_document(...), indent=2, ensure_ascii=False)` in blocks of whole lines
    (joined by newlines they are that text), `events_per_block` events a block: a run of
    10^6 events is written a block at a time, never held as one document."""
    without_events = run.with_events(())
    head = run_document(without_events)
    del head["events"]
    rest = run_document(without_events, plans, deliveries)
    del rest["journal"], rest["run_id"], rest["events"]
    head_text = _dumped(head)[:-2] + ',\n  "events": ['
    if not run.events:
        yield head_text + ("]," if rest else "]")
        yield _dumped(rest)[2:] if rest else "}"
        return
    yield head_text
    for first in range(0, len(run.events), events_per_block):
        listed = _dumped([_event_json(event) for event in run.events[first:first + events_per_block]])
        # The list's elements, one level deeper (inside the document's "events").
        block = "  " + listed[2:-2].replace("\n", "\n  ")
        yield block if first + events_per_block >= len(run.events) else block + ","
    yield "  ]," + _dumped(rest)[1:] if rest else "  ]\n}"


def _dumped(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _event_json(event: Event) -> dict:
    data = event.to_dict()
    del data["run_id"]
    return data

