"""Credentials stay with the server their source names.

The command's credentials (flags, environment, `--config`) go only to URLs the
command names; the journal's (its secrets, its configuration, its live
controls' arguments, `${...}` filled from its secrets) only to the URL of the
same journal section. Both leak directions are reproduced against recording
servers, for `chaos-replay` and for the live controls.
"""
import base64

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from tests.crafted_journals import BASE_JOURNAL, ship_live, write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)

JOURNAL_USER, JOURNAL_PASSWORD = "journal-user", "journal-pa55word"
JOURNAL_TOKEN, JOURNAL_SECRET_TOKEN = "journal-grafana-token", "journal-secret-token"
USER_ENV = {"INFLUX_USERNAME": "my-user", "INFLUX_PASSWORD": "my-influx-pa55", "INFLUX_TOKEN": "my-influx-token",
            "GRAFANA_TOKEN": "my-grafana-token", "GRAFANA_USERNAME": "my-grafana-user",
            "GRAFANA_PASSWORD": "my-grafana-pa55", "PUSHGATEWAY_TOKEN": "my-pushgateway-token",
            "PUSHGATEWAY_USERNAME": "my-gw-user", "PUSHGATEWAY_PASSWORD": "my-gw-pa55"}
JOURNAL_CREDENTIALS = [JOURNAL_USER, JOURNAL_PASSWORD, JOURNAL_TOKEN, JOURNAL_SECRET_TOKEN]


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def live_control(module, **arguments):
    return {"name": module, "provider": {"type": "python", "module": module, "arguments": arguments}}


def invoke(*args, env=None):
    return CliRunner().invoke(replay, list(args), env=env, catch_exceptions=False)


def clean_env(monkeypatch):
    for name in [*USER_ENV, "INFLUX_URL", "GRAFANA_URL", "PUSHGATEWAY_URL"]:
        monkeypatch.delenv(name, raising=False)


def journal_with_credentials_for_no_server(tmp_path):
    """The first case of the issue: live control sections that carry credentials but whose URLs
    the command overrides, a Grafana token without a URL, journal secrets filled in with ${...}."""
    def change(document):
        experiment = document["experiment"]
        experiment["secrets"] = {"grafana": {"grafana_token": JOURNAL_SECRET_TOKEN,
                                             "influxdb_password": JOURNAL_PASSWORD}}
        experiment["controls"] = [live_control("chaosreplay.controls.live", influx={
            "url": "http://127.0.0.1:1", "database": "j", "username": JOURNAL_USER, "password": "${influxdb_password}"},
            grafana=[{"token": JOURNAL_TOKEN}], pushgateway={"url": "http://127.0.0.1:1", "token": JOURNAL_TOKEN})]
    return write_journal(tmp_path, change, name="creds")


def test_the_journals_credentials_never_reach_the_servers_the_command_names(tmp_path, recorders, monkeypatch):
    clean_env(monkeypatch)
    first, second = recorders(), recorders()
    journal = journal_with_credentials_for_no_server(tmp_path)
    result = invoke(journal, "--influx-url", first.url, "--influx-database", "chaos", "--grafana-url", second.url,
                    "--pushgateway-url", first.url)
    assert result.exit_code == 0, result.stderr
    assert {request.method for request in first.requests} == {"POST", "PUT"}
    assert {request.method for request in second.requests} == {"GET", "POST"}
    for server in (first, second):
        for request in server.requests:
            assert request.authorization is None, request
        everything = server.everything()
        for credential in JOURNAL_CREDENTIALS:
            assert credential not in everything


def test_the_journals_secrets_do_not_fill_the_commands_config_credentials(tmp_path, recorders, monkeypatch):
    clean_env(monkeypatch)
    server = recorders()
    journal = journal_with_credentials_for_no_server(tmp_path)
    config = tmp_path / "targets.json"
    config.write_text('{"grafana": [{"url": "%s", "token": "${grafana_token}"}]}' % server.url, encoding="utf-8")
    result = invoke(journal, "--config", str(config))
    # Not filled from the journal: undefined for the command, refused before anything is sent.
    assert result.exit_code == 4, result.stdout
    assert "grafana[0].token: ${grafana_token} is not defined: give it with --var" in result.stderr
    assert server.requests == []
    assert JOURNAL_SECRET_TOKEN not in result.stdout + result.stderr


def journal_naming_its_own_servers(tmp_path, influx, grafana, gateway, with_credentials=False):
    """The second case: the journal's configuration and live controls name the journal's hosts."""
    host, influx_port = influx.url.rsplit(":", 1)

    def change(document):
        experiment = document["experiment"]
        experiment["configuration"]["influxdb"] = {"host": "127.0.0.1", "port": int(influx_port), "database": "j"}
        entry = {"url": grafana.url}
        if with_credentials:
            entry["api_token"] = "${grafana_token}"
            experiment["secrets"] = {"grafana": {"grafana_token": JOURNAL_SECRET_TOKEN},
                                     "influx": {"influxdb_username": JOURNAL_USER,
                                                "influxdb_password": JOURNAL_PASSWORD}}
        experiment["configuration"]["grafana"] = [entry]
        arguments = {"url": gateway.url, "job": "j"}
        if with_credentials:
            arguments["token"] = JOURNAL_TOKEN
        experiment["controls"] = [live_control("chaosreplay.controls.pushgateway", **arguments)]
    return write_journal(tmp_path, change, name="own-servers")


def test_the_commands_credentials_never_reach_the_servers_the_journal_names(tmp_path, recorders, monkeypatch):
    clean_env(monkeypatch)
    influx, grafana, gateway = recorders(), recorders(), recorders()
    journal = journal_naming_its_own_servers(tmp_path, influx, grafana, gateway)
    result = invoke(journal, env=USER_ENV)
    assert result.exit_code == 0, result.stderr
    for server, path in ((influx, "/write"), (grafana, "/api/annotations"), (gateway, "/metrics/job/j")):
        assert any(request.path.startswith(path) for request in server.requests), server.requests
        for request in server.requests:
            assert request.authorization is None, request
        everything = server.everything()
        for value in USER_ENV.values():
            assert value not in everything


def test_each_source_still_reaches_its_own_servers(tmp_path, recorders, monkeypatch):
    clean_env(monkeypatch)
    influx, grafana, gateway = recorders(), recorders(), recorders()
    journal = journal_naming_its_own_servers(tmp_path, influx, grafana, gateway, with_credentials=True)
    result = invoke(journal, env={"PUSHGATEWAY_TOKEN": "my-pushgateway-token"})
    assert result.exit_code == 0, result.stderr
    assert {request.authorization for request in influx.requests} == {basic(JOURNAL_USER, JOURNAL_PASSWORD)}
    assert {request.authorization for request in grafana.requests} == {f"Bearer {JOURNAL_SECRET_TOKEN}"}
    assert {request.authorization for request in gateway.requests} == {f"Bearer {JOURNAL_TOKEN}"}
    # And the command's own, to the command's own URLs.
    mine = recorders()
    result = invoke(journal, "--influx-url", mine.url, "--influx-database", "chaos", "--grafana-url", mine.url,
                    "--pushgateway-url", mine.url, env=USER_ENV)
    assert result.exit_code == 0, result.stderr
    by_method = {request.method: request.authorization for request in mine.requests}
    assert by_method["PUT"] == f"Bearer {USER_ENV['PUSHGATEWAY_TOKEN']}"
    assert by_method["GET"] == f"Bearer {USER_ENV['GRAFANA_TOKEN']}"
    influx_writes = [request for request in mine.requests if request.path == "/write"]
    assert {request.authorization for request in influx_writes} == {
        basic(USER_ENV["INFLUX_USERNAME"], USER_ENV["INFLUX_PASSWORD"])}
    for credential in JOURNAL_CREDENTIALS:
        assert credential not in mine.everything()


def test_a_live_control_sends_the_environments_credentials_only_to_the_environments_url(recorders, monkeypatch):
    clean_env(monkeypatch)
    for name, value in USER_ENV.items():
        monkeypatch.setenv(name, value)
    influx, grafana, gateway = recorders(), recorders(), recorders()
    run = read_journal(BASE_JOURNAL)
    deliveries = ship_live({"influx": {"url": influx.url, "database": "chaos"}, "grafana": [{"url": grafana.url}],
                            "pushgateway": {"url": gateway.url}}, run)
    assert all(record["undelivered"] == [] for record in deliveries.values()), deliveries
    for server in (influx, grafana, gateway):
        assert server.requests
        assert {request.authorization for request in server.requests} == {None}
        for value in USER_ENV.values():
            assert value not in server.everything()


def test_a_live_controls_credentials_never_go_to_the_environments_url(recorders, monkeypatch):
    clean_env(monkeypatch)
    mine, theirs = recorders(), recorders()
    monkeypatch.setenv("INFLUX_URL", mine.url)
    monkeypatch.setenv("PUSHGATEWAY_URL", mine.url)
    run = read_journal(BASE_JOURNAL)
    ship_live({"influx": {"url": theirs.url, "database": "chaos", "username": JOURNAL_USER,
                          "password": JOURNAL_PASSWORD},
               "pushgateway": {"url": theirs.url, "token": JOURNAL_TOKEN}}, run)
    assert mine.requests and not theirs.requests  # the environment's URL wins, as documented
    assert {request.authorization for request in mine.requests} == {None}
    for credential in JOURNAL_CREDENTIALS:
        assert credential not in mine.everything()


@pytest.mark.parametrize("module, section", [("chaosreplay.controls.influx", "influx"),
                                             ("chaosreplay.controls.grafana", "grafana"),
                                             ("chaosreplay.controls.pushgateway", "pushgateway")])
def test_a_single_sink_live_control_keeps_its_credentials_to_its_url(recorders, monkeypatch, module, section):
    from chaosreplay.controls.live import LiveShipping
    from chaosreplay.delivery import control_target_sections

    clean_env(monkeypatch)
    for name, value in USER_ENV.items():
        monkeypatch.setenv(name, value)
    own = recorders()
    arguments = {"url": own.url, "token": JOURNAL_TOKEN, "database": "chaos"}
    if section != "influx":
        del arguments["database"]
    else:
        arguments.update(version=2, org="o", bucket="b")
    live = LiveShipping(control_target_sections(module, arguments), {"retries": 0}, name=module)
    run = read_journal(BASE_JOURNAL)
    for event in run.events:
        live.offer(event)
    live.finish({})
    assert own.requests
    scheme = "Token" if section == "influx" else "Bearer"
    assert {request.authorization for request in own.requests} == {f"{scheme} {JOURNAL_TOKEN}"}
    for value in USER_ENV.values():
        assert value not in own.everything()
