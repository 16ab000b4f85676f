"""The InfluxDB 2.x write path and the transport's failure handling, against local HTTP servers.

No InfluxDB 2.x can be installed here: `ContractServer` checks what InfluxDB's v2
write API documents (POST /api/v2/write, org + bucket + precision parameters,
`Authorization: Token`, line protocol body, optional gzip), and answers as
scripted. VictoriaMetrics, which accepts /api/v2/write, is the real server.
"""
import gzip
import json
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chaosreplay.config import Settings
from chaosreplay.events import Event, Run, activity_id, experiment_id
from chaosreplay.sinks.influx import InfluxTarget, influx_config
from chaosreplay.sinks.influx_line import run_lines
from tests.loopback import serve_in_background, stop_serving
from tests.procs import free_port, require_binary, start_server

TOKEN = "s3cr3t-token-value"
V2_PRECISIONS = {"ns", "us", "ms", "s"}


class ContractServer:
    """A /api/v2/write endpoint that records requests and answers from a script of statuses."""

    def __init__(self, statuses: Optional[List[int]] = None, delay: float = 0.0, reject: Optional[str] = None):
        self.statuses = list(statuses or [])
        self.reject = reject
        self.delay = delay
        self.requests: List[dict] = []
        self.violations: List[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        serve_in_background(self.httpd, "influx-v2-stand-in")

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        params = parse_qs(parts.query)
        if handler.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.requests.append({"path": parts.path, "params": params, "headers": dict(handler.headers),
                              "lines": body.decode("utf-8").split("\n")})
        self._check(parts.path, params, handler.headers)
        time.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 204
        if self.reject and any(self.reject in line for line in self.requests[-1]["lines"]):
            status = 400
        if handler.headers.get("Authorization") != f"Token {TOKEN}":
            status = 401
        payload = b""
        if status >= 400:
            payload = json.dumps({"code": "invalid", "message": f"scripted {status}"}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _check(self, path, params, headers) -> None:
        if path != "/api/v2/write":
            self.violations.append(f"path {path}")
        if "org" not in params and "orgID" not in params:
            self.violations.append("no org/orgID")
        if "bucket" not in params:
            self.violations.append("no bucket")
        if params.get("precision", ["ns"])[0] not in V2_PRECISIONS:
            self.violations.append(f"precision {params['precision']}")
        if not headers.get("Content-Type", "").startswith("text/plain"):
            self.violations.append(f"content type {headers.get('Content-Type')}")

    def close(self) -> None:
        stop_serving(self.httpd)


@pytest.fixture
def contract():
    servers = []

    def start(statuses=None, delay=0.0, reject=None):
        servers.append(ContractServer(statuses, delay, reject))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def sample_run(events=12, start=None) -> Run:
    start = start or datetime(2024, 6, 1, 10, 0, tzinfo=timezone.utc)
    run_id = "httprun"
    items = [Event(id=experiment_id(run_id), run_id=run_id, kind="experiment", name="v2 test", start=start,
                   end=start + timedelta(seconds=events + 1), status="completed", fields={"deviated": False})]
    items += [
        Event(id=activity_id(run_id, "method", f"step-{i % 3}", i // 3), run_id=run_id, kind="activity",
              phase="method", activity_type="action", name=f"step-{i % 3}",
              start=start + timedelta(seconds=i + 1), end=start + timedelta(seconds=i + 1.5),
              status="succeeded")
        for i in range(events - 1)
    ]
    return Run(run_id, "test", tuple(items))


def v2_target(url, env_token=TOKEN, **cli) -> InfluxTarget:
    options = {"influx_url": url, "influx_org": "acme", "influx_bucket": "chaos", **cli}
    return InfluxTarget(influx_config(Settings(cli=options, env={"INFLUX_TOKEN": env_token})))


def test_v2_write_follows_the_documented_api(contract):
    server = contract()
    run = sample_run(12)
    target = v2_target(server.url, influx_batch_size=5, influx_gzip=True)
    delivery = target.send(run)

    assert delivery.ok and len(delivery.delivered) == 12
    assert server.violations == []
    assert [len(request["lines"]) for request in server.requests] == [5, 5, 2]
    first = server.requests[0]
    assert first["params"] == {"org": ["acme"], "bucket": ["chaos"], "precision": ["ns"]}
    assert first["headers"]["Authorization"] == f"Token {TOKEN}"
    sent = [line for request in server.requests for line in request["lines"]]
    assert sent == [line.line for line in run_lines(run)]


def test_v2_token_never_shows_in_label_plan_or_errors(contract):
    server = contract()
    target = v2_target(server.url, env_token="wrong-" + TOKEN)
    delivery = target.send(sample_run(3))
    plan_text = json.dumps([request.to_dict() for request in target.plan(sample_run(3))])

    assert delivery.failed and delivery.error == "write: HTTP 401 scripted 401"
    for text in (target.label, plan_text, delivery.error, repr(target.config)):
        assert TOKEN not in text
    assert '"Authorization": "Token ***"' in plan_text


def test_5xx_is_retried_with_backoff_then_delivered(contract):
    server = contract(statuses=[503, 500])
    started = time.monotonic()
    delivery = v2_target(server.url).send(sample_run(4))
    assert delivery.ok and len(server.requests) == 3
    assert time.monotonic() - started >= 1.5  # 0.5 s then 1 s of backoff


def test_5xx_beyond_the_retries_fails_every_event_with_one_line(contract):
    server = contract(statuses=[502] * 5)
    run = sample_run(4)
    delivery = v2_target(server.url, influx_retries=1).send(run)
    assert len(server.requests) == 2
    assert set(delivery.failed) == {event.id for event in run.events} and not delivery.delivered
    assert delivery.error == "write: HTTP 502 scripted 502 (2 attempt(s))"


def test_400_is_narrowed_down_to_the_rejected_line(contract):
    run = sample_run(8)
    bad = run.events[3].id
    server = contract(reject=bad)
    delivery = v2_target(server.url).send(run)
    assert delivery.failed == (bad,)
    assert len(delivery.delivered) == 7
    assert delivery.error.startswith("partial write: 7 of 8 point(s) stored, 1 rejected (first: line 4: scripted 400")
    assert delivery.notes[0].startswith(f"line 4 (event {bad}) rejected")
    assert len(server.requests) == 7  # 8 lines, halves, quarters, pairs: log2 steps, not one per line


def test_unreachable_server_is_one_line_after_retries():
    url = f"http://127.0.0.1:{free_port()}"
    delivery = v2_target(url, influx_retries=0).send(sample_run(2))
    assert delivery.error == "write: Connection refused (1 attempt(s))"
    assert len(delivery.failed) == 2


def test_read_timeout_is_reported_not_hung(contract):
    server = contract(delay=2.0)
    started = time.monotonic()
    delivery = v2_target(server.url, influx_retries=0, influx_timeout=0.3).send(sample_run(2))
    assert time.monotonic() - started < 1.9
    assert "timed out" in delivery.error and "(1 attempt(s))" in delivery.error


@pytest.mark.servers
def test_victoria_metrics_accepts_the_v2_writes(tmp_path):
    binary = require_binary("victoria-metrics", "victoria-metrics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server("victoria-metrics", [
        binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'data'}",
        "-retentionPeriod=100y",
    ], f"{url}/health", url, workdir=str(tmp_path))
    try:
        run = sample_run(10, start=datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1))
        delivery = v2_target(url).send(run)
        assert delivery.ok and len(delivery.delivered) == 10
        requests.get(f"{url}/internal/force_flush", timeout=10)
        exported = requests.get(f"{url}/api/v1/export", timeout=10,
                                params={"match[]": '{__name__="chaostoolkit_events_duration"}'})
        samples = [json.loads(line) for line in exported.text.splitlines()]
        stored = sorted((t, v) for sample in samples for t, v in zip(sample["timestamps"], sample["values"]))
        expected = sorted((int(e.start.timestamp() * 1000), e.duration) for e in run.events)
        assert stored == expected
    finally:
        server.stop()
