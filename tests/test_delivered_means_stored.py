"""`chaos-replay` calls delivered only what a server stored, and never waits forever.

Each protocol's own answer is expected (204 for InfluxDB writes, 200/202 with
no body for the pushgateway, 204 or an empty 200 for remote write, Grafana's
JSON); a login page, a redirect or a dripping answer is one line and exit 5.
Misbehaving servers are small loopback servers (tests/blackhole.py); the
servers that behave are real (influxd, pushgateway, the Grafana stand-in).
"""
import json
import os
import time
from datetime import datetime, timedelta

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.errors import EXIT_UNDELIVERED
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana import MAX_LOOKUP_PAGES
from chaosreplay.sinks.grafana_annotations import run_annotations, run_tag
from chaosreplay.sinks.http import (BACKOFF_MAX_SECONDS, RETRY_AFTER_MAX_SECONDS, backoff_delay,
                                    retry_after_seconds)
from chaosreplay.sinks.prometheus_series import RUN_ID_LABEL
from tests.blackhole import Answering
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixture)
from tests.test_http_failures import NO_TARGET_ENV

BASIC = os.path.join(JOURNALS, "generated-basic.json")
LOGIN_PAGE = b"<html><body>login</body></html>"


def sink_args(sink, url):
    """Command-line arguments and environment sending to `sink` at `url`."""
    return {
        "influx": (["--influx-url", url, "--influx-database", "d", "--influx-retries", "0"], {}),
        "influx2": (["--influx-url", url, "--influx-bucket", "b", "--influx-retries", "0"],
                    {"INFLUX_ORG": "o", "INFLUX_TOKEN": "t"}),
        "pushgateway": (["--pushgateway-url", url], {"PUSHGATEWAY_RETRIES": "0"}),
        "remote_write": (["--prometheus-remote-write", f"{url}/api/v1/write"],
                         {"PROMETHEUS_REMOTE_WRITE_RETRIES": "0"}),
        "grafana": (["--grafana-url", url, "--grafana-token", "t", "--grafana-retries", "0"], {}),
    }[sink]


def run_cli(sink, url, *extra, journal=BASIC):
    args, env = sink_args(sink, url)
    started = time.monotonic()
    result = CliRunner().invoke(replay, [journal, *args, *extra], env={**NO_TARGET_ENV, **env})
    return result, time.monotonic() - started


def undelivered_line(result, target):
    assert result.exit_code == EXIT_UNDELIVERED, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    [line] = [line for line in result.stdout.splitlines() if f"-> {target}" in line]
    assert "NOT delivered" in line and "\n" not in line
    return line


WRITES = ["influx", "influx2", "pushgateway", "remote_write"]


@pytest.mark.parametrize("sink", WRITES)
def test_a_login_page_answering_200_is_not_delivered(sink):
    with Answering(lambda request: (200, {"Content-Type": "text/html"}, LOGIN_PAGE)) as server:
        result, _ = run_cli(sink, server.url)
    line = undelivered_line(result, sink.rstrip("2").replace("remote_write", "prometheus remote write"))
    assert "answered HTTP 200 (<html><body>login</body></html>)" in line
    assert "nothing was stored" in line


@pytest.mark.parametrize("sink", WRITES + ["grafana"])
def test_a_redirect_is_reported_and_never_followed(sink):
    def respond(request):
        return (302, {"Location": "/login"}, b"") if request.method != "GET" or sink == "grafana" else (
            200, {}, LOGIN_PAGE)

    with Answering(respond) as server:
        result, _ = run_cli(sink, server.url)
        methods = [request.method for request in server.received]
    line = undelivered_line(result, sink.rstrip("2").replace("remote_write", "prometheus remote write"))
    assert f"HTTP 302 redirect to {server.url}/login, not followed" in line
    assert len(methods) == 1, methods


@pytest.mark.parametrize("sink", WRITES + ["grafana"])
def test_a_dripping_server_times_out_within_the_timeout(sink):
    timeout_flag = {"influx": "--influx-timeout", "influx2": "--influx-timeout", "grafana": "--grafana-timeout"}
    with Answering(lambda request: (204, {"X-Padding": "." * 60}, b""), drip=0.5) as server:
        if sink in timeout_flag:
            result, seconds = run_cli(sink, server.url, timeout_flag[sink], "1")
        else:
            args, env = sink_args(sink, server.url)
            env[{"pushgateway": "PUSHGATEWAY_TIMEOUT", "remote_write": "PROMETHEUS_REMOTE_WRITE_TIMEOUT"}[sink]] = "1"
            started = time.monotonic()
            result = CliRunner().invoke(replay, [BASIC, *args], env={**NO_TARGET_ENV, **env})
            seconds = time.monotonic() - started
    line = undelivered_line(result, sink.rstrip("2").replace("remote_write", "prometheus remote write"))
    assert "timed out" in line
    assert seconds < 1 + 1.5, seconds


def test_a_429_is_asked_again_after_its_retry_after():
    def respond(request):
        if len(server.received) == 1:
            return (429, {"Retry-After": "1"}, b"slow down")
        return (204, {}, b"")

    with Answering(respond) as server:
        result, _ = run_cli("influx", server.url, "--influx-retries", "1")
        times = [request.at for request in server.received]
    assert result.exit_code == 0, result.output
    assert len(times) == 2
    # The default first backoff is 0.5 s: the server's 1 s was honoured.
    assert times[1] - times[0] >= 0.95


def test_backoff_and_retry_after_are_capped():
    assert [backoff_delay(attempt) for attempt in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff_delay(10_000) == BACKOFF_MAX_SECONDS
    assert sum(backoff_delay(attempt) for attempt in range(1, 21)) < 90

    def answer(value):
        response = requests.Response()
        response.headers["Retry-After"] = value
        return retry_after_seconds(response)
    assert answer("2") == 2
    assert answer("86400") == RETRY_AFTER_MAX_SECONDS
    assert answer("Wed, 21 Oct 2099 07:28:00 GMT") == RETRY_AFTER_MAX_SECONDS
    assert answer("soon") is None and answer("nan") is None


# -- Grafana look-ups ----------------------------------------------------------------------


def grafana_answering(page):
    """Grafana's POST answer, and `page` (bytes, or a JSON value) for every look-up."""
    counter = iter(range(1, 10**9))

    def respond(request):
        if request.method == "GET":
            body = page if isinstance(page, bytes) else json.dumps(page(request) if callable(page) else page).encode()
            return (200, {"Content-Type": "application/json"}, body)
        return (200, {"Content-Type": "application/json"},
                json.dumps({"message": "Annotation added", "id": next(counter)}).encode())
    return respond


@pytest.mark.parametrize("page, expected", [
    ([{"id": 1, "time": "yesterday", "tags": []}], 'time "yesterday" is not epoch milliseconds'),
    ([{"id": 1, "time": 5, "tags": 5}], "tags 5 is not a list of strings"),
    ([{"id": 1, "tags": ["chaostoolkit"]}], "time null is not epoch milliseconds"),
    (b'[{"id": 1, "time": 5, "timeEnd": 1' + b"0" * 4400 + b"}]", "the answer is not JSON"),
    ([[1, 2]], "item 0 of the answer is not an annotation: a JSON list"),
    ({"annotations": []}, "the answer is a JSON object, not a list of annotations"),
    (b"<html>login</html>", "the answer is not JSON"),
], ids=["time-text", "tags-number", "no-time", "huge-timeEnd", "not-an-object", "not-a-list", "html"])
def test_a_grafana_look_up_answer_that_is_not_annotations_is_one_line(page, expected):
    with Answering(grafana_answering(page)) as server:
        result, _ = run_cli("grafana", server.url)
        posts = [request for request in server.received if request.method == "POST"]
    line = undelivered_line(result, "grafana")
    assert "look-up:" in line and expected in line, line
    assert posts == []


def test_endless_full_pages_of_annotations_are_capped():
    ids = iter(range(1, 10**9))

    def full_page(request):
        limit = int(request.path.split("limit=")[1].split("&")[0])
        return [{"id": next(ids), "time": 1000, "timeEnd": 2000, "tags": [], "text": ""} for _ in range(limit)]

    with Answering(grafana_answering(full_page)) as server:
        result, _ = run_cli("grafana", server.url)
        lookups = [request for request in server.received if request.method == "GET"]
    line = undelivered_line(result, "grafana")
    assert f"still full pages after {MAX_LOOKUP_PAGES} requests" in line
    assert len(lookups) == MAX_LOOKUP_PAGES


def test_two_dashboards_of_one_grafana_each_get_their_annotations(tmp_path):
    grafana = GrafanaStandIn(dashboards={"dash-a": 1, "dash-b": 2})
    try:
        config = tmp_path / "targets.json"
        config.write_text(json.dumps({"grafana": [
            {"url": grafana.url, "token": EDITOR_TOKEN, "dashboard_uid": "dash-a"},
            {"url": grafana.url, "token": EDITOR_TOKEN, "dashboard_uid": "dash-b"}]}), encoding="utf-8")
        for _ in range(2):  # the second replay finds both sets and adds nothing
            result = CliRunner().invoke(replay, [BASIC, "--config", str(config)], env=NO_TARGET_ENV)
            assert result.exit_code == 0, result.output
        run = read_journal(BASIC)
        stored = grafana.with_tag(run_tag(run.run_id))
        expected = len(run_annotations(run))
        assert sum(1 for a in stored if a.dashboard_uid == "dash-a") == expected
        assert sum(1 for a in stored if a.dashboard_uid == "dash-b") == expected
        assert len(stored) == 2 * expected
        assert grafana.violations == []
    finally:
        grafana.close()


# -- a glob of journals to a pushgateway -------------------------------------------------------


def journal_started_at(tmp_path, name, start):
    """generated-basic.json re-timed to start at `start` (a new run of the same experiment)."""
    with open(BASIC, encoding="utf-8") as handle:
        journal = json.load(handle)
    offset = start - datetime.fromisoformat(journal["start"].replace("Z", "+00:00")).replace(tzinfo=None)

    def shift(value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed.replace(tzinfo=None) + offset).isoformat()

    journal["start"], journal["end"] = shift(journal["start"]), shift(journal["end"])
    for entry in journal["run"]:
        entry["start"], entry["end"] = shift(entry["start"]), shift(entry["end"])
    path = tmp_path / name
    path.write_text(json.dumps(journal), encoding="utf-8")
    return str(path)


def test_a_glob_of_journals_leaves_each_group_holding_its_newest_run(tmp_path, pushgateway):
    # Path order puts the newer run first: the older one must not replace it.
    newer = read_journal(journal_started_at(tmp_path, "a-newer.json", datetime(2026, 5, 2, 10)))
    older = read_journal(journal_started_at(tmp_path, "b-older.json", datetime(2026, 5, 1, 10)))
    assert newer.run_id != older.run_id and newer.title == older.title
    result = CliRunner().invoke(replay, [str(tmp_path / "*.json"), "--pushgateway-url", pushgateway.url,
                                         "--pushgateway-job", "newest"], env=NO_TARGET_ENV)
    assert result.exit_code == 0, result.output
    assert f"its group already holds run {newer.run_id}" in result.output
    text = requests.get(f"{pushgateway.url}/metrics", timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith("chaostoolkit_") and 'job="newest"' in line]
    assert lines and all(f'{RUN_ID_LABEL}="{newer.run_id}"' in line for line in lines), lines
    assert older.run_id not in text
    assert timedelta(0) < (newer.experiment.start - older.experiment.start)
