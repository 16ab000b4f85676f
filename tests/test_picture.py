"""The picture of runs (`--format svg|html`), read back as XML: bars, colours, lanes, escaping."""
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.events import ACTIVITY, PHASE, Event, Run
from chaosreplay.journal import read_journal
from chaosreplay.picture import (
    MAX_BACKGROUND_LANES,
    MAX_DURING_LANES,
    STATUS_COLOURS,
    html_document,
    svg_document,
)

from .conftest import JOURNALS

SVG = "{http://www.w3.org/2000/svg}"
CONTINUOUS = os.path.join(JOURNALS, "generated-continuous.json")
DEVIATED = os.path.join(JOURNALS, "generated-deviated.json")
ABORTED = os.path.join(JOURNALS, "generated-aborted.json")
INTERRUPTED = os.path.join(JOURNALS, "generated-interrupted-sigterm.json")
TAUBER = os.path.join(JOURNALS, "tauber-1.44.0-method-probe-failed.json")
# No lone surrogate (`\ud800`): the reader refuses a journal holding one (exit 3, see
# tests/test_no_traceback.py), so none reaches a picture.
HOSTILE = '<script>alert("x")</script> \' " & ]]> </svg> \x00\x07\x1b[31m\n end'


def invoke(*args):
    return CliRunner().invoke(replay, list(args), catch_exceptions=False)


def parsed_svg(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def bars(root: ET.Element):
    return [element for element in root.iter(f"{SVG}rect") if "bar" in element.get("class", "").split()]


def lane_labels(run_group: ET.Element):
    return ["".join(text.itertext()) for text in run_group.iter(f"{SVG}text")
            if text.get("class") == "lane-label"]


def activities(run: Run):
    return [event for event in run.events if event.kind == ACTIVITY]


def test_svg_has_one_bar_per_activity_coloured_by_its_status():
    paths = [CONTINUOUS, ABORTED, INTERRUPTED, TAUBER]
    result = invoke(*paths, "--format", "svg")
    assert result.exit_code == 0
    root = parsed_svg(result.stdout)
    expected = [event for path in paths for event in activities(read_journal(path))]
    drawn = bars(root)
    assert len(drawn) == len(expected)
    assert sorted(bar.get("data-status") for bar in drawn) == sorted(event.status for event in expected)
    for bar in drawn:
        assert bar.get("fill") == STATUS_COLOURS[bar.get("data-status")]
    # Every status these journals hold is there, so the colours really differ.
    assert {bar.get("data-status") for bar in drawn} >= {"succeeded", "failed", "aborted", "interrupted"}


def test_svg_lanes_follow_the_phases_and_background_activities_get_their_own():
    root = parsed_svg(svg_document([read_journal(CONTINUOUS)]))
    (run_group,) = [group for group in root.iter(f"{SVG}g") if group.get("class") == "run"]
    assert lane_labels(run_group) == [
        "steady state before",
        "steady state during #1", "steady state during #2", "steady state during #3", "steady state during #4",
        "method", "method · background 1", "method · background 2",
        "steady state after", "rollbacks",
    ]
    lanes = [group for group in run_group.iter(f"{SVG}g") if "lane" in group.get("class", "").split()]
    for lane in lanes:
        lane_bars = sorted(bars(lane), key=lambda bar: float(bar.get("x")))
        if "background" in lane_labels(lane)[0]:
            # Packed so that no two overlap in one lane.
            for left, right in zip(lane_bars, lane_bars[1:]):
                assert float(left.get("x")) + float(left.get("width")) <= float(right.get("x")) + 0.01


def test_deviated_steady_state_stands_out_and_each_bar_carries_its_details():
    run = read_journal(DEVIATED)
    root = parsed_svg(svg_document([run]))
    not_met = [group for group in root.iter(f"{SVG}g") if group.get("class") == "lane not-met"]
    assert len(not_met) == 1
    assert lane_labels(not_met[0]) == ["steady state after ✗ not met"]
    assert [rect.get("stroke") for rect in not_met[0].iter(f"{SVG}rect")][0] == "#c62828"
    assert any(tspan.text == "DEVIATED" for tspan in root.iter(f"{SVG}tspan"))
    titles = ["".join(bar.find(f"{SVG}title").itertext()) for bar in bars(root)]
    failed_probe = next(event for event in activities(run) if event.fields.get("tolerance_met") is False)
    assert any(title.startswith(f"name {failed_probe.name};") and "tolerance NOT met" in title for title in titles)


def test_several_runs_are_aligned_on_their_start_on_one_scale():
    runs = [read_journal(CONTINUOUS), read_journal(DEVIATED)]
    root = parsed_svg(svg_document(runs))
    groups = [group for group in root.iter(f"{SVG}g") if group.get("class") == "run"]
    assert [group.get("data-run-id") for group in groups] == [run.run_id for run in runs]
    origins, scales = [], []
    for group, run in zip(groups, runs):
        origins.append(float(next(group.iter(f"{SVG}line")).get("x1")))  # the +0 tick
        last = max(activities(run), key=lambda event: event.end)
        right = max(float(bar.get("x")) + float(bar.get("width")) for bar in bars(group))
        scales.append((right - origins[-1]) / (last.end - run.experiment.start).total_seconds())
        clock = [text.text for text in group.iter(f"{SVG}text") if text.get("class") == "clock"]
        assert clock[0] == run.experiment.start.strftime("%H:%M:%S.%f")[:12]
    assert origins[0] == origins[1]
    assert abs(scales[0] - scales[1]) / scales[0] < 0.01


def _run_with(events):
    return Run("r1", "made", tuple(events))


def _event(name, kind, start, seconds, phase, **fields):
    return Event(id=f"{name}-{start.timestamp()}", run_id="r1", kind=kind, name=name, start=start,
                 end=start + timedelta(seconds=seconds), status="succeeded", phase=phase,
                 activity_type="probe" if kind == ACTIVITY else None, fields=fields)


def test_lanes_collapse_when_there_are_many_iterations_and_overlapping_background_activities():
    origin = datetime(2024, 5, 1, tzinfo=timezone.utc)
    events = []
    for iteration in range(1, 31):
        start = origin + timedelta(seconds=iteration)
        events.append(_event(f"during #{iteration}", PHASE, start, 0.5, "during", iteration=iteration))
        events.append(_event("probe", ACTIVITY, start, 0.5, "during"))
    for index in range(20):  # all overlapping
        events.append(_event(f"bg-{index}", ACTIVITY, origin + timedelta(milliseconds=index), 10, "method",
                             background=True))
    root = parsed_svg(svg_document([_run_with(events)]))
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "run"]
    labels = lane_labels(group)
    assert labels[0] == "steady state during #1–#30"
    assert len([label for label in labels if "background" in label]) == MAX_BACKGROUND_LANES
    assert labels[-1] == f"method · background {MAX_BACKGROUND_LANES}+"
    assert len(labels) <= MAX_DURING_LANES
    assert len(bars(root)) == 50


def test_hostile_names_are_escaped_in_svg_and_html(tmp_path):
    with open(os.path.join(JOURNALS, "generated-basic.json"), encoding="utf-8") as handle:
        journal = json.load(handle)
    journal["experiment"]["title"] = HOSTILE
    journal["run"][0]["activity"]["name"] = HOSTILE
    journal["run"][0]["activity"]["provider"]["type"] = '"><img src=x onerror=alert(1)>'
    journal["run"][0]["status"] = "failed"
    journal["run"][0]["exception"] = ["Traceback", "</script><script>alert(2)</script>"]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(journal), encoding="utf-8")

    svg = invoke(str(path), "--format", "svg")
    assert svg.exit_code == 0
    root = parsed_svg(svg.stdout)  # well-formed XML despite NUL, ESC and `]]>`
    assert "<script" not in svg.stdout and "<img" not in svg.stdout
    title = next(text for text in root.iter(f"{SVG}text") if text.get("class") == "run-title")
    assert title.text.startswith('<script>alert("x")</script> \' " & ]]> </svg> \\x00\\x07\\x1b[31m\\n')

    html = invoke(str(path), "--format", "html")
    assert html.exit_code == 0
    page = _Page()
    page.feed(html.stdout)
    # Only our two scripts: the details as JSON, and the tooltip's code.
    assert page.tags.count("script") == 2
    assert "img" not in page.tags
    details = json.loads(page.scripts[0])
    hostile_bar = next(rows for rows in details if dict(rows)["name"] == HOSTILE)
    assert dict(hostile_bar)["provider"] == '"><img src=x onerror=alert(1)>'
    assert dict(hostile_bar)["error"] == "</script><script>alert(2)</script>"
    assert re.search(r"alert\(\d\)</script>", page.scripts[0]) is None


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def test_html_is_self_contained_and_lists_one_focusable_bar_per_activity():
    runs = [read_journal(CONTINUOUS), read_journal(TAUBER)]
    page = html_document(runs)
    assert re.search(r"""(src|href)\s*=|@import|url\(""", page) is None
    assert "default-src 'none'" in page
    focusable = re.findall(r'<rect class="bar [^>]*tabindex="0"', page)
    assert len(focusable) == sum(len(activities(run)) for run in runs)


def test_picture_goes_to_stdout_and_what_was_planned_to_stderr():
    result = invoke(CONTINUOUS, "--format", "html", "--dry-run", "--influx-url", "http://127.0.0.1:1",
                    "--influx-database", "chaos")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    assert "-> influx http://127.0.0.1:1 db=chaos" in result.stderr
