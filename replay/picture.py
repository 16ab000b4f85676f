"""A picture of runs, no server needed: one self-contained SVG drawing, or an HTML page around it.

Each run is drawn as a timeline: one lane per phase (steady state before, each
continuous-hypothesis iteration, method, after, rollbacks), every activity a
bar from its start to its end coloured by its status, background activities on
lanes of their own (packed so that overlapping ones never share a lane), marks
and interruptions as vertical lines, a steady state not met in red. Several
runs are stacked, aligned on their start, on one time scale.

The HTML page is the same drawing plus a tooltip: hovering or focusing (Tab) a
bar shows its name, type, provider, status, duration, tolerance and short
error. Nothing is loaded from anywhere (a Content-Security-Policy forbids it):
the file works offline and as a CI artifact.

Every text comes from journals, hence from anyone: it is escaped for XML,
control characters are made visible, and the tooltip's details travel as JSON
read with `textContent`, never as markup.

Large runs stay readable and light: continuous-hypothesis iterations beyond
`MAX_DURING_LANES` share one lane, background lanes beyond
`MAX_BACKGROUND_LANES` share the last one, and the page's script handles every
bar through one listener, so 10,000 activities are 10,000 plain rectangles.
"""
import bisect
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Dict, List, Optional, Sequence, Tuple

from .events import ACTIVITY, INTERRUPTION, MARK, PHASE, Event, Run
from .journal import PHASE_NAMES
from .render import printable
from .sinks import shorten

__all__ = ["PICTURE_FORMATS", "STATUS_COLOURS", "MAX_DURING_LANES", "MAX_BACKGROUND_LANES", "svg_document", "html_document"]

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "interrupted": "#ef6c00",
    "aborted": "#6a1b9a",
    "running": "#1565c0",
    "unknown": "#757575",
}
NOT_MET_FILL = "#fdecea"
NOT_MET_STROKE = "#c62828"
MARK_COLOUR = "#1565c0"
INTERRUPTION_COLOUR = "#ef6c00"
MAX_DURING_LANES = 8
MAX_BACKGROUND_LANES = 6

_WIDTH = 1200
_LABEL_WIDTH = 280
_PLOT_WIDTH = _WIDTH - _LABEL_WIDTH - 20
_LANE_HEIGHT = 20
_BAR_HEIGHT = 14
_RUN_HEADER = 44
_AXIS_HEIGHT = 30
_RUN_GAP = 26
_LEGEND_HEIGHT = 28
_LINES_ROW = 14
_TITLE_LIMIT = 110
_LABEL_LIMIT = 38
_NICE_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300,
               600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
_PHASE_ORDER = {"before": 0, "during": 1, "method": 2, "after": 3, "rollbacks": 4}
# XML 1.0 cannot hold these even escaped; printable() already made the C0 controls visible.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _text(value) -> str:
    """Untrusted text, safe as XML character data or a double-quoted attribute."""
    text = _NOT_XML.sub("\ufffd", printable(str(value)))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


@dataclass
class _Lane:
    label: str
    bars: List[Event] = field(default_factory=list)
    phase: Optional[Event] = None  # drawn behind the bars; a steady state not met stands out
    not_met: bool = False


@dataclass
class _Layout:
    run: Run
    origin: datetime
    span: float
    lanes: List[_Lane]
    lines: List[Event]  # marks and interruptions


def _seconds_since(origin: datetime, instant: datetime) -> float:
    return (instant - origin).total_seconds()


def _layout(run: Run) -> _Layout:
    """A run's lanes, in the order phases are played."""
    events = run.events
    origin = min((event.start for event in events), default=None)
    if origin is None:
        return _Layout(run, datetime.min, 0.0, [], [])
    latest = max(event.end or event.start for event in events)
    phases = [event for event in events if event.kind == PHASE]
    activities = [event for event in events if event.kind == ACTIVITY]
    lines = [event for event in events if event.kind in (MARK, INTERRUPTION)]

    iterations = sorted((event for event in phases if event.phase == "during"), key=lambda event: event.start)
    iteration_starts = [event.start for event in iterations]
    collapse_during = len(iterations) > MAX_DURING_LANES

    # (phase order, iteration, background slot) -> lane
    groups: Dict[Tuple[int, int, str], _Lane] = {}
    background: Dict[Tuple[int, int], List[Event]] = {}
    for activity in activities:
        order = _PHASE_ORDER.get(activity.phase or "", len(_PHASE_ORDER))
        iteration = 0
        if activity.phase == "during" and iterations and not collapse_during:
            iteration = max(bisect.bisect_right(iteration_starts, activity.start), 1)
        if activity.fields.get("background"):
            background.setdefault((order, iteration), []).append(activity)
            continue
        lane = groups.get((order, iteration, ""))
        if lane is None:
            lane = groups[(order, iteration, "")] = _Lane(_lane_label(activity.phase, iteration, len(iterations)))
        lane.bars.append(activity)

    for (order, iteration), items in background.items():
        phase_name = next(iter(items)).phase
        slots, collapsed = _packed(items)
        for slot, bars in enumerate(slots):
            label = _lane_label(phase_name, iteration, len(iterations)) + f" · background {slot + 1}"
            if collapsed and slot == len(slots) - 1:
                label += "+"
            groups[(order, iteration, f"b{slot:04d}")] = _Lane(label, bars)

    for event in phases:
        order = _PHASE_ORDER.get(event.phase or "", len(_PHASE_ORDER))
        iteration = 0
        if event.phase == "during" and not collapse_during:
            iteration = iterations.index(event) + 1 if event in iterations else 0
        lane = groups.get((order, iteration, ""))
        if lane is None:
            # A phase with only background activities, or none recorded: its lane still shows.
            lane = groups[(order, iteration, "")] = _Lane(_lane_label(event.phase, iteration, len(iterations)))
        if event.fields.get("steady_state_met") is False:
            lane.not_met = True
            lane.phase = event
        elif lane.phase is None:
            lane.phase = event

    lanes = [groups[key] for key in sorted(groups)]
    for lane in lanes:
        if lane.not_met:
            lane.label += " ✗ not met"
    return _Layout(run, origin, max(_seconds_since(origin, latest), 0.0), lanes, lines)


def _packed(items: Sequence[Event]) -> Tuple[List[List[Event]], bool]:
    """Background activities in as few lanes as possible, none overlapping another in its lane;
    True when more were needed than MAX_BACKGROUND_LANES (the last lane then holds the rest)."""
    slots: List[List[Event]] = []
    ends: List[datetime] = []
    collapsed = False
    for event in sorted(items, key=lambda event: event.start):
        end = event.end or event.start
        for index, slot_end in enumerate(ends):
            if slot_end <= event.start:
                slots[index].append(event)
                ends[index] = end
                break
        else:
            if len(slots) < MAX_BACKGROUND_LANES:
                slots.append([event])
                ends.append(end)
            else:
                # Collapsed: the last lane holds every activity that found no free one.
                slots[-1].append(event)
                ends[-1] = max(ends[-1], end)
                collapsed = True
    return slots, collapsed


def _lane_label(phase: Optional[str], iteration: int, iterations: int) -> str:
    if phase == "during":
        if iteration:
            return f"steady state during #{iteration}"
        return f"steady state during #1–#{iterations}" if iterations > 1 else "steady state during"
    names = {"before": "steady state before", "after": "steady state after"}
    return names.get(phase or "", PHASE_NAMES.get(phase or "", phase or "other"))


def _tick_step(span: float) -> float:
    for step in _NICE_STEPS:
        if span / step <= 10:
            return step
    return _NICE_STEPS[-1]


def _offset_text(seconds: float, step: float) -> str:
    if step < 1:
        decimals = 3 if step < 0.01 else 2 if step < 0.1 else 1
        return f"+{seconds:.{decimals}f}s"
    if seconds < 60 or step < 60 and seconds < 600:
        return f"+{seconds:.0f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"+{minutes}m{rest:02d}s" if rest else f"+{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"+{hours}h{minutes:02d}m"


def _clock_text(instant: datetime, step: float) -> str:
    if step < 1:
        return instant.strftime("%H:%M:%S.") + f"{instant.microsecond // 1000:03d}"
    return instant.strftime("%H:%M:%S")


def _duration_text(seconds: Optional[float]) -> str:
    if seconds is None:
        return "still running (no end recorded)"
    return f"{seconds:.3f} s"


def _details(event: Event, origin: datetime) -> List[Tuple[str, str]]:
    """What a bar's tooltip says, as (label, value) pairs of plain text."""
    fields = event.fields
    rows = [("name", event.name), ("type", event.activity_type or "activity")]
    if fields.get("provider"):
        rows.append(("provider", str(fields["provider"])))
    rows.append(("status", event.status))
    rows.append(("phase", _lane_label(event.phase, 0, 0)))
    rows.append(("duration", _duration_text(event.duration)))
    rows.append(("start", f"{event.start.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC "
                          f"(+{_seconds_since(origin, event.start):.3f}s)"))
    if "tolerance_met" in fields:
        rows.append(("tolerance", "met" if fields["tolerance_met"] else "NOT met"))
    if fields.get("background"):
        rows.append(("background", "yes"))
    if fields.get("error"):
        rows.append(("error", shorten(str(fields["error"]), 300)))
    return rows


def _colour(event: Event) -> str:
    status = "running" if event.end is None and event.status == "unknown" else event.status
    return STATUS_COLOURS.get(status, STATUS_COLOURS["unknown"])


class _Drawing:
    """Builds the SVG text of all runs; `interactive` adds what the HTML page's script uses."""

    def __init__(self, runs: Sequence[Run], interactive: bool):
        self.interactive = interactive
        self.layouts = [_layout(run) for run in runs]
        longest = max((layout.span for layout in self.layouts), default=0.0)
        self.span = longest if longest > 0 else 1.0
        self.scale = _PLOT_WIDTH / self.span
        self.step = _tick_step(self.span)
        self.details: List[List[Tuple[str, str]]] = []
        self.parts: List[str] = []

    def x(self, seconds: float) -> float:
        return _LABEL_WIDTH + seconds * self.scale

    def svg(self) -> str:
        height = _LEGEND_HEIGHT + sum(self._run_height(layout) for layout in self.layouts) + 10
        out = self.parts
        # In the page, Tab goes from bar to bar: the drawing itself takes no focus.
        focus = ' tabindex="-1"' if self.interactive else ""
        out.append(f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline"{focus} width="{_WIDTH}" height="{height}" '
                   f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12" role="img" '
                   f'aria-label="Chaos Toolkit run timeline">')
        out.append(f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>')
        self._legend()
        y = _LEGEND_HEIGHT
        for layout in self.layouts:
            self._run(layout, y)
            y += self._run_height(layout)
        out.append("</svg>")
        return "".join(out)

    def _run_height(self, layout: _Layout) -> int:
        return (_RUN_HEADER + _AXIS_HEIGHT + self._lines_row(layout) + max(len(layout.lanes), 1) * _LANE_HEIGHT
                + _RUN_GAP)

    @staticmethod
    def _lines_row(layout: _Layout) -> int:
        """A row for the labels of marks and interruptions, when the run has any."""
        return _LINES_ROW if layout.lines else 0

    def _legend(self) -> None:
        x = 10
        for status, colour in STATUS_COLOURS.items():
            self.parts.append(f'<rect class="legend" x="{x}" y="8" width="12" height="12" fill="{colour}"/>'
                              f'<text x="{x + 16}" y="18">{status}</text>')
            x += 30 + 7 * len(status)
        self.parts.append(f'<line x1="{x + 4}" y1="6" x2="{x + 4}" y2="22" stroke="{MARK_COLOUR}" '
                          f'stroke-dasharray="3,2"/><text x="{x + 10}" y="18">mark</text>')
        x += 50
        self.parts.append(f'<line x1="{x}" y1="6" x2="{x}" y2="22" stroke="{INTERRUPTION_COLOUR}" '
                          f'stroke-width="2"/><text x="{x + 6}" y="18">interruption</text>')

    def _run(self, layout: _Layout, top: int) -> None:
        out = self.parts
        run = layout.run
        experiment = run.experiment
        status = experiment.status if experiment else "unknown"
        deviated = bool(experiment and experiment.fields.get("deviated"))
        title = shorten(printable(run.title) or "(untitled experiment)", _TITLE_LIMIT)
        out.append(f'<g class="run" data-run-id="{_text(run.run_id)}">')
        out.append(f'<text class="run-title" x="10" y="{top + 16}" font-size="15" font-weight="bold">'
                   f'{_text(title)}</text>')
        summary = [f"status {status}"]
        if deviated:
            summary.append("DEVIATED")
        activities = sum(1 for event in run.events if event.kind == ACTIVITY)
        summary.append(f"{activities} activities")
        if layout.lanes:
            summary.append(f"started {layout.origin.strftime('%Y-%m-%d %H:%M:%S')} UTC")
            summary.append(f"lasted {layout.span:.3f} s")
        summary.append(f"run {run.run_id}")
        out.append(f'<text class="run-summary" x="10" y="{top + 34}" fill="#424242">'
                   f'{_text(" · ".join(summary[:1]))}')
        if deviated:
            out.append(f' · <tspan class="deviated" fill="{NOT_MET_STROKE}" font-weight="bold">DEVIATED</tspan>')
        rest = [part for part in summary[1:] if part != "DEVIATED"]
        out.append(f'{_text(" · " + " · ".join(rest))} · {_text(shorten(printable(run.source), 80))}</text>')
        axis_top = top + _RUN_HEADER
        lanes_top = axis_top + _AXIS_HEIGHT + self._lines_row(layout)
        lanes_bottom = lanes_top + max(len(layout.lanes), 1) * _LANE_HEIGHT
        self._axis(layout, axis_top, lanes_bottom)
        for index, lane in enumerate(layout.lanes):
            self._lane(layout, lane, lanes_top + index * _LANE_HEIGHT)
        if not layout.lanes:
            out.append(f'<text x="{_LABEL_WIDTH}" y="{lanes_top + 14}" fill="#757575">no activity recorded</text>')
        for event in layout.lines:
            self._line(layout, event, axis_top + _AXIS_HEIGHT, lanes_bottom)
        out.append("</g>")

    def _axis(self, layout: _Layout, top: int, bottom: int) -> None:
        out = self.parts
        out.append(f'<text x="10" y="{top + 12}" fill="#757575">offset</text>'
                   f'<text x="10" y="{top + 25}" fill="#757575">UTC</text>')
        tick = 0.0
        while tick <= self.span + 1e-9:
            x = self.x(tick)
            out.append(f'<line class="tick" x1="{x:.1f}" y1="{top + 14}" x2="{x:.1f}" y2="{bottom}" '
                       f'stroke="#e0e0e0"/>')
            anchor = "start" if tick == 0 else "middle"
            out.append(f'<text x="{x:.1f}" y="{top + 12}" text-anchor="{anchor}" fill="#424242">'
                       f'{_offset_text(tick, self.step)}</text>')
            if layout.lanes:
                clock = _clock_text(layout.origin + timedelta(seconds=tick), self.step)
                out.append(f'<text class="clock" x="{x:.1f}" y="{top + 25}" text-anchor="{anchor}" '
                           f'fill="#757575" font-size="10">{clock}</text>')
            tick = round(tick + self.step, 6)

    def _lane(self, layout: _Layout, lane: _Lane, top: int) -> None:
        out = self.parts
        out.append(f'<g class="lane{" not-met" if lane.not_met else ""}">')
        if lane.not_met:
            out.append(f'<rect x="2" y="{top}" width="{_WIDTH - 4}" height="{_LANE_HEIGHT}" '
                       f'fill="{NOT_MET_FILL}" stroke="{NOT_MET_STROKE}" stroke-width="1.5"/>')
        elif lane.phase is not None:
            start = _seconds_since(layout.origin, lane.phase.start)
            end = _seconds_since(layout.origin, lane.phase.end or lane.phase.start)
            out.append(f'<rect class="phase" x="{self.x(start):.1f}" y="{top + 1}" '
                       f'width="{max((end - start) * self.scale, 1):.1f}" height="{_LANE_HEIGHT - 2}" '
                       f'fill="#f5f5f5"/>')
        label_colour = NOT_MET_STROKE if lane.not_met else "#212121"
        weight = ' font-weight="bold"' if lane.not_met else ""
        out.append(f'<text class="lane-label" x="10" y="{top + 14}" fill="{label_colour}"{weight}>'
                   f'{_text(shorten(lane.label, _LABEL_LIMIT))}</text>')
        for event in lane.bars:
            self._bar(layout, event, top + (_LANE_HEIGHT - _BAR_HEIGHT) // 2)
        out.append("</g>")

    def _bar(self, layout: _Layout, event: Event, top: int) -> None:
        start = _seconds_since(layout.origin, event.start)
        end = _seconds_since(layout.origin, event.end) if event.end else layout.span
        width = max((end - start) * self.scale, 1.0)
        colour = _colour(event)
        outline = ""
        if event.fields.get("tolerance_met") is False:
            outline = f' stroke="{NOT_MET_STROKE}" stroke-width="2"'
        status = _text(event.status)
        index = len(self.details)
        details = _details(event, layout.origin)
        self.details.append(details)
        head = (f'<rect class="bar status-{status}" data-status="{status}" x="{self.x(start):.2f}" y="{top}" '
                f'width="{width:.2f}" height="{_BAR_HEIGHT}" fill="{colour}"{outline}')
        if self.interactive:
            self.parts.append(f'{head} data-i="{index}" tabindex="0" aria-label="{_text(event.name)}"/>')
        else:
            tip = "; ".join(f"{label} {value}" for label, value in details if label not in ("start",))
            self.parts.append(f"{head}><title>{_text(tip)}</title></rect>")

    def _line(self, layout: _Layout, event: Event, top: int, bottom: int) -> None:
        x = self.x(_seconds_since(layout.origin, event.start))
        if event.kind == MARK:
            kind, colour, extra = "mark", MARK_COLOUR, ' stroke-dasharray="4,3"'
            label = f"mark: {event.name}"
        else:
            kind, colour, extra = "interruption", INTERRUPTION_COLOUR, ' stroke-width="2"'
            reason = event.fields.get("reason") or event.fields.get("signal") or ""
            label = "interrupted" + (f": {reason}" if reason else "")
        self.parts.append(f'<g class="{kind}"><line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" '
                          f'stroke="{colour}"{extra}><title>{_text(shorten(label, 300))}</title></line>'
                          f'<text x="{x + 3:.1f}" y="{top + 10}" fill="{colour}" font-size="10">'
                          f'{_text(shorten(label, 40))}</text></g>')


def svg_document(runs: Sequence[Run]) -> str:
    """The runs as one standalone SVG file (each bar's details in its <title>)."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _Drawing(runs, interactive=False).svg() + "\n"


def _script_json(value) -> str:
    """JSON that cannot end the <script> element holding it, whatever its strings say."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_STYLE = """
body{margin:16px;font:14px sans-serif;color:#212121;background:#fafafa}
h1{font-size:18px;margin:0 0 8px}
p.hint{color:#616161;margin:0 0 12px}
#timeline{background:#fff;border:1px solid #e0e0e0;max-width:100%;height:auto}
.bar{cursor:pointer}
.bar:focus,.bar:hover{stroke:#000;stroke-width:2;outline:none}
#tip{position:fixed;z-index:10;max-width:460px;padding:8px 10px;background:#212121;color:#fff;
border-radius:4px;font-size:12px;line-height:1.4;pointer-events:none;white-space:pre-wrap;word-break:break-word}
#tip b{color:#bdbdbd;font-weight:normal}
"""

_SCRIPT = """
(function () {
  "use strict";
  var details = JSON.parse(document.getElementById("bar-details").textContent);
  var tip = document.getElementById("tip");
  var svg = document.getElementById("timeline");
  function barOf(node) {
    return node && node.closest ? node.closest(".bar") : null;
  }
  function show(bar) {
    var rows = details[Number(bar.getAttribute("data-i"))];
    if (!rows) { return; }
    tip.textContent = "";
    rows.forEach(function (row) {
      var line = document.createElement("div");
      var label = document.createElement("b");
      label.textContent = row[0] + ": ";
      line.appendChild(label);
      line.appendChild(document.createTextNode(row[1]));
      tip.appendChild(line);
    });
    var box = bar.getBoundingClientRect();
    tip.hidden = false;
    var left = Math.min(box.left, window.innerWidth - tip.offsetWidth - 8);
    var top = box.bottom + 6;
    if (top + tip.offsetHeight > window.innerHeight) { top = box.top - tip.offsetHeight - 6; }
    tip.style.left = Math.max(left, 4) + "px";
    tip.style.top = Math.max(top, 4) + "px";
  }
  function hide() { tip.hidden = true; }
  svg.addEventListener("mouseover", function (event) { var bar = barOf(event.target); if (bar) { show(bar); } });
  svg.addEventListener("mouseout", function (event) { if (barOf(event.target)) { hide(); } });
  svg.addEventListener("focusin", function (event) { var bar = barOf(event.target); if (bar) { show(bar); } });
  svg.addEventListener("focusout", hide);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") { hide(); } });
})();
"""


def html_document(runs: Sequence[Run]) -> str:
    """The runs as one self-contained HTML page: the drawing, and each bar's details on hover or focus."""
    drawing = _Drawing(runs, interactive=True)
    svg = drawing.svg()
    activities = len(drawing.details)
    heading = f"Chaos Toolkit: {len(runs)} run(s), {activities} activities"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_text(heading)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_text(heading)}</h1>"
        "<p class=\"hint\">Hover a bar, or move to it with Tab, to see its details. "
        "Runs are aligned on their start.</p>"
        f"{svg}<div id=\"tip\" role=\"tooltip\" hidden></div>"
        f"<script type=\"application/json\" id=\"bar-details\">{_script_json(drawing.details)}</script>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


# `--format` name -> the function drawing the runs.
PICTURE_FORMATS = {"html": html_document, "svg": svg_document}
