"""`chaosreplay.probes.prometheus`: time parsing, the automatic step, and the probes against a real Prometheus."""
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chaoslib.exceptions import ActivityFailed
from hypothesis import given
from hypothesis import strategies as st

from chaosreplay.config import Settings
from chaosreplay.journal import read_journal
from chaosreplay.probes.prometheus import MAX_POINTS, auto_step, parse_time, query, query_interval
from chaosreplay.sinks import remote_write
from chaosreplay.sinks.prometheus_series import RUN_ID_LABEL
from tests.blackhole import Blackhole
from tests.conftest import JOURNALS
from tests.loopback import serve_in_background, stop_serving
from tests.prometheus_servers import Prometheus, start_prometheus

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
JOURNAL = os.path.join(JOURNALS, "marzouk-1.8.1-completed-rollbacks.json")


@pytest.mark.parametrize("text, expected", [
    ("now", NOW),
    ("2 minutes ago", NOW - timedelta(minutes=2)),
    ("1 hour ago", NOW - timedelta(hours=1)),
    ("90 s ago", NOW - timedelta(seconds=90)),
    ("1.5 days ago", NOW - timedelta(days=1.5)),
    ("2 weeks ago", NOW - timedelta(weeks=2)),
    # Without a zone: the machine's local zone, as chaostoolkit-prometheus (dateparser) read it.
    ("2024-02-03T04:05:06", datetime(2024, 2, 3, 4, 5, 6).astimezone().astimezone(timezone.utc)),
    ("2024-02-03T06:05:06+02:00", datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)),
    (str(int(NOW.timestamp())), NOW),
    (NOW.timestamp(), NOW),
])
def test_times_are_read_like_chaostoolkit_prometheus_did(text, expected):
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday-ish", "2 fortnights ago", "", None, [1]])
def test_an_unreadable_time_fails_the_activity_naming_it(text):
    with pytest.raises(ActivityFailed, match=re.escape(f"failed to parse '{text}'") + " .*cannot read time"):
        parse_time(text, now=NOW)


@given(st.floats(min_value=0, max_value=10 * 365 * 86400))
def test_the_automatic_step_is_the_smallest_that_stays_under_the_points_limit(seconds):
    start = NOW
    step = auto_step(start, start + timedelta(seconds=seconds))
    assert seconds / step <= MAX_POINTS < 11_000
    assert step == 1 or seconds / (step - 1) > MAX_POINTS


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    """A Prometheus holding one journal's series, back-filled at their true times."""
    server = start_prometheus(str(tmp_path_factory.mktemp("prometheus-probes")))
    run = read_journal(JOURNAL)
    [target] = remote_write.targets(Settings(cli={"prometheus_remote_write": f"{server.url}/api/v1/write"}, env={}))
    assert target.send(run).ok
    yield Prometheus(server), run
    server.stop()


@pytest.mark.servers
def test_query_returns_prometheus_payload_as_is(backfilled):
    prometheus, run = backfilled
    selector = f'chaostoolkit_experiment_duration_seconds{{{RUN_ID_LABEL}="{run.run_id}"}}'
    payload = query(selector, when=run.experiment.end.isoformat(), configuration={"prometheus_base_url": prometheus.url})
    assert payload["status"] == "success" and payload["data"]["resultType"] == "vector"
    assert float(payload["data"]["result"][0]["value"][1]) == pytest.approx(run.experiment.duration)
    assert payload["data"]["result"] == prometheus.query(selector, at=run.experiment.end.timestamp())


@pytest.mark.servers
def test_a_long_range_gets_a_step_prometheus_accepts_where_step_1_is_refused(backfilled):
    prometheus, run = backfilled
    configuration = {"prometheus_base_url": prometheus.url + "/"}
    selector = f'chaostoolkit_experiment_in_progress{{{RUN_ID_LABEL}="{run.run_id}"}}'
    start = (run.experiment.start - timedelta(hours=12)).isoformat()
    end = str((run.experiment.end + timedelta(hours=12)).timestamp())
    payload = query_interval(selector, start, end, configuration=configuration)
    assert payload["data"]["resultType"] == "matrix" and payload["data"]["result"]
    with pytest.raises(ActivityFailed, match="11,000 points"):
        query_interval(selector, start, end, step=1, configuration=configuration)


@pytest.mark.servers
def test_the_servers_error_fails_the_activity(backfilled):
    prometheus, _ = backfilled
    with pytest.raises(ActivityFailed, match=r"Prometheus query failed: HTTP 400: .*parse error"):
        query("sum(", configuration={"prometheus_base_url": prometheus.url})


def test_a_blackholed_prometheus_fails_the_probe_within_its_timeout():
    with Blackhole() as blackhole:
        began = time.monotonic()
        # Prometheus is given 1 s; the client waits that and its margin for the answer.
        with pytest.raises(ActivityFailed, match="within 3 s"):
            query("up", timeout=1, configuration={"prometheus_base_url": blackhole.url})
        assert time.monotonic() - began < 10
        assert blackhole.connections == 1


class _Recording(BaseHTTPRequestHandler):
    """Answers like Prometheus and keeps the Authorization header it got."""

    seen = []

    def do_GET(self):
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_credentials_come_from_the_activitys_secrets():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    serve_in_background(server, "prometheus-credentials")
    configuration = {"prometheus_base_url": f"http://127.0.0.1:{server.server_address[1]}"}
    try:
        query("up", configuration=configuration, secrets={"prometheus_token": "s3cret"})
        query("up", configuration=configuration, secrets={"prometheus_username": "u", "prometheus_password": "p"})
        query("up", configuration=configuration)
    finally:
        stop_serving(server)
    assert _Recording.seen == ["Bearer s3cret", "Basic dTpw", None]


@pytest.mark.e2e
@pytest.mark.servers
def test_chaos_run_with_the_probes_gets_the_payload(backfilled, tmp_path):
    prometheus, run = backfilled
    selector = f'chaostoolkit_experiment_status{{{RUN_ID_LABEL}="{run.run_id}"}} == 1'

    def probe(name, func, arguments):
        return {"type": "probe", "name": name, "provider": {
            "type": "python", "module": "chaosreplay.probes.prometheus", "func": func, "arguments": arguments}}

    experiment = {
        "title": "probes against a real Prometheus",
        "description": "query and query_interval from chaosreplay.probes.prometheus",
        "configuration": {"prometheus_base_url": prometheus.url},
        "method": [
            probe("status", "query", {"query": selector, "when": run.experiment.end.isoformat()}),
            probe("range", "query_interval", {"query": selector, "start": run.experiment.start.isoformat(),
                                              "end": (run.experiment.end + timedelta(minutes=1)).isoformat()}),
        ],
    }
    (tmp_path / "experiment.json").write_text(json.dumps(experiment))
    chaos = os.path.join(os.path.dirname(sys.executable), "chaos")
    finished = subprocess.run([chaos, "--no-version-check", "run", "experiment.json", "--journal-path", "journal.json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed", finished.stdout + finished.stderr
    status, interval = journal["run"]
    assert status["status"] == "succeeded" and interval["status"] == "succeeded"
    assert status["output"]["data"]["result"][0]["metric"]["status"] == run.experiment.status
    assert interval["output"]["data"]["resultType"] == "matrix" and interval["output"]["data"]["result"]


@pytest.mark.parametrize("secrets, key", [({"prometheus_token": "s3cret\n"}, "secrets.prometheus_token"),
                                          ({"prometheus_username": "u", "prometheus_password": "s3cret\r\n"},
                                           "secrets.prometheus_password")])
def test_a_credential_with_a_newline_fails_the_probe_naming_its_key_only(secrets, key):
    with pytest.raises(ActivityFailed) as failed:
        query("up", configuration={"prometheus_base_url": "http://127.0.0.1:9"}, secrets=secrets)
    assert key in str(failed.value) and "s3cret" not in str(failed.value)


def test_verify_tls_is_read_as_every_other_boolean_setting():
    configuration = {"prometheus_base_url": "https://127.0.0.1:9", "prometheus_verify_tls": "nope"}
    with pytest.raises(ActivityFailed, match="configuration.prometheus_verify_tls: expected true or false"):
        query("up", configuration=configuration)
