"""Size and time of the picture of a 10,000-activity run, and how long chromium takes to show it.

Generates a journal of `--activities` activities (a continuous hypothesis probed
every few seconds, a method of actions with background ones overlapping, a few
failures), then prints: reading it, drawing the HTML and the SVG (median of
`--repeat`), their sizes and lane counts, and, when Debian's chromium and
selenium are there, the time from navigation to a loaded page and to a hover's
tooltip in headless chromium.

    python benchmarks/picture.py [--activities 10000] [--repeat 3]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from chaosreplay.journal import read_journal  # noqa: E402
from chaosreplay.picture import html_document, svg_document  # noqa: E402


def generate(path: str, activities: int) -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    during, run = [], []
    probes = activities // 4
    for index in range(probes):
        begin = start + timedelta(seconds=index * 2)
        during.append({"steady_state_met": index % 97 != 0, "probes": [{
            "activity": {"type": "probe", "name": "health", "provider": {"type": "http"}, "tolerance": 200},
            "output": 200, "start": begin.isoformat(), "end": (begin + timedelta(milliseconds=150)).isoformat(),
            "duration": 0.15, "status": "succeeded", "tolerance_met": index % 97 != 0}]})
    for index in range(activities - probes):
        begin = start + timedelta(seconds=index * 0.6)
        background = index % 5 == 0
        seconds = 3.0 if background else 0.5
        entry = {"activity": {"type": "action", "name": f"stress-{index % 40}", "background": background,
                              "provider": {"type": "python", "module": "chaosk8s"}},
                 "output": None, "start": begin.isoformat(),
                 "end": (begin + timedelta(seconds=seconds)).isoformat(), "duration": seconds,
                 "status": "failed" if index % 211 == 0 else "succeeded"}
        if entry["status"] == "failed":
            entry["exception"] = ["Traceback ...", "chaoslib.exceptions.ActivityFailed: pod not found\n"]
        run.append(entry)
    end = start + timedelta(seconds=max(probes * 2, (activities - probes) * 0.6) + 3)
    journal = {"chaoslib-version": "1.45.1", "platform": "bench", "node": "bench",
               "experiment": {"title": "picture benchmark", "method": []},
               "start": start.isoformat(), "end": end.isoformat(), "duration": (end - start).total_seconds(),
               "status": "completed", "deviated": True,
               "steady_states": {"before": None, "after": None, "during": during},
               "run": run, "rollbacks": []}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(journal, handle)


def timed(function, repeat: int):
    durations, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), result


def browser_times(html_path: str):
    """Seconds to a loaded page and to a hover's tooltip, or None without chromium/selenium."""
    try:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        from tests.browser import CHROMEDRIVER, CHROMIUM, chromium
    except ImportError:
        return None
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return None
    with chromium(1280, 900) as driver:
        started = time.perf_counter()
        driver.get("file://" + html_path)
        loaded = time.perf_counter() - started
        bars = driver.execute_script("return document.querySelectorAll('rect.bar').length")
        bar = driver.find_element(By.CSS_SELECTOR, "rect.bar[data-status='failed']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar)
        started = time.perf_counter()
        ActionChains(driver).move_to_element(bar).perform()
        shown = driver.find_element(By.ID, "tip").is_displayed()
        hovered = time.perf_counter() - started
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return loaded, hovered, bars, shown, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        journal = os.path.join(folder, "journal.json")
        generate(journal, args.activities)
        read_seconds, run = timed(lambda: read_journal(journal), args.repeat)
        html_seconds, html = timed(lambda: html_document([run]), args.repeat)
        svg_seconds, svg = timed(lambda: svg_document([run]), args.repeat)
        html_path = os.path.join(folder, "run.html")
        with open(html_path, "w", encoding="utf-8") as handle:
            handle.write(html)
        lanes = html.count('class="lane-label"')
        print(f"journal: {args.activities} activities, {os.path.getsize(journal) / 1e6:.1f} MB; "
              f"read in {read_seconds:.2f} s")
        print(f"html: {len(html.encode()) / 1e6:.2f} MB, {lanes} lanes, drawn in {html_seconds:.2f} s")
        print(f"svg:  {len(svg.encode()) / 1e6:.2f} MB, drawn in {svg_seconds:.2f} s")
        measured = browser_times(html_path)
        if measured is None:
            print("chromium: not measured (needs Debian's chromium + chromium-driver and selenium)")
        else:
            loaded, hovered, bars, shown, errors = measured
            print(f"chromium: page loaded in {loaded:.2f} s, {bars} bars, tooltip "
                  f"{'shown' if shown else 'NOT shown'} {hovered * 1000:.0f} ms after the hover, "
                  f"{len(errors)} console error(s)")


if __name__ == "__main__":
    main()
