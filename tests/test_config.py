"""Settings: precedence of sources, chaostoolkit references, masking."""
import pytest

from chaosreplay.config import EnvReference, Secret, Settings, Unresolved, as_credential, load_config_file, mask_url
from chaosreplay.errors import ConfigError
from chaosreplay.variables import load_variables


def settings(**sources):
    sources.setdefault("env", {})
    return Settings(**sources)


def test_precedence_cli_env_file_journal():
    layers = dict(
        cli={"influx_url": "http://cli"},
        env={"INFLUX_URL": "http://env"},
        file={"influx": {"url": "http://file"}},
        configuration={"influxdb": {"url": "http://journal"}},
    )
    pick = dict(cli="influx_url", env="INFLUX_URL", file="influx.url", journal="influxdb.url")
    assert settings(**layers).pick(**pick) == "http://cli"
    del layers["cli"]
    assert settings(**layers).pick(**pick) == "http://env"
    del layers["env"]
    assert settings(**layers).pick(**pick) == "http://file"
    del layers["file"]
    assert settings(**layers).pick(**pick) == "http://journal"
    del layers["configuration"]
    assert settings(**layers).pick(**pick, default="fallback") == "fallback"


def test_empty_cli_values_and_empty_env_do_not_shadow_lower_layers():
    resolved = settings(cli={"tags": ()}, env={"X": ""}, file={"a": {"b": 1}})
    assert resolved.pick(cli="tags", env="X", file="a.b") == 1


def test_env_references_and_variables_are_resolved_credentials_only():
    resolved = settings(
        env={"INFLUX_HOST": "db.internal"},
        configuration={
            "influxdb": {"host": {"type": "env", "key": "INFLUX_HOST"},
                         "port": {"type": "env", "key": "MISSING", "default": 8087},
                         "database": "${db}", "http_endpoint": "/${prefix}/write"},
        },
        secrets={"influx": {"password": {"type": "env", "key": "NOPE"}}},
        variables={"db": "chaos", "prefix": "v1"},
    )
    # Only a credential takes the environment's value; the host keeps a reference refused when used.
    assert resolved.configuration["influxdb"] == {
        "host": EnvReference("INFLUX_HOST", "db.internal"), "port": 8087, "database": "chaos",
        "http_endpoint": "/v1/write"}
    # An unset variable without default is an error only where a target uses it, naming it.
    unset = resolved.secret("password")
    assert unset == Unresolved("environment variable NOPE is not set", "secrets.influx.password")
    with pytest.raises(ConfigError, match="influx.password: environment variable NOPE is not set"):
        as_credential(unset, "influx.password")


def test_secret_lookup_across_scopes():
    resolved = settings(secrets={"grafana": {"api_token": "t0k"}, "other": "not a scope"})
    assert resolved.secret("api_token") == "t0k"


def test_secret_never_shows_its_value():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret} {[secret]} {({'k': secret})}"
    assert secret.value == "hunter2"


@pytest.mark.parametrize("url, masked", [
    ("http://user:pw@host:8086/write?db=x", "http://host:8086/write?db=x"),
    ("https://token@grafana.example/api", "https://grafana.example/api"),
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ("http://user:s3cret@host:99999/x", "http://host:99999/x"),
    ("http://user:s3cret@host:port/x", "http://host:port/x"),
    ("http://user:s3cret@[::1/x", "http://[::1/x"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize("value", ["abc\n", "ab\rc", "a\tb", "ab\x00c", "ab\u2028c", " abc", "abc ", "tok€n"])
def test_a_credential_that_cannot_go_into_a_header_is_refused_by_its_key_only(value):
    with pytest.raises(ConfigError) as refused:
        as_credential(value, "grafana.token")
    assert "grafana.token" in str(refused.value)
    assert value.strip() not in str(refused.value)


@pytest.mark.parametrize("value", ["glsa_abc-123", "pass word", "pässwörd", 1234])
def test_usable_credentials_pass_unchanged(value):
    assert as_credential(value, "influx.password") == str(value)


def test_config_file_errors(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(str(missing))
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_config_file(str(listed))
    assert load_config_file(None) == {}


def test_variables_from_files_and_flags(tmp_path):
    json_file = tmp_path / "v.json"
    json_file.write_text('{"configuration": {"db": "a"}, "secrets": {"token": "s"}}')
    env_file = tmp_path / "v.env"
    env_file.write_text("# comment\nINFLUX_PASSWORD=pw\n")
    values, env = load_variables(["db=b", "port:int=8086"], [str(json_file), str(env_file)])
    assert values == {"db": "b", "token": "s", "port": 8086}
    assert env == {"INFLUX_PASSWORD": "pw"}


def test_bad_env_file_line_is_named(tmp_path):
    env_file = tmp_path / "v.env"
    env_file.write_text("OK=1\nbroken line\n")
    with pytest.raises(ConfigError) as caught:
        load_variables([], [str(env_file)])
    assert str(caught.value) == f"configuration --var-file {env_file}: line 2: expected NAME=VALUE"


def test_dollar_references_resolve_from_the_journal_configuration_and_secrets_in_the_journal():
    resolved = settings(
        configuration={"db": "chaos", "grafana": [{"host": "g", "api_token": "${grafana_token}"}]},
        secrets={"grafana": {"grafana_token": "s3cr3t"}},
        file={"influx": {"database": "${db}"}},
    )
    assert resolved.configuration["grafana"][0]["api_token"] == "s3cr3t"
    assert resolved.file["influx"]["database"] == "chaos"
    overridden = settings(configuration={"db": "chaos"}, file={"influx": {"database": "${db}"}},
                          variables={"db": "from-var"})
    assert overridden.file["influx"]["database"] == "from-var"
