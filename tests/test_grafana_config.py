"""Grafana targets from flags, environment, --config and chaosdb's `configuration.grafana`."""
import pytest

from chaosreplay.config import Secret, Settings
from chaosreplay.errors import ConfigError
from chaosreplay.sinks.grafana import grafana_configs

CHAOSDB_SERVERS = [
    {"host": "grafana-a.example", "port": 3000, "protocol": "https", "api_token": "chaosdb-token-a",
     "cert_file": "/etc/ssl/grafana-ca.pem", "dashboardId": 12, "only_actions": True, "tags": ["chaos", "prod"],
     "annotation_api_endpoint": "/grafana/api/annotations"},
    {"host": "grafana-b.example", "port": 3001, "username": "bob", "password": "bob-pa55", "dashboardId": 0},
]


def configs(cli=None, env=None, file=None, configuration=None, secrets=None):
    return grafana_configs(Settings(cli=cli or {}, env=env or {}, file=file or {},
                                    configuration=configuration, secrets=secrets))


def test_chaosdb_list_is_accepted_as_it_is():
    first, second = configs(configuration={"grafana": CHAOSDB_SERVERS})
    assert first.url == "https://grafana-a.example:3000"
    assert first.annotations_url == "https://grafana-a.example:3000/grafana/api/annotations"
    assert first.token == Secret("chaosdb-token-a")
    assert first.verify == "/etc/ssl/grafana-ca.pem"
    assert (first.dashboard_id, first.only_actions, first.tags) == (12, True, ("chaos", "prod"))
    assert second.url == "http://grafana-b.example:3001"
    assert (second.username, second.password) == ("bob", Secret("bob-pa55"))
    # chaosdb's dashboardId 0 meant "every dashboard"; chaosdb did not verify TLS, we do.
    assert second.dashboard_id is None and second.verify is True
    assert [c.label for c in (first, second)] == ["grafana https://grafana-a.example:3000 dashboard-id=12",
                                                 "grafana http://grafana-b.example:3001"]


def test_flags_name_the_servers_and_apply_to_each():
    first, second = configs(cli={"grafana_url": ("http://a:3000/", "http://b:3000"), "grafana_token": "flag-token",
                                 "grafana_dashboard_uid": "dash", "grafana_panel_id": 4, "grafana_org_id": 2},
                            configuration={"grafana": CHAOSDB_SERVERS})
    assert [first.url, second.url] == ["http://a:3000", "http://b:3000"]
    for config in (first, second):
        assert config.token == Secret("flag-token")
        assert config.placement == {"dashboardUID": "dash", "panelId": 4}
        assert config.org_id == 2


def test_environment_names_one_server_and_fills_in_entries():
    [from_env] = configs(env={"GRAFANA_URL": "http://env:3000", "GRAFANA_TOKEN": "env-token",
                              "GRAFANA_VERIFY_TLS": "false"})
    assert from_env.url == "http://env:3000" and from_env.token == Secret("env-token")
    assert from_env.verify is False
    own, missing = configs(env={"GRAFANA_TOKEN": "env-token"},
                           file={"grafana": [{"url": "http://a:3000", "token": "own-token"},
                                             {"url": "http://b:3000"}]})
    assert own.token == Secret("own-token") and missing.token == Secret("env-token")


def test_a_config_entry_without_url_sets_every_server_as_live_controls_do():
    # chaosreplay.controls.live passes {"retries": 0, "timeout": 2.0} when an experiment only has chaosdb's list.
    first, second = configs(file={"grafana": {"retries": 0, "timeout": 2.0}}, configuration={"grafana": CHAOSDB_SERVERS})
    assert (first.retries, first.timeout, second.retries, second.timeout) == (0, 2.0, 0, 2.0)
    assert first.token == Secret("chaosdb-token-a")


def test_journal_secrets_fill_credentials_of_journal_servers():
    [config] = configs(configuration={"grafana": [{"host": "g", "port": 3000}]},
                       secrets={"grafana": {"grafana_token": "secret-token"}})
    assert config.token == Secret("secret-token")


def test_tls_client_certificate_and_bundle():
    [config] = configs(file={"grafana": [{"url": "https://g", "ca_bundle": "/ca.pem", "client_cert": "/c.pem",
                                          "client_key": "/k.pem"}]})
    assert config.verify == "/ca.pem" and config.client_cert == ("/c.pem", "/k.pem")


def test_credentials_in_the_url_become_basic_auth_and_leave_the_url():
    [config] = configs(cli={"grafana_url": ("http://admin:pa55word@g:3000",)})
    assert config.url == "http://g:3000" and config.username == "admin" and config.password == Secret("pa55word")
    assert "pa55word" not in repr(config) and "pa55word" not in config.label


def test_nothing_configured_is_no_target():
    assert configs(env={"GRAFANA_TOKEN": "t"}) == []


@pytest.mark.parametrize("settings, key, words", [
    ({"cli": {"grafana_token": "tok-123"}}, "grafana.url", "--grafana-token given but no server"),
    ({"cli": {"grafana_url": ("ftp://user:pw-secret@g",)}}, "--grafana-url #1.url", "http(s)"),
    ({"file": {"grafana": [{"url": "http://g", "dashbord_uid": "x"}]}}, "grafana[0].dashbord_uid", "unknown key"),
    ({"file": {"grafana": [{"url": "http://g", "tags": "a,b"}, {"url": "http://h", "tags": [1]}]}},
     "grafana[1].tags", "list of strings"),
    ({"file": {"grafana": "http://g"}}, "grafana", "list of servers"),
    ({"configuration": {"grafana": [{"host": "g", "protocol": "ftp"}]}}, "configuration.grafana[0].protocol",
     "http or https"),
    ({"file": {"grafana": [{"url": "http://g", "timeout": 0}]}}, "grafana[0].timeout", "more than 0"),
])
def test_bad_configuration_names_the_key_and_hides_secrets(settings, key, words):
    with pytest.raises(ConfigError) as raised:
        configs(**settings)
    assert raised.value.key == key and words in str(raised.value)
    assert "pw-secret" not in str(raised.value) and "tok-123" not in str(raised.value)
