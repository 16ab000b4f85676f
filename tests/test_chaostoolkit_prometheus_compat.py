"""chaostoolkit-prometheus 0.6.0 users switch by changing `"module"`: its test cases and its behaviour, here.

Its own tests (tests/test_probes.py of chaostoolkit-incubator/chaostoolkit-prometheus)
are re-expressed with the same inputs and expectations against
`chaosreplay.probes.prometheus`; its mocked Prometheus at the default
`http://localhost:9090` is a real HTTP server reached as a proxy, so the URL the
probe asks for is the default one without anything listening on port 9090.
"""
import json
import os
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import chaoslib
import pytest
import requests
from chaoslib.activity import ensure_activity_is_valid
from chaoslib.exceptions import FailedActivity
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chaosreplay.config import Settings
from chaosreplay.delivery import control_target_sections
from chaosreplay.errors import ConfigError
from chaosreplay.journal import experiment_hash, read_journal
from chaosreplay.probes.prometheus import compute_mean, parse_duration, parse_time, query, query_interval
from chaosreplay.sinks.pushgateway import targets as pushgateway_targets
from tests.conftest import JOURNALS
from tests.loopback import serve_in_background, stop_serving
from tests.prometheus_servers import prometheus, pushgateway  # noqa: F401 (fixtures)
from tests.test_live_controls import chaos_run

NOW = datetime(2023, 9, 21, 10, 30, 0, tzinfo=timezone.utc)


def _local(*fields) -> datetime:
    """A wall-clock time of the machine's zone, in UTC: how the peer read a time without a zone."""
    return datetime(*fields).astimezone().astimezone(timezone.utc)


# -- tests/test_probes.py, one by one ------------------------------------------------------------

def test_failed_parsing_when_date():
    with pytest.raises(FailedActivity) as exc:
        query("request_processing_seconds_count", when="2 mns ago")
    assert "failed to parse '2 mns ago'" in str(exc.value)


def test_failed_parsing_start_date():
    with pytest.raises(FailedActivity) as exc:
        query_interval("request_processing_seconds_count", start="2 mns ago", end="now")
    assert "failed to parse '2 mns ago'" in str(exc.value)


def test_failed_parsing_end_date():
    with pytest.raises(FailedActivity) as exc:
        query_interval("request_processing_seconds_count", start="2 minutes ago", end="right now")
    assert "failed to parse 'right now'" in str(exc.value)


class _PrometheusProxy(BaseHTTPRequestHandler):
    """Reached as the HTTP proxy: sees the absolute URL the probe asked for, answers as told."""

    status, body = 400, b"Bad Request"

    def do_GET(self):
        self.server.seen.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json" if self.status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def localhost_9090(monkeypatch):
    """Whatever goes to http://localhost:9090 lands here (as a proxy): (server, seen URLs)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PrometheusProxy)
    server.seen = []
    serve_in_background(server, "localhost-9090")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    stop_serving(server)


def test_failed_running_query(localhost_9090):
    """The peer mocked a 400 "Bad Request" at its default URL, with no configuration at all."""
    with pytest.raises(FailedActivity) as ex:
        query_interval(query="request_processing_seconds_count", start="2 minutes ago", end="now")
    assert "Prometheus query" in str(ex.value)
    [url] = localhost_9090.seen
    assert url.startswith("http://localhost:9090/api/v1/query_range?")


# -- arguments and defaults -----------------------------------------------------------------------

def test_timeout_goes_to_prometheus_as_its_timeout_parameter(localhost_9090, monkeypatch):
    monkeypatch.setattr(_PrometheusProxy, "status", 200)
    monkeypatch.setattr(_PrometheusProxy, "body", b'{"status": "success", "data": {"result": []}}')
    query("up", timeout="30s")
    query("up", timeout=5)
    query("up")
    sent = [parse_qs(urlsplit(url).query).get("timeout") for url in localhost_9090.seen]
    assert sent == [["30s"], ["5"], None]


@pytest.mark.parametrize("value, seconds", [("30s", 30), ("1m30s", 90), ("1.5", 1.5), (5, 5), ("250ms", 0.25)])
def test_timeouts_are_seconds_or_prometheus_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "30 s", "-5s", 0, True])
def test_a_timeout_prometheus_would_refuse_fails_the_activity_naming_it(value):
    with pytest.raises(FailedActivity, match="timeout"):
        query("up", timeout=value, configuration={"prometheus_base_url": "http://127.0.0.1:9"})


@pytest.mark.parametrize("func, arguments", [
    ("query", {"query": "up", "when": "2 minutes ago", "timeout": "30s", "verify_tls": False}),
    ("query_interval", {"query": "up", "start": "1 hour ago", "end": "now", "step": 60, "timeout": 10,
                        "verify_tls": True}),
])
def test_chaoslib_accepts_the_peers_arguments(func, arguments):
    """0.6.0's headline argument, verify_tls: chaoslib checks arguments against the signature."""
    ensure_activity_is_valid({"type": "probe", "name": "p", "provider": {
        "type": "python", "module": "chaosreplay.probes.prometheus", "func": func, "arguments": arguments}})


def test_verify_tls_false_skips_the_certificate_check_even_with_a_ca_configured(localhost_9090, monkeypatch):
    monkeypatch.setattr(_PrometheusProxy, "status", 200)
    monkeypatch.setattr(_PrometheusProxy, "body", b'{"status": "success", "data": {"result": []}}')
    # The CA file does not exist: verifying would fail before any request.
    configuration = {"prometheus_ca_bundle": "/nonexistent/ca.pem"}
    assert query("up", verify_tls=False, configuration=configuration)["status"] == "success"


# -- time expressions the peer's parser (dateparser) accepted ------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("an hour ago", NOW - timedelta(hours=1)),
    ("a minute ago", NOW - timedelta(minutes=1)),
    ("1 month ago", datetime(2023, 8, 21, 10, 30, tzinfo=timezone.utc)),
    ("1 year ago", datetime(2022, 9, 21, 10, 30, tzinfo=timezone.utc)),
    ("1 hour 30 minutes ago", NOW - timedelta(hours=1, minutes=30)),
    ("yesterday", NOW - timedelta(days=1)),
    ("today", NOW),
    ("now", NOW),
    ("in 5 minutes", NOW + timedelta(minutes=5)),
    ("-5m", NOW - timedelta(minutes=5)),
    ("19/09/2023 14:49", _local(2023, 9, 19, 14, 49)),
    ("Sep 19 2023 14:49", _local(2023, 9, 19, 14, 49)),
    ("Tue, 19 Sep 2023 14:49:00 +0200", datetime(2023, 9, 19, 12, 49, tzinfo=timezone.utc)),
    ("Tue, 19 Sep 2023 14:49:00 GMT", datetime(2023, 9, 19, 14, 49, tzinfo=timezone.utc)),
    ("2023-09-19T14:49:00Z", datetime(2023, 9, 19, 14, 49, tzinfo=timezone.utc)),
])
def test_the_time_expressions_of_chaostoolkit_prometheus_users(text, expected):
    assert parse_time(text, now=NOW) == expected


# -- against a real Prometheus ----------------------------------------------------------------------

@pytest.mark.servers
def test_compute_mean_and_a_prometheus_duration_timeout_against_prometheus(prometheus):
    configuration = {"prometheus_base_url": prometheus.url}
    assert compute_mean("vector(2)", window="1h", configuration=configuration) == 2
    assert compute_mean("vector(4)", window="10m", mean_type="harmonic", configuration=configuration) == 4
    answer = query("vector(1)", when="a minute ago", timeout="30s", verify_tls=False, configuration=configuration)
    assert answer["data"]["result"][0]["value"][1] == "1"


@pytest.mark.servers
@pytest.mark.e2e
def test_a_chaos_run_with_the_peers_probe_arguments(prometheus, tmp_path):
    """The same probes as a chaostoolkit-prometheus experiment, only `module` changed."""
    def probe(name, func, arguments):
        return {"type": "probe", "name": name, "provider": {
            "type": "python", "module": "chaosreplay.probes.prometheus", "func": func, "arguments": arguments}}

    experiment = {
        "title": "chaostoolkit-prometheus probes", "description": "verify_tls, timeout, time expressions",
        "configuration": {"prometheus_base_url": prometheus.url},
        "method": [
            probe("instant", "query", {"query": "vector(1)", "when": "a minute ago", "timeout": "30s",
                                       "verify_tls": False}),
            probe("range", "query_interval", {"query": "vector(1)", "start": "1 hour 30 minutes ago", "end": "now",
                                              "step": 60, "timeout": 10, "verify_tls": True}),
            probe("mean", "compute_mean", {"query": "vector(3)", "window": "1h"}),
        ],
    }
    completed, _, journal_path = chaos_run(tmp_path, "peer-probes", experiment)
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    assert journal["status"] == "completed", completed.stdout + completed.stderr
    instant, interval, mean = journal["run"]
    assert [entry["status"] for entry in journal["run"]] == ["succeeded"] * 3
    assert instant["output"]["data"]["result"][0]["value"][1] == "1"
    assert len(interval["output"]["data"]["result"][0]["values"]) == 91  # 90 minutes, a point a minute
    assert mean["output"] == 3


# -- the pushgateway control: chaosprometheus.metrics --------------------------------------------

def _peer_registry_exposition(journal: dict, trace_id: str, experiment_ref: str) -> str:
    """What chaosprometheus.metrics pushed at the end of this run: its registry (metric types,
    names, label names, Enum states, default buckets) built with the library it used."""
    registry = CollectorRegistry()
    names = ["source", "chaostoolkit_lib_version", "chaostoolkit_run_trace_id", "chaostoolkit_experiment_ref"]
    status = Enum("chaostoolkit_experiment_status", "Chaos Toolkit experiment runs status", names,
                  registry=registry, states=["completed", "failed", "aborted", "interrupted"])
    deviated = Counter("chaostoolkit_deviated_experiment", "Chaos Toolkit deviated experiments", names,
                       registry=registry)
    in_progress = Gauge("chaostoolkit_inprogress_experiment", "Chaos Toolkit experiments in progress", names,
                        registry=registry)
    duration = Gauge("chaostoolkit_experiment_duration", "Chaos Toolkit experiment duration", names,
                     registry=registry)
    distribution = Histogram("chaostoolkit_experiment_duration_dist",
                             "Chaos Toolkit experiment duration distribution", names, registry=registry)
    labels = ["chaostoolkit", journal["chaoslib-version"], trace_id, experiment_ref]
    in_progress.labels(*labels).inc()  # before_experiment_control
    if journal["deviated"]:  # after_experiment_control
        deviated.labels(*labels).inc()
    in_progress.labels(*labels).dec()
    status.labels(*labels).state(journal["status"])
    duration.labels(*labels).set(journal["duration"])
    distribution.labels(*labels).observe(journal["duration"])
    return generate_latest(registry).decode("utf-8")


def _samples(exposition: str) -> dict:
    """(name, labels) -> value; `_created` samples (a clock reading) compared by presence only."""
    return {(sample.name, tuple(sorted(sample.labels.items()))):
            None if sample.name.endswith("_created") else sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


@pytest.mark.parametrize("name", ["generated-basic.json", "generated-deviated.json", "generated-aborted.json"])
def test_the_pushgateway_control_declared_the_peers_way_pushes_the_peers_metrics(name):
    path = os.path.join(JOURNALS, name)
    with open(path, encoding="utf-8") as handle:
        journal = json.load(handle)
    run = read_journal(path)
    [target] = pushgateway_targets(Settings(env={}, file={"pushgateway": {
        "pushgateway_url": "http://gw:9091", "job": "chaostoolkit", "trace_id": "trace-1"}}))
    [plan] = target.plan(run)
    # The duration is the run's end minus its start; chaoslib's own `duration` differs by a few ms.
    expected = _samples(_peer_registry_exposition(journal, "trace-1", run.experiment_hash))
    assert _samples(plan.body) == {key: pytest.approx(value, abs=0.01) if value is not None else None
                                   for key, value in expected.items()}
    assert plan.url == f"http://gw:9091/metrics/job/chaostoolkit/chaostoolkit_experiment_ref/{run.experiment_hash}"


def test_experiment_ref_defaults_to_chaoslibs_hash_of_the_experiment():
    with open(os.path.join(JOURNALS, "generated-basic.json"), encoding="utf-8") as handle:
        journal = json.load(handle)
    if hasattr(chaoslib, "experiment_hash"):  # chaoslib >= 1.27, which the peer required
        assert experiment_hash(journal["experiment"]) == chaoslib.experiment_hash(journal["experiment"])
    assert read_journal(os.path.join(JOURNALS, "generated-basic.json")).experiment_hash == \
        experiment_hash(journal["experiment"])


def test_one_switch_publishes_ours_instead_and_a_grouping_key_is_used_as_given():
    run = read_journal(os.path.join(JOURNALS, "generated-basic.json"))
    [ours] = pushgateway_targets(Settings(env={}, file={"pushgateway": {
        "pushgateway_url": "http://gw:9091", "layout": "chaostoolkit-replay", "grouping_key": {"team": "sre"}}}))
    [plan] = ours.plan(run)
    assert plan.url == "http://gw:9091/metrics/job/chaostoolkit/team/sre"
    assert "chaostoolkit_experiment_status{" in plan.body and 'status="completed"' in plan.body
    assert 'chaostoolkit_delivery="pushgateway"' in plan.body and "chaostoolkit_inprogress_experiment" not in plan.body
    # Our own section key `url` (and --pushgateway-url) means our layout.
    [by_url] = pushgateway_targets(Settings(env={}, file={"pushgateway": {"url": "http://gw:9091"}}))
    assert by_url.config.layout == "chaostoolkit-replay"
    with pytest.raises(ConfigError, match="pushgateway.layout"):
        pushgateway_targets(Settings(env={}, file={"pushgateway": {"url": "http://gw:9091", "layout": "peer"}}))


def test_no_pushgateway_url_is_the_peers_default():
    sections = control_target_sections("chaosreplay.controls.pushgateway", {"job": "chaostoolkit"})
    [target] = pushgateway_targets(Settings(env={}, file=sections))
    assert target.config.endpoint.url == "http://localhost:9091" and target.config.layout == "chaostoolkit-prometheus"


def _experiment(title, controls):
    return {"title": title, "description": "one action",
            "method": [{"type": "action", "name": "sleep", "provider": {"type": "process", "path": "sleep",
                                                                          "arguments": "0.1"}}],
            "controls": controls}


def _peer_control(**arguments):
    return {"name": "prometheus", "provider": {"type": "python", "module": "chaosreplay.controls.pushgateway",
                                               "arguments": arguments}}


@pytest.mark.servers
@pytest.mark.e2e
def test_a_chaos_run_with_the_peers_control_arguments_gives_prometheus_the_peers_series(
        prometheus, pushgateway, tmp_path):
    experiment = _experiment("peer pushgateway e2e", [_peer_control(pushgateway_url=pushgateway.url,
                                                                    job="chaostoolkit")])
    completed, _, journal_path = chaos_run(tmp_path, "peer-pushgateway", experiment)
    assert completed.returncode == 0, completed.stderr
    with open(journal_path, encoding="utf-8") as handle:
        journal = json.load(handle)
    [extension] = [e for e in journal["extensions"] if e.get("name") == "chaostoolkit-replay"]
    # chaoslib's hash of the experiment it configured the control with (the journal's, with the
    # `dry` key chaoslib adds before), as the peer computed it; a replay reads it back.
    ref = extension["experiment_ref"]
    if hasattr(chaoslib, "experiment_hash"):
        assert ref == chaoslib.experiment_hash(journal["experiment"])
    recorded = read_journal(journal_path)
    assert recorded.experiment_hash == ref
    selector = f'{{chaostoolkit_experiment_ref="{ref}", source="chaostoolkit"}}'
    [status] = prometheus.wait_for(f'chaostoolkit_experiment_status{selector} == 1', lambda result: result)
    assert status["metric"]["chaostoolkit_experiment_status"] == "completed"
    assert status["metric"]["chaostoolkit_lib_version"] == journal["chaoslib-version"]
    assert status["metric"]["job"] == "chaostoolkit"
    [in_progress] = prometheus.query(f"chaostoolkit_inprogress_experiment{selector}")
    assert in_progress["value"][1] == "0"
    [duration] = prometheus.query(f"chaostoolkit_experiment_duration{selector}")
    # The run's duration as the control timed it between its experiment hooks, as the peer did:
    # exactly the recorded run's. chaoslib times its own `duration` apart from the hooks, so on a
    # busy machine the two differ by a tenth of a second and more (seconds, not milliseconds, all the same).
    pushed = float(duration["value"][1])
    assert pushed == pytest.approx(recorded.experiment.duration, abs=1e-6)
    assert 0 < pushed and abs(pushed - journal["duration"]) < 1.0, (pushed, journal["duration"])
    [count] = prometheus.query(f"chaostoolkit_experiment_duration_dist_count{selector}")
    assert count["value"][1] == "1"
    assert prometheus.query(f"chaostoolkit_deviated_experiment_total{selector}") == []  # not deviated


@pytest.mark.servers
@pytest.mark.e2e
def test_a_grouping_key_is_the_whole_group_and_runs_of_two_experiments_share_it(pushgateway, tmp_path):
    for name in ("first", "second"):
        experiment = _experiment(f"grouped {name}", [_peer_control(
            pushgateway_url=pushgateway.url, job="grouped", grouping_key={"team": "sre"})])
        completed, _, _ = chaos_run(tmp_path, name, experiment)
        assert completed.returncode == 0, completed.stderr
    groups = requests.get(f"{pushgateway.url}/api/v1/metrics", timeout=5).json()["data"]
    grouped = [group for group in groups if group["labels"].get("job") == "grouped"]
    # One group, keyed exactly by the user's labels; each run replaced it (the peer's PUT).
    assert [group["labels"] for group in grouped] == [{"job": "grouped", "team": "sre"}]
    [series] = grouped[0]["chaostoolkit_experiment_duration"]["metrics"]
    assert series["labels"]["chaostoolkit_experiment_ref"] != ""
