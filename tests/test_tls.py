"""TLS against real servers: influxd, the pushgateway and Prometheus (remote write) on HTTPS,
and the Grafana stand-in asking for a client certificate.

Certificates come from a throw-away CA (tests/tls.py): verification is on by
default, a CA bundle makes it pass, and turning it off is a choice the user
makes explicitly.
"""
import json
import os
import time
import warnings

import pytest
import requests
from click.testing import CliRunner

from chaoslib.exceptions import ActivityFailed

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from chaosreplay.probes import prometheus as prometheus_probes
from chaosreplay.sinks.grafana_annotations import run_tag
from tests.conftest import JOURNALS, expected_annotation_kinds
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn
from tests.influx_server import start_influxd, stored_events
from tests.prometheus_servers import start_prometheus, start_pushgateway
from tests.tls import make_pki

pytestmark = pytest.mark.servers

BASIC = os.path.join(JOURNALS, "generated-basic.json")
CLEAN_ENV = {name: None for name in os.environ if name.startswith(("INFLUX_", "GRAFANA_"))}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def influxd_https(pki, tmp_path_factory):
    server = start_influxd(str(tmp_path_factory.mktemp("influxd-https")), tls=pki)
    yield server
    server.stop()


def invoke(*args):
    return CliRunner().invoke(replay, list(args), env=CLEAN_ENV, catch_exceptions=False)


def test_influx_certificate_of_an_unknown_ca_is_refused_and_nothing_is_sent(influxd_https, pki):
    result = invoke(BASIC, "--influx-url", influxd_https.url, "--influx-database", "unverified",
                    "--influx-create-database", "--influx-retries", "0")
    assert result.exit_code == 5
    [line] = [line for line in result.output.splitlines() if "NOT delivered" in line]
    assert line.endswith("TLS error: certificate verify failed: unable to get local issuer certificate")
    assert "Traceback" not in result.output
    databases = requests.get(f"{influxd_https.url}/query", params={"q": "SHOW DATABASES"}, verify=pki.ca,
                             timeout=10).json()
    assert ["unverified"] not in databases["results"][0]["series"][0].get("values", [])


def test_influx_with_the_ca_bundle_stores_every_event(influxd_https, pki):
    run = read_journal(BASIC)
    result = invoke(BASIC, "--influx-url", influxd_https.url, "--influx-database", "verified",
                    "--influx-create-database", "--influx-ca-bundle", pki.ca)
    assert result.exit_code == 0, result.output
    assert stored_events(influxd_https.url, verify=pki.ca, database="verified") == len(run.events)


def test_influx_without_verification_when_asked(influxd_https, pki):
    run = read_journal(BASIC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning: the user asked for it
        result = invoke(BASIC, "--influx-url", influxd_https.url, "--influx-database", "unchecked",
                        "--influx-create-database", "--influx-no-verify-tls")
    assert result.exit_code == 0, result.output
    assert stored_events(influxd_https.url, verify=pki.ca, database="unchecked") == len(run.events)


@pytest.fixture
def grafana_https(pki):
    server = GrafanaStandIn(tls=pki)
    yield server
    server.close()


def test_grafana_with_ca_bundle_and_client_certificate(grafana_https, pki):
    run = read_journal(BASIC)
    result = invoke(BASIC, "--grafana-url", grafana_https.url, "--grafana-token", EDITOR_TOKEN,
                    "--grafana-ca-bundle", pki.ca, "--grafana-client-cert", pki.client_cert,
                    "--grafana-client-key", pki.client_key)
    assert result.exit_code == 0, result.output
    assert grafana_https.violations == []
    assert len(grafana_https.with_tag(run_tag(run.run_id))) == sum(expected_annotation_kinds(run).values())


@pytest.mark.parametrize("missing, reason", [
    ("ca bundle", "TLS error: certificate verify failed: self-signed certificate in certificate chain"),
    # TLS 1.3 asks for the client certificate after the handshake: the client reads the
    # server's alert, or the connection already closed after it.
    ("client certificate", ("TLS error: tlsv13 alert certificate required",
                            "TLS error: EOF occurred in violation of protocol")),
])
def test_grafana_tls_failures_are_one_line_and_send_nothing(grafana_https, pki, missing, reason):
    options = ["--grafana-ca-bundle", pki.ca] if missing == "client certificate" else [
        "--grafana-client-cert", pki.client_cert, "--grafana-client-key", pki.client_key]
    result = invoke(BASIC, "--grafana-url", grafana_https.url, "--grafana-token", EDITOR_TOKEN,
                    "--grafana-retries", "0", *options)
    assert result.exit_code == 5
    [line] = [line for line in result.output.splitlines() if "NOT delivered" in line]
    assert line.endswith(reason)
    assert "Traceback" not in result.output
    assert grafana_https.annotations == {}


@pytest.fixture(scope="module")
def pushgateway_https(pki, tmp_path_factory):
    server = start_pushgateway(str(tmp_path_factory.mktemp("pushgateway-https")), tls=pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prometheus_https(pki, tmp_path_factory):
    server = start_prometheus(str(tmp_path_factory.mktemp("prometheus-https")), tls=pki)
    yield server
    server.stop()


def _config(tmp_path, section: str, **values) -> str:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({section: values}), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("with_ca", [True, False], ids=["ca bundle", "no ca bundle"])
def test_pushgateway_over_tls(pushgateway_https, pki, tmp_path, with_ca):
    job = f"tls-{'ca' if with_ca else 'none'}"
    values = {"url": pushgateway_https.url, "job": job, "retries": 0}
    if with_ca:
        values["ca_bundle"] = pki.ca
    result = invoke(BASIC, "--config", _config(tmp_path, "pushgateway", **values))
    exposed = requests.get(f"{pushgateway_https.url}/metrics", verify=pki.ca, timeout=10).text
    ours = [line for line in exposed.splitlines() if line.startswith("chaostoolkit_") and f'job="{job}"' in line]
    if with_ca:
        assert result.exit_code == 0, result.output
        assert any(f'chaostoolkit_run_trace_id="{read_journal(BASIC).run_id}"' in line for line in ours)
    else:
        assert result.exit_code == 5
        [line] = [line for line in result.output.splitlines() if "NOT delivered" in line]
        assert line.endswith("TLS error: certificate verify failed: unable to get local issuer certificate")
        assert ours == []


@pytest.mark.parametrize("with_ca", [True, False], ids=["ca bundle", "no ca bundle"])
def test_remote_write_over_tls(prometheus_https, pki, tmp_path, with_ca):
    run = read_journal(BASIC)
    values = {"retries": 0}
    if with_ca:
        values["ca_bundle"] = pki.ca
    result = invoke(BASIC, "--prometheus-remote-write", f"{prometheus_https.url}/api/v1/write",
                    "--config", _config(tmp_path, "prometheus_remote_write", **values))
    query = f'count(chaostoolkit_activity_duration_seconds{{chaostoolkit_run_trace_id="{run.run_id}"}})'
    if with_ca:
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 20
        while True:
            answer = requests.get(f"{prometheus_https.url}/api/v1/query", verify=pki.ca, timeout=10, params={
                "query": query, "time": f"{run.experiment.end.timestamp():.3f}"}).json()["data"]["result"]
            if answer or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer and int(answer[0]["value"][1]) == sum(1 for e in run.events if e.kind == "activity")
    else:
        assert result.exit_code == 5
        [line] = [line for line in result.output.splitlines() if "NOT delivered" in line]
        assert line.endswith("TLS error: certificate verify failed: unable to get local issuer certificate")


def test_prometheus_probe_over_tls(prometheus_https, pki):
    configuration = {"prometheus_base_url": prometheus_https.url, "prometheus_ca_bundle": pki.ca}
    answer = prometheus_probes.query("vector(1)", configuration=configuration)
    assert answer["status"] == "success" and answer["data"]["result"][0]["value"][1] == "1"
    with pytest.raises(ActivityFailed) as failed:
        prometheus_probes.query("vector(1)", configuration={"prometheus_base_url": prometheus_https.url})
    assert str(failed.value) == (f"Prometheus query failed: {prometheus_https.url}/api/v1/query: TLS error: "
                                 "certificate verify failed: unable to get local issuer certificate")
