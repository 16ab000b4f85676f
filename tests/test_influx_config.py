"""Where the InfluxDB target comes from: flags, environment, --config, chaosdb's journal keys, secrets."""
import json
import os

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.config import Settings
from chaosreplay.errors import EXIT_INVALID_CONFIG, ConfigError
from chaosreplay.sinks.influx import influx_config, targets
from tests.conftest import JOURNALS

BASIC = os.path.join(JOURNALS, "generated-basic.json")


def config(cli=None, env=None, file=None, configuration=None, secrets=None):
    return influx_config(Settings(cli=cli, env=env or {}, file=file, configuration=configuration,
                                  secrets=secrets))


def test_nothing_configured_means_no_target():
    assert targets(Settings(cli={"influx_url": None}, env={})) == []


def test_chaosdb_keys_with_chaosdb_defaults():
    default = config(configuration={"influxdb": {}})
    assert (default.url, default.database, default.version) == ("http://localhost:8086", "gatlingdb", 1)
    custom = config(configuration={"influxdb": {"host": "influx.example", "port": 9999,
                                                "http_endpoint": "/proxy/write", "database": "chaos"}})
    assert custom.url == "http://influx.example:9999/proxy" and custom.database == "chaos"
    assert custom.write_url == "http://influx.example:9999/proxy/write"


def test_chaosdb_endpoint_that_is_not_a_write_path_is_refused():
    with pytest.raises(ConfigError, match="configuration.influxdb.http_endpoint"):
        config(configuration={"influxdb": {"http_endpoint": "/query"}})


def test_flags_beat_environment_beat_file_beat_journal():
    journal = {"influxdb": {"database": "from_journal"}}
    file = {"influx": {"url": "http://file:8086", "database": "from_file", "batch_size": 10}}
    env = {"INFLUX_URL": "http://env:8086", "INFLUX_DATABASE": "from_env"}
    cli = {"influx_database": "from_cli"}
    resolved = config(cli=cli, env=env, file=file, configuration=journal)
    assert (resolved.url, resolved.database, resolved.batch_size) == ("http://env:8086", "from_cli", 10)
    assert config(file=file, configuration=journal).database == "from_file"
    assert config(cli={"influx_url": "http://cli:1"}, configuration=journal).database == "from_journal"


def test_environment_text_is_parsed_and_bad_values_name_their_key():
    resolved = config(env={"INFLUX_URL": "https://h:8086", "INFLUX_DATABASE": "d", "INFLUX_GZIP": "yes",
                           "INFLUX_BATCH_SIZE": "250", "INFLUX_TIMEOUT": "2.5", "INFLUX_VERIFY_TLS": "false"})
    assert (resolved.gzip, resolved.batch_size, resolved.timeout, resolved.verify) == (True, 250, 2.5, False)
    for key, value in (("INFLUX_BATCH_SIZE", "many"), ("INFLUX_BATCH_SIZE", "0"), ("INFLUX_GZIP", "maybe"),
                       ("INFLUX_TIMEOUT", "0"), ("INFLUX_VERSION", "3")):
        name = key[len("INFLUX_"):].lower()
        with pytest.raises(ConfigError, match=f"influx.{name}"):
            config(env={"INFLUX_URL": "http://h:8086", "INFLUX_DATABASE": "d", key: value})


def test_ca_bundle_is_what_requests_verifies_against():
    resolved = config(cli={"influx_url": "https://h", "influx_database": "d", "influx_ca_bundle": "/etc/ca.pem"})
    assert resolved.verify == "/etc/ca.pem"


def test_credentials_come_from_url_env_or_secrets_and_never_show():
    from_url = config(cli={"influx_url": "http://alice:pa55@h:8086", "influx_database": "d"})
    assert from_url.username == "alice" and from_url.password.value == "pa55"
    assert "pa55" not in from_url.label and "pa55" not in repr(from_url)
    secrets = {"influx": {"influxdb_username": "bob", "influxdb_password": {"type": "env", "key": "VAULT_PW"}}}
    from_secrets = config(configuration={"influxdb": {"host": "h", "database": "d"}},
                          env={"VAULT_PW": "hunter2"}, secrets=secrets)
    assert from_secrets.username == "bob" and from_secrets.password.value == "hunter2"
    assert "hunter2" not in repr(from_secrets)


@pytest.mark.parametrize("where", [{"cli": {"influx_url": "http://elsewhere:8086"}},
                                   {"env": {"INFLUX_URL": "http://elsewhere:8086"}},
                                   {"file": {"influx": {"url": "http://elsewhere:8086"}}}])
def test_the_journals_secrets_go_only_to_the_journals_own_server(where):
    journal = {"configuration": {"influxdb": {"host": "journal-influx", "database": "d"}},
               "secrets": {"influx": {"influxdb_username": "bob", "influxdb_password": "hunter2",
                                      "influxdb_token": "t0ken"}}}
    assert config(**journal).username == "bob"
    elsewhere = config(**journal, **where)
    assert elsewhere.url == "http://elsewhere:8086"
    assert (elsewhere.username, elsewhere.password, elsewhere.token) == (None, None, None)


@pytest.mark.parametrize("key, env", [("influx.password", {"INFLUX_PASSWORD": "pa55\n"}),
                                      ("influx.username", {"INFLUX_USERNAME": "ops\r\nX-Injected: 1"})])
def test_a_credential_with_a_newline_is_refused_naming_its_key_only(key, env):
    with pytest.raises(ConfigError) as refused:
        config(cli={"influx_url": "http://h:8086", "influx_database": "d"}, env=env)
    assert key in str(refused.value) and "pa55" not in str(refused.value) and "Injected" not in str(refused.value)


def test_version_2_is_chosen_by_bucket_and_token_and_needs_an_org():
    resolved = config(cli={"influx_url": "http://h:8086", "influx_bucket": "b", "influx_org": "o"},
                      env={"INFLUX_TOKEN": "t"})
    assert resolved.version == 2 and resolved.write_url == "http://h:8086/api/v2/write"
    with pytest.raises(ConfigError, match="influx.org"):
        config(cli={"influx_url": "http://h:8086", "influx_bucket": "b"}, env={"INFLUX_TOKEN": "t"})
    with pytest.raises(ConfigError, match="influx.create_database"):
        config(cli={"influx_url": "http://h", "influx_bucket": "b", "influx_org": "o",
                    "influx_create_database": True}, env={"INFLUX_TOKEN": "t"})


def test_bad_url_and_bad_measurement_are_config_errors():
    with pytest.raises(ConfigError, match="influx.url"):
        config(cli={"influx_url": "localhost:8086", "influx_database": "d"})
    with pytest.raises(ConfigError, match="influx.measurement: must not start with '#'"):
        config(cli={"influx_url": "http://h", "influx_database": "d", "influx_measurement": "#x"})


def test_cli_flag_without_url_is_refused_before_sending():
    result = CliRunner().invoke(replay, [BASIC, "--influx-database", "chaos"], env={"INFLUX_URL": ""})
    assert result.exit_code == EXIT_INVALID_CONFIG
    assert "influx.url: --influx-database given but no URL" in result.output


def test_dry_run_shows_the_requests_with_the_password_masked():
    result = CliRunner().invoke(
        replay, [BASIC, "--dry-run", "--influx-url", "http://127.0.0.1:9", "--influx-database", "chaos",
                 "--influx-username", "ops", "--influx-create-database"],
        env={"INFLUX_PASSWORD": "do-not-print-me"},
    )
    assert result.exit_code == 0, result.output
    assert "do-not-print-me" not in result.output
    assert "Authorization: Basic ***" in result.output
    assert "POST http://127.0.0.1:9/write?db=chaos&precision=ns" in result.output
    assert '{"q": "CREATE DATABASE \\"chaos\\""}' in result.output


def test_a_chaosdb_journal_replays_to_its_own_influxdb(tmp_path):
    with open(BASIC, encoding="utf-8") as handle:
        journal = json.load(handle)
    journal["experiment"]["configuration"] = {"influxdb": {"host": "127.0.0.1", "port": 9, "database": "old"}}
    path = tmp_path / "chaosdb.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    result = CliRunner().invoke(replay, [str(path), "--dry-run"], env={"INFLUX_URL": ""})
    assert result.exit_code == 0, result.output
    assert "influx http://127.0.0.1:9 db=old" in result.output
