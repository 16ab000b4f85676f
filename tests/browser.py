"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver.

Used by the picture's browser tests and by scripts/screenshot. Nothing is
downloaded: the browser and its driver are the Debian packages `chromium` and
`chromium-driver` (scripts/setup-servers installs them), given by path so that
Selenium Manager never looks for others.
"""
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# A private, quiet browser: no sandbox (root in CI), no GPU, no call home, a fresh profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


@contextmanager
def chromium(width: int = 1280, height: int = 900, chromium_path: str = CHROMIUM,
             driver_path: str = CHROMEDRIVER) -> Iterator["object"]:
    """A Selenium WebDriver on a fresh headless chromium; the browser's console is logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chaosreplay-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
