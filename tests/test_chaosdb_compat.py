"""chaosdb 0.2.12 users switch by changing `"module"`: its own test cases and its journals, here.

chaosdb's tests (tests/test_grafana_control.py, test_influx_control.py,
test_influx_encoding.py in grubert65/chaostoolkit-storeevent) are re-expressed
against our modules with the same inputs and expectations; the other cases are
the behaviour chaosdb's code shows (FACTS §4): `configure_control` writes
`only_actions: 0`, `protocol`, `tags` and `annotation_api_endpoint` into
`configuration.grafana`, so every journal of a chaosdb.grafana run holds them.
"""
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.config import Settings
from chaosreplay.controls.live import LiveShipping
from chaosreplay.delivery import control_target_sections
from chaosreplay.errors import ConfigError
from chaosreplay.events import Event, Run, activity_id
from chaosreplay.sinks.grafana import grafana_configs
from chaosreplay.sinks.grafana import targets as grafana_targets
from chaosreplay.journal import read_journal
from chaosreplay.sinks.influx import influx_config
from chaosreplay.sinks.influx import targets as influx_targets
from chaosreplay.sinks.influx_line import chaosdb_line, iter_chaosdb_lines
from tests.conftest import JOURNALS
from tests.grafana_standin import ADMIN_USER, EDITOR_TOKEN, grafana_pair  # noqa: F401 (fixture)
from tests.influx_server import influx_db, influxd  # noqa: F401 (fixtures)

BASIC = os.path.join(JOURNALS, "generated-basic.json")
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=timezone.utc)

# What chaosdb.grafana's configure_control leaves in `configuration.grafana` (and chaoslib in the journal).
CHAOSDB_WRITTEN = {"host": "localhost", "port": 3000, "protocol": "http", "only_actions": 0, "tags": [],
                   "annotation_api_endpoint": "/api/annotations"}


def _journal_with(tmp_path, configuration, name="chaosdb.json"):
    with open(BASIC, encoding="utf-8") as handle:
        journal = json.load(handle)
    journal["experiment"]["configuration"] = configuration
    path = tmp_path / name
    path.write_text(json.dumps(journal), encoding="utf-8")
    return str(path)


def _invoke(*args):
    return CliRunner().invoke(replay, list(args), env={"INFLUX_URL": "", "GRAFANA_URL": "", "PUSHGATEWAY_URL": ""})


def test_a_journal_written_with_chaosdb_grafana_replays(tmp_path):
    path = _journal_with(tmp_path, {"grafana": [dict(CHAOSDB_WRITTEN)]})
    result = _invoke(path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-> grafana http://localhost:3000" in result.output


@pytest.mark.parametrize("written, only_actions", [(0, False), (1, True), (False, False), (True, True),
                                                   ("1", True), ("false", False)])
def test_only_actions_is_read_as_chaosdb_read_it(written, only_actions):
    """chaosdb compared `server["only_actions"] == 1`: 1 and true leave probes out, 0 and false keep them."""
    [config] = grafana_configs(Settings(env={}, configuration={"grafana": [{**CHAOSDB_WRITTEN,
                                                                           "only_actions": written}]}))
    assert config.only_actions is only_actions


def test_a_journal_target_the_command_does_not_send_to_never_fails_the_replay(tmp_path):
    broken = _journal_with(tmp_path, {"grafana": [{**CHAOSDB_WRITTEN, "port": "three thousand"}]})
    influx_only = _invoke(broken, "--dry-run", "--influx-url", "http://127.0.0.1:9", "--influx-database", "d")
    assert influx_only.exit_code == 0, influx_only.output
    assert "configuration.grafana[0].port" in influx_only.output and "not sent to" in influx_only.output
    assert "-> influx http://127.0.0.1:9 db=d" in influx_only.output
    assert "-> grafana" not in influx_only.output
    # Replayed to the journal's own targets, the same journal is a configuration error.
    assert _invoke(broken, "--dry-run").exit_code == 4


def test_chaosdb_grafana_servers_resolve_as_chaosdb_posted_to_them():
    """tests/test_grafana_control.py's configuration: an http server on port 80 and an https one
    on 443 with an API token, dashboardId 0 (all dashboards), tags ["P2"]."""
    configuration = {"grafana": [
        {"dashboardId": 0, "host": "localhost", "port": 80, "protocol": "http", "tags": ["P2"]},
        {"api_token": "token", "dashboardId": 0, "host": "localhost", "port": 443, "protocol": "https",
         "tags": ["P2"]}]}
    first, second = grafana_configs(Settings(env={}, configuration=configuration))
    assert (first.annotations_url, second.annotations_url) == ("http://localhost:80/api/annotations",
                                                               "https://localhost:443/api/annotations")
    assert (first.token, second.token.value) == (None, "token")
    assert first.placement == second.placement == {}  # dashboardId 0: every dashboard
    assert first.tags == second.tags == ("P2",)


def _action_run(func="bar", module="foo"):
    """The activity of chaosdb's test: an action "test action", Python provider `foo.bar`."""
    run_id = "chaosdb-test-run"
    action = Event(activity_id(run_id, "method", "test action", 0), run_id, "activity", "test action",
                   T0, T0 + timedelta(seconds=1), "succeeded", phase="method", activity_type="action",
                   fields={"provider": "python", "module": module, "func": func, "duration": 1.0})
    return Run(run_id=run_id, source="chaosdb-test", events=(action,))


def test_before_and_after_activity_control_reach_both_servers_with_chaosdb_tags(grafana_pair):
    """test_before_activity_control / test_after_activity_control: an action posts to each
    configured server (chaosdb: one point before, one after; here one region that carries both tags)."""
    first, second = grafana_pair
    servers = []
    for standin, credentials in ((first, {"username": ADMIN_USER[0], "password": ADMIN_USER[1]}),
                                 (second, {"api_token": EDITOR_TOKEN})):
        host, port = standin.url.rsplit("//", 1)[1].split(":")
        servers.append({"dashboardId": 0, "host": host, "port": int(port), "protocol": "http",
                        "tags": ["P2"], **credentials})
    for target in grafana_targets(Settings(env={}, configuration={"grafana": servers})):
        assert target.send(_action_run()).ok
    for standin in grafana_pair:
        [annotation] = standin.annotations.values()
        assert {"P2", "chaostoolkit", "activity", "before", "after", "action", "test action",
                "bar"} <= set(annotation.tags)
        assert standin.violations == []


def test_only_actions_1_in_a_live_control_leaves_probes_out_and_keeps_the_control():
    """It used to be a configuration error, which switched the whole live Grafana control off."""
    shipping = LiveShipping({}, {}, configuration={"grafana": [{**CHAOSDB_WRITTEN, "only_actions": 1}]},
                            name="chaosreplay.controls.grafana")
    try:
        [target] = shipping.targets
        assert target.config.only_actions is True
    finally:
        shipping.engine.close()


@pytest.mark.parametrize("module", ["chaosreplay.controls.influx", "chaosdb.influx"])
def test_declared_the_chaosdb_way_without_configuration_influxdb_means_chaosdbs_defaults(module):
    sections = control_target_sections(module, {})
    config = influx_config(Settings(env={}, file=sections, configuration={}))
    assert (config.url, config.write_url, config.database) == ("http://localhost:8086", "http://localhost:8086/write",
                                                               "gatlingdb")
    own = influx_config(Settings(env={}, file=sections, configuration={"influxdb": {
        "host": "influx.example", "port": 8087, "http_endpoint": "/write", "database": "chaos"}}))
    assert (own.url, own.database) == ("http://influx.example:8087", "chaos")


def test_influx_control_with_its_configuration_under_another_key():
    """tests/test_influx_control.py configured `"influx": {... "database": "chaostoolkit"}`: chaosdb reads
    only `influxdb`, so those writes went to its defaults; so do ours."""
    configuration = {"influx": {"host": "localhost", "port": 8086, "http_endpoint": "/write",
                                "database": "chaostoolkit"}}
    config = influx_config(Settings(env={}, file=control_target_sections("chaosreplay.controls.influx", {}),
                                    configuration=configuration))
    assert (config.url, config.database) == ("http://localhost:8086", "gatlingdb")


def test_a_journal_of_a_chaosdb_influx_run_replays_to_chaosdbs_default_server(tmp_path):
    with open(BASIC, encoding="utf-8") as handle:
        journal = json.load(handle)
    journal["experiment"]["controls"] = [{"name": "tracing", "provider": {"type": "python",
                                                                          "module": "chaosdb.influx"}}]
    path = tmp_path / "chaosdb-influx.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    result = _invoke(str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-> influx http://localhost:8086 db=gatlingdb" in result.output


def test_our_generic_live_control_without_sections_has_no_default_server():
    """Only a control declared as chaosdb's was gets chaosdb's defaults."""
    with pytest.raises(ConfigError, match="no target configured"):
        LiveShipping({}, {}, configuration={}, name="chaosreplay.controls.live")


# -- the chaosdb InfluxDB layout ------------------------------------------------------------------

def _chaosdb_layout(influx_db, **options):
    [target] = influx_targets(Settings(env={}, file={"influx": {
        "url": influx_db.url, "database": influx_db.name, "layout": "chaosdb", **options}}))
    return target


def test_the_chaosdb_layout_line_is_chaosdbs_encoding():
    """tests/test_influx_encoding.py: `measurement,tag1=v1,tag2=v2 field1="value1",...`: tags sorted
    and bare, string fields quoted; we add the time chaosdb left to the server."""
    [before, after] = iter_chaosdb_lines(_action_run(), measurement="measurement")
    start_ns = int(T0.timestamp()) * 10 ** 9
    assert before.line.startswith('measurement,experiment=exp1,scope=before type="python",module="foo",func="bar" ')
    assert after.line.startswith('measurement,experiment=exp1,scope=after type="python",module="foo",func="bar" ')
    assert 0 <= int(before.line.rsplit(" ", 1)[1]) - start_ns < 1000
    assert 0 <= int(after.line.rsplit(" ", 1)[1]) - (start_ns + 10 ** 9) < 1000


@pytest.mark.servers
def test_before_and_after_activity_control_store_chaosdbs_points(influx_db):
    """tests/test_influx_control.py: an action `foo.bar` before and after; chaosdb asserted the
    calls returned, we read the points back with an independent client."""
    run = _action_run()
    delivery = _chaosdb_layout(influx_db).send(run)
    assert delivery.ok and delivery.delivered == (run.events[0].id,)
    points = influx_db.points("chaos_toolkit.actions")
    assert [(p["scope"], p["experiment"], p["type"], p["module"], p["func"]) for p in points] == [
        ("before", "exp1", "python", "foo", "bar"), ("after", "exp1", "python", "foo", "bar")]
    assert [p["time"] // 10 ** 6 for p in points] == [int(T0.timestamp() * 1000), int(T0.timestamp() * 1000) + 1000]
    # Replayed again: the same two points, as with our own layout.
    assert _chaosdb_layout(influx_db).send(run).ok
    assert len(influx_db.points("chaos_toolkit.actions")) == 2


@pytest.mark.servers
def test_the_chaosdb_layout_writes_only_what_chaosdb_recorded(influx_db):
    """chaosdb wrote nothing for probes and for other providers (process, http): neither do we,
    and those events still count as delivered."""
    # Four Python actions (one a rollback), one Python probe.
    run = read_journal(os.path.join(JOURNALS, "marzouk-1.8.1-completed-rollbacks.json"))
    delivery = _chaosdb_layout(influx_db).send(run)
    assert delivery.ok and set(delivery.delivered) == {event.id for event in run.events}
    python_actions = [e for e in run.events if e.activity_type == "action" and e.fields.get("provider") == "python"]
    assert len(python_actions) == 4
    points = influx_db.points("chaos_toolkit.actions")
    assert sorted((p["func"], p["scope"]) for p in points) == sorted(
        (e.fields["func"], scope) for e in python_actions for scope in ("before", "after"))
    assert influx_db.points() == []  # and nothing in our measurement


# tests/test_influx_encoding.py, case by case.

def test_one_field_payload():
    assert chaosdb_line("measurement", fields={"field1": "value1"}) == 'measurement field1="value1"'


def test_two_fields_payload():
    assert chaosdb_line("measurement", fields={"field1": "value1", "field2": 123}) == \
        'measurement field1="value1",field2=123'


def test_fields_and_tags_payload():
    assert chaosdb_line("measurement", fields={"field1": "value1", "field2": 123},
                        tags={"tag1": "v1", "tag2": "v2"}) == 'measurement,tag1=v1,tag2=v2 field1="value1",field2=123'
