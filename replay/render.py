"""What `chaos-replay` prints: a readable timeline, or one JSON document."""
import json
import unicodedata
from collections import Counter
from typing import Iterable, Iterator, Sequence, Union

from .events import ACTIVITY, EXPERIMENT, Event, Run
from .sinks import BodyText, Delivery, Planned, PlannedRequest


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
    return "\n".join(plans_lines(label, requests))


def plans_lines(label: str, requests: Union[Sequence[PlannedRequest], Planned]) -> Iterator[str]:
    """`plans_text` a line at a time: the requests of a run of 10^6 events are made as they
    are shown (`Planned`), and a body too big to hold a piece at a time (`BodyText`)."""
    yield f"  -> {printable(label)}: {len(requests)} request(s)"
    for request in requests:
        yield f"     {request.method} {printable(request.url)}"
        for name, value in request.headers.items():
            yield f"       {name}: {printable(value)}"
        if request.body is None:
            continue
        if isinstance(request.body, BodyText):
            # Each piece is whole lines: its lines are the body's.
            pieces: Iterable[str] = request.body
        else:
            pieces = [request.body if isinstance(request.body, str) else json.dumps(request.body, ensure_ascii=False)]
        for piece in pieces:
            for body_line in piece.splitlines():
                yield f"       {printable(body_line)}"


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
    (joined by newlines they are that text), `events_per_block` events a block, then the
    plans a request at a time: a run of 10^6 events is written a block at a time, never
    held as one document. A `SameLine` block goes on the line before it (no newline between):
    a piece of a body too big to be one block (`BodyText`)."""
    without_events = run.with_events(())
    head = run_document(without_events)
    del head["events"]
    # The plans are written a request at a time (`_plans_blocks`), the deliveries whole.
    rest = run_document(without_events, None, deliveries)
    del rest["journal"], rest["run_id"], rest["events"]
    head_text = _dumped(head)[:-2] + ',\n  "events": ['
    more = plans is not None or bool(rest)
    if not run.events:
        yield head_text + ("]," if more else "]")
    else:
        yield head_text
        for first in range(0, len(run.events), events_per_block):
            listed = _dumped([_event_json(event) for event in run.events[first:first + events_per_block]])
            # The list's elements, one level deeper (inside the document's "events").
            block = "  " + listed[2:-2].replace("\n", "\n  ")
            yield block if first + events_per_block >= len(run.events) else block + ","
        yield "  ]," if more else "  ]"
    if plans is not None:
        yield from _plans_blocks(plans)
        if rest:
            yield SameLine(",")
    yield _dumped(rest)[2:] if rest else "}"


class SameLine(str):
    """A block of `run_document_blocks` that goes on the line the block before it ended
    (no newline between them): a piece of a body too big to be one block."""


# Requests written as one block (one json.dumps call: see EVENTS_PER_BLOCK), while their
# bodies hold about this many characters in all.
REQUESTS_PER_BLOCK = 1000
REQUEST_BLOCK_CHARACTERS = 1 << 20


def _plans_blocks(plans) -> Iterator[str]:
    """The document's `"plans"` as `json.dumps(..., indent=2)` writes it inside a run's
    document, a block of requests at a time; a `BodyText` body (one JSON string) a piece
    at a time."""
    opened = False
    for label, requests in plans:
        if opened:
            yield SameLine(",")
        else:
            yield '  "plans": ['
            opened = True
        target = f'    {{\n      "target": {json.dumps(label, ensure_ascii=False)},\n      "requests": ['
        shown = False
        for blocks in _request_blocks(requests):
            if shown:
                yield SameLine(",")
            else:
                yield target
                shown = True
            yield from blocks
        yield "      ]\n    }" if shown else target + "]\n    }"
    yield "  ]" if opened else '  "plans": []'


# A request's depth in a run's document: runs[].plans[].requests[].
_REQUEST_INDENT = " " * 8


def _request_blocks(requests: Iterable[PlannedRequest]) -> Iterator[Iterator[str]]:
    """The requests' JSON, each item the blocks of some requests in a row (no comma after
    the last): several held whole at once, or one whose body is a `BodyText`."""
    held: list = []
    characters = 0
    for request in requests:
        if isinstance(request.body, BodyText):
            if held:
                yield iter([_requests_block(held)])
                held, characters = [], 0
            yield _body_text_request_blocks(request)
            continue
        held.append(request.to_dict())
        characters += len(request.body) if isinstance(request.body, str) else 1
        if len(held) >= REQUESTS_PER_BLOCK or characters >= REQUEST_BLOCK_CHARACTERS:
            yield iter([_requests_block(held)])
            held, characters = [], 0
    if held:
        yield iter([_requests_block(held)])


def _requests_block(requests: list) -> str:
    listed = _dumped(requests)
    # The list's elements, at a request's depth.
    return _REQUEST_INDENT[2:] + listed[2:-2].replace("\n", "\n" + _REQUEST_INDENT[2:])


def _body_text_request_blocks(request: PlannedRequest) -> Iterator[str]:
    shell = _dumped({"method": request.method, "url": request.url, "headers": dict(request.headers), "body": ""})
    # `"body": ""` ends it: the body's pieces go between the quotes, each escaped as JSON does.
    yield _REQUEST_INDENT + shell[:-3].replace("\n", "\n" + _REQUEST_INDENT)
    for piece in request.body:
        yield SameLine(json.dumps(piece, ensure_ascii=False)[1:-1])
    yield SameLine('"\n' + _REQUEST_INDENT + "}")


def _dumped(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _event_json(event: Event) -> dict:
    data = event.to_dict()
    del data["run_id"]
    return data

