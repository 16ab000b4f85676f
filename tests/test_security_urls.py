"""URLs never print a password, and their authority is parsed so that a password holding
`#`, `/`, `?` or `@` is a password, not a host.

`urlsplit("http://admin:1234/x@host")` sees host `admin`, port `1234`: sending
there would hand the credentials to whoever answers at `admin`. The user
information ends at the last `@` (chaosreplay.config.split_authority).
"""
import json
import logging
import re

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from tests.blackhole import Refusing
from tests.crafted_journals import BASE_JOURNAL, ship_live, write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)

PASSWORDS = ["s3cr#t", "zq91/x", "pqrs?ss", "pqzz@ss", "abq9/b?c#d@e", "pqzw%40ss"]


def with_credentials(url, user, password):
    return url.replace("http://", f"http://{user}:{password}@")


def invoke(*args, env=None):
    return CliRunner().invoke(replay, list(args), env=env, catch_exceptions=False)


def assert_not_shown(result, password):
    """Neither the password nor any part of it a URL parser could cut it into."""
    fragments = [part for part in re.split(r"[#/?@%]", password) if len(part) >= 4]
    for text in (result.stdout, result.stderr):
        for shown in [password, *fragments]:
            assert shown not in text


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_url_delimiters_goes_to_the_right_host_and_is_never_printed(recorders, password):
    influx, grafana, gateway = recorders(), recorders(), recorders()
    result = invoke(BASE_JOURNAL, "--influx-url", with_credentials(influx.url, "admin", password),
                    "--influx-database", "chaos", "--grafana-url", with_credentials(grafana.url, "ops", password),
                    "--pushgateway-url", with_credentials(gateway.url, "gw", password), "--verbose")
    assert result.exit_code == 0, result.stderr
    sent_password = password.replace("%40", "@")  # percent-encoding is decoded, as in any URL
    for server, user in ((influx, "admin"), (grafana, "ops"), (gateway, "gw")):
        assert server.requests
        for request in server.requests:
            assert request.basic_credentials == f"{user}:{sent_password}"
            assert password not in request.target
    assert_not_shown(result, password)
    assert f"-> influx {influx.url} db=chaos: delivered" in result.stdout


@pytest.mark.parametrize("password", PASSWORDS)
def test_dry_run_and_json_show_the_url_without_its_user_information(recorders, password):
    influx = recorders()
    for output in (["--dry-run"], ["--dry-run", "--format", "json"]):
        result = invoke(BASE_JOURNAL, "--influx-url", with_credentials(influx.url, "admin", password),
                        "--influx-database", "chaos", *output)
        assert result.exit_code == 0, result.stderr
        assert_not_shown(result, password)
        assert "Basic ***" in result.stdout
    assert influx.requests == []


@pytest.mark.parametrize("url", [
    "http://admin:s3cr#t@127.0.0.1:99999", "http://admin:s3cr/t@127.0.0.1:0", "ftp://admin:s3cr?t@h",
    "http://admin:s3cr@t@", "http://admin:s3cr#t@127.0.0.1:port",
])
def test_a_refused_url_is_named_without_its_password(url):
    result = invoke(BASE_JOURNAL, "--influx-url", url, "--influx-database", "chaos")
    assert result.exit_code == 4
    [line] = result.stderr.splitlines()
    assert line.startswith(f"chaos-replay: error: {BASE_JOURNAL}: configuration influx.url: ")
    assert "s3cr" not in line and "admin" not in line


def test_an_unreachable_server_is_named_without_its_password():
    with Refusing() as down:
        result = invoke(BASE_JOURNAL, "--influx-url", with_credentials(down.url, "admin", "s3cr#t/x"),
                        "--influx-database", "chaos", "--influx-retries", "0")
    assert result.exit_code == 5
    assert "Connection refused" in result.stdout
    assert_not_shown(result, "s3cr#t/x")


def test_a_journals_own_url_with_a_password_is_parsed_and_masked(tmp_path, recorders):
    grafana = recorders()
    url = with_credentials(grafana.url, "ops", "1234/x")

    def change(document):
        document["experiment"]["configuration"]["grafana"] = [{"url": url}]
    journal = write_journal(tmp_path, change)
    result = invoke(journal)
    assert result.exit_code == 0, result.stderr
    assert {request.basic_credentials for request in grafana.requests} == {"ops:1234/x"}
    assert_not_shown(result, "1234/x")


def test_a_live_control_parses_and_masks_the_same_way(recorders, caplog):
    influx = recorders()
    run = read_journal(BASE_JOURNAL)
    with caplog.at_level(logging.DEBUG):
        deliveries = ship_live({"influx": {"url": with_credentials(influx.url, "admin", "p/a?s#s@w"),
                                           "database": "chaos"}}, run)
    [(label, record)] = deliveries.items()
    assert record["undelivered"] == []
    assert label == f"influx {influx.url} db=chaos"
    assert {request.basic_credentials for request in influx.requests} == {"admin:p/a?s#s@w"}
    assert "p/a?s" not in json.dumps(deliveries) and "p/a?s" not in caplog.text
