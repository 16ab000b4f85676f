"""`{"type": "env"}` references in a journal are not a way out of the machine.

They are resolved only where a credential is expected (token, password, user
name; the journal's secrets) and then sent only to that section's server.
Anywhere else (a database name, a URL, a tag, a grouping key) the replay or
the live control refuses, exit code 4, naming the key and never the value,
and sends nothing.
"""
import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.controls.live import LiveShipping
from chaosreplay.errors import ConfigError
from tests.crafted_journals import write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)

SECRET = "AKIA-not-for-you-0123456789"
ENV = {"AWS_SECRET_ACCESS_KEY": SECRET, "MY_GRAFANA_TOKEN": "glsa_from_my_env"}
REFERENCE = {"type": "env", "key": "AWS_SECRET_ACCESS_KEY"}


def invoke(*args):
    return CliRunner().invoke(replay, list(args), env=ENV, catch_exceptions=False)


def influx_port(server):
    return int(server.url.rsplit(":", 1)[1])


def placements(server):
    """Where a crafted journal puts a reference to the environment, and the key the error names."""
    port = influx_port(server)
    return [
        ("database", lambda e: e["configuration"].update(
            influxdb={"host": "127.0.0.1", "port": port, "database": dict(REFERENCE)}), "influx.database"),
        ("database by ${}", lambda e: (e["configuration"].update(
            influxdb={"host": "127.0.0.1", "port": port, "database": "db_${aws}"}),
            e.update(secrets={"aws": {"aws": dict(REFERENCE)}})), "influx.database"),
        ("influx host", lambda e: e["configuration"].update(
            influxdb={"host": dict(REFERENCE), "port": port, "database": "d"}), "configuration.influxdb.host"),
        ("grafana tag", lambda e: e["configuration"].update(
            grafana=[{"url": server.url, "tags": ["chaos", dict(REFERENCE)]}]), "configuration.grafana[0].tags[1]"),
        ("grafana tag by ${}", lambda e: e["configuration"].update(
            grafana=[{"url": server.url, "tags": ["${aws}"]}], aws=dict(REFERENCE)),
         "configuration.grafana[0].tags[0]"),
        ("grafana url", lambda e: e["configuration"].update(
            grafana=[{"url": dict(REFERENCE)}]), None),
        ("grafana dashboard", lambda e: e["configuration"].update(
            grafana=[{"url": server.url, "dashboardUID": dict(REFERENCE)}]), "configuration.grafana[0].dashboard_uid"),
        ("pushgateway grouping key", lambda e: e.update(controls=[{"name": "gw", "provider": {
            "type": "python", "module": "chaosreplay.controls.pushgateway",
            "arguments": {"url": server.url, "grouping_key": {"instance": dict(REFERENCE)}}}}]),
         "pushgateway.grouping_key.instance"),
        ("pushgateway job", lambda e: e.update(controls=[{"name": "gw", "provider": {
            "type": "python", "module": "chaosreplay.controls.pushgateway",
            "arguments": {"url": server.url, "job": dict(REFERENCE)}}}]), "pushgateway.job"),
        ("live influx url", lambda e: e.update(controls=[{"name": "live", "provider": {
            "type": "python", "module": "chaosreplay.controls.live",
            "arguments": {"influx": {"url": dict(REFERENCE), "database": "d"}}}}]), "influx.url"),
    ]


@pytest.mark.parametrize("index", range(10))
def test_an_env_reference_outside_a_credential_is_refused_by_key_and_nothing_is_sent(tmp_path, recorders, index):
    server = recorders()
    name, change, key = placements(server)[index]
    journal = write_journal(tmp_path, lambda document: change(document["experiment"]))
    for extra in ([], ["--dry-run"]):
        result = invoke(journal, *extra)
        assert result.exit_code == 4, (name, result.stdout, result.stderr)
        assert "environment reference ({\"type\": \"env\", \"key\": \"AWS_SECRET_ACCESS_KEY\"})" in result.stderr, name
        if key:
            assert f"configuration {key}: " in result.stderr, (name, result.stderr)
        assert SECRET not in result.stdout + result.stderr
    assert server.requests == []


def test_an_env_reference_in_a_credential_goes_only_to_its_sections_server(tmp_path, recorders):
    own, elsewhere = recorders(), recorders()

    def change(document):
        document["experiment"]["configuration"]["grafana"] = [
            {"url": own.url, "api_token": {"type": "env", "key": "MY_GRAFANA_TOKEN"}}]
    journal = write_journal(tmp_path, change)
    result = invoke(journal)
    assert result.exit_code == 0, result.stderr
    assert {request.authorization for request in own.requests} == {"Bearer glsa_from_my_env"}
    # The same journal replayed to a server the command names: the reference stays home.
    result = invoke(journal, "--grafana-url", elsewhere.url)
    assert result.exit_code == 0, result.stderr
    assert elsewhere.requests
    assert {request.authorization for request in elsewhere.requests} == {None}
    assert "glsa_from_my_env" not in elsewhere.everything()


def test_a_live_control_refuses_an_env_reference_outside_a_credential(recorders, monkeypatch):
    server = recorders()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    # chaosreplay.controls.influx declared without arguments: chaosdb's configuration.influxdb.
    configuration = {"influxdb": {"host": "127.0.0.1", "port": influx_port(server), "database": dict(REFERENCE)}}
    with pytest.raises(ConfigError) as refused:
        LiveShipping({"influx": {}}, {}, configuration=configuration, name="chaosreplay.controls.influx")
    assert "influx.database" in str(refused.value) and "environment reference" in str(refused.value)
    assert SECRET not in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        LiveShipping({"grafana": [{"url": server.url, "tags": [dict(REFERENCE)]}]}, {}, name="test")
    assert SECRET not in str(refused.value) and "tags[0]" in str(refused.value)
    assert server.requests == []
