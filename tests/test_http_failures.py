"""Whatever goes wrong between a sink and its server, `chaos-replay` says it in one line, never a credential.

Bad credentials and URLs are refused while the configuration is resolved (exit
4); a request that cannot be made or answered ends as an undelivered target
(exit 5). Servers that misbehave are started here on loopback.
"""
import os

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.errors import EXIT_INVALID_CONFIG, EXIT_UNDELIVERED
from chaosreplay.sinks.http import Unreachable, request_with_retries
from tests.conftest import JOURNALS
from tests.blackhole import Answering

BASIC = os.path.join(JOURNALS, "generated-basic.json")
SECRET = "s3cret-value"
# Every other source of target configuration emptied, so only the flags count.
NO_TARGET_ENV = {name: "" for name in ("INFLUX_URL", "GRAFANA_URL", "PUSHGATEWAY_URL", "PROMETHEUS_REMOTE_WRITE_URL",
                                       "OPENMETRICS_FILE")}


def misbehaving_answer(how: str):
    """Every request answered with a redirect to itself, or a broken chunked body."""
    def respond(request):
        if how == "redirect":
            return (307, {"Location": request.path}, b"")
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnot a chunk\r\n"
    return respond


@pytest.fixture
def misbehaving():
    servers = []

    def start(how):
        servers.append(Answering(misbehaving_answer(how)))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def run_cli(*args, env=None):
    return CliRunner().invoke(replay, [BASIC, *args], env={**NO_TARGET_ENV, **(env or {})})


def assert_one_line_error(result, *expected):
    assert result.exit_code == EXIT_INVALID_CONFIG, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("chaos-replay: error: ")
    for text in expected:
        assert text in line


def assert_undelivered(result, target, *expected):
    assert result.exit_code == EXIT_UNDELIVERED, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    [line] = [line for line in result.stdout.splitlines() if f"-> {target}" in line]
    assert "NOT delivered" in line
    for text in expected:
        assert text in line


@pytest.mark.parametrize("args, env, key", [
    (["--grafana-url", "http://127.0.0.1:9", "--grafana-token", SECRET + "\n"], {}, "--grafana-url #1.token"),
    (["--grafana-url", "http://127.0.0.1:9", "--grafana-username", "ops"], {"GRAFANA_PASSWORD": SECRET + "\r\n"},
     "--grafana-url #1.password"),
    (["--influx-url", "http://127.0.0.1:9", "--influx-database", "d"], {"INFLUX_USERNAME": f"ops\r\nX: {SECRET}"},
     "influx.username"),
    (["--influx-url", "http://127.0.0.1:9", "--influx-bucket", "b"], {"INFLUX_ORG": "o", "INFLUX_TOKEN": SECRET + "\t"},
     "influx.token"),
    (["--pushgateway-url", "http://127.0.0.1:9"], {"PUSHGATEWAY_TOKEN": " " + SECRET}, "pushgateway.token"),
    (["--prometheus-remote-write", "http://127.0.0.1:9"], {"PROMETHEUS_REMOTE_WRITE_PASSWORD": SECRET + "\x1b"},
     "prometheus_remote_write.password"),
])
def test_a_credential_that_cannot_go_into_a_header_exits_4_naming_its_key(args, env, key):
    assert_one_line_error(run_cli(*args, env=env), key)


@pytest.mark.parametrize("url", [f"http://ops:{SECRET}@127.0.0.1:99999", f"http://ops:{SECRET}@127.0.0.1:0",
                                 f"http://ops:{SECRET}@127.0.0.1:port"])
def test_a_port_out_of_range_exits_4_without_the_password(url):
    assert_one_line_error(run_cli("--influx-url", url, "--influx-database", "d"),
                          "influx.url", "expected a port from 1 to 65535", "127.0.0.1")


def test_a_missing_ca_bundle_is_one_undelivered_line():
    result = run_cli("--influx-url", "https://127.0.0.1:9", "--influx-database", "d",
                     "--influx-ca-bundle", "/nonexistent/ca.pem")
    assert_undelivered(result, "influx", "invalid path: /nonexistent/ca.pem")


def test_a_redirect_is_not_followed_but_one_undelivered_line(misbehaving):
    server = misbehaving("redirect")
    result = run_cli("--influx-url", server.url, "--influx-database", "d", "--influx-retries", "0")
    assert_undelivered(result, "influx", "HTTP 307 redirect to", "not followed")
    assert len(server.received) == 1


def test_a_broken_chunked_answer_is_retried_then_one_undelivered_line(misbehaving):
    server = misbehaving("chunked")
    result = run_cli("--pushgateway-url", server.url, env={"PUSHGATEWAY_RETRIES": "1"})
    assert_undelivered(result, "pushgateway", "push:", "(2 attempt(s))")


def test_a_header_requests_refuses_is_never_quoted():
    with pytest.raises(Unreachable) as unreachable:
        request_with_retries(requests.Session(), "GET", "http://127.0.0.1:9/", "look-up", label="test",
                             retries=0, timeout=1, headers={"Authorization": f"Bearer {SECRET}\n"})
    # requests refuses it itself; 2.32 (on Python 3.9 here) let a final line break through, and
    # http.client refused it instead: either way only the kind of problem is told.
    assert str(unreachable.value) in ("look-up: a header value requests refuses (InvalidHeader)",
                                      "look-up: a header or URL value http.client refuses (ValueError)")
