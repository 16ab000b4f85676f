"""The picture in a real browser: Debian's chromium, headless, driven by Selenium.

The page must load with no console error, draw one bar per activity event, show
a bar's details on hover and on keyboard focus, and run nothing a journal says.
"""
import json
import os
import struct

import pytest

from chaosreplay.events import ACTIVITY
from chaosreplay.journal import read_journal
from chaosreplay.picture import html_document, svg_document

from .browser import CHROMEDRIVER, CHROMIUM, chromium
from .conftest import JOURNALS
from .procs import IN_CI, require_binary

JOURNAL_NAMES = ["generated-continuous.json", "generated-deviated.json", "tauber-1.44.0-method-probe-failed.json",
                 "generated-aborted.json", "generated-interrupted-sigterm.json"]


@pytest.fixture(scope="module")
def browser():
    require_binary(os.path.basename(CHROMIUM), "chromium")
    require_binary(os.path.basename(CHROMEDRIVER), "chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        message = "selenium not installed: pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with chromium(1280, 900) as driver:
        yield driver


def _by():
    from selenium.webdriver.common.by import By
    return By


def open_page(driver, tmp_path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def tooltip(driver):
    tip = driver.find_element(_by().ID, "tip")
    return tip.text if tip.is_displayed() else None


def png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_page_loads_clean_with_one_bar_per_activity_and_details_on_hover_and_focus(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    runs = [read_journal(os.path.join(JOURNALS, name)) for name in JOURNAL_NAMES]
    activities = [event for run in runs for event in run.events if event.kind == ACTIVITY]
    open_page(browser, tmp_path, "runs.html", html_document(runs))
    assert console_errors(browser) == []
    bars = browser.find_elements(_by().CSS_SELECTOR, "rect.bar")
    assert len(bars) == len(activities)
    assert tooltip(browser) is None

    failed = next(event for event in activities if event.status == "failed" and event.fields.get("error"))
    failed_bar = next(bar for bar in bars if bar.get_attribute("aria-label") == failed.name
                      and bar.get_attribute("data-status") == "failed")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", failed_bar)
    ActionChains(browser).move_to_element(failed_bar).perform()
    shown = tooltip(browser)
    assert shown is not None
    assert f"name: {failed.name}" in shown
    assert f"type: {failed.activity_type}" in shown
    assert f"provider: {failed.fields['provider']}" in shown
    assert "status: failed" in shown
    assert f"duration: {failed.duration:.3f} s" in shown
    assert f"error: {failed.fields['error'][:40]}" in shown
    ActionChains(browser).move_to_element(browser.find_element(_by().TAG_NAME, "h1")).perform()
    assert tooltip(browser) is None

    # Keyboard: the first Tab reaches the first bar, whose details show.
    browser.find_element(_by().TAG_NAME, "h1").click()
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-i") == "0"
    assert f"name: {activities_in_drawing_order(runs)[0].name}" in tooltip(browser)
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert tooltip(browser) is None

    screenshot = tmp_path / "runs.png"
    assert browser.save_screenshot(str(screenshot))
    width, height = png_size(screenshot)
    assert (width, height) == (1280, 900) or width >= 1200
    assert console_errors(browser) == []


def activities_in_drawing_order(runs):
    """The first bar drawn is the first run's first lane's first activity: its before-hypothesis probe."""
    first_run = runs[0]
    return [event for event in first_run.events if event.kind == ACTIVITY and event.phase == "before"]


def test_names_from_a_journal_never_run_as_code(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.action_chains import ActionChains

    with open(os.path.join(JOURNALS, "generated-basic.json"), encoding="utf-8") as handle:
        journal = json.load(handle)
    hostile = '</script><script>window.pwned=1;alert(1)</script><img src=x onerror="window.pwned=2">\x07'
    journal["experiment"]["title"] = hostile
    journal["run"][0]["activity"]["name"] = hostile
    journal["run"][0]["exception"] = ["<svg onload=window.pwned=3>"]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    run = read_journal(str(path))

    open_page(browser, tmp_path, "hostile.html", html_document([run]))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return window.pwned === undefined")
    assert console_errors(browser) == []
    bar = next(bar for bar in browser.find_elements(_by().CSS_SELECTOR, "rect.bar")
               if bar.get_attribute("aria-label").startswith("</script>"))
    ActionChains(browser).move_to_element(bar).perform()
    assert "name: </script><script>window.pwned=1;alert(1)</script>" in tooltip(browser)


def test_svg_file_shows_the_same_bars(browser, tmp_path):
    runs = [read_journal(os.path.join(JOURNALS, name)) for name in JOURNAL_NAMES[:2]]
    open_page(browser, tmp_path, "runs.svg", svg_document(runs))
    assert console_errors(browser) == []
    bars = browser.find_elements(_by().CSS_SELECTOR, "rect.bar")
    assert len(bars) == sum(1 for run in runs for event in run.events if event.kind == ACTIVITY)
    assert all(bar.size["width"] >= 1 for bar in bars)
