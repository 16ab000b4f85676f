"""`--grafana-dashboard influx|prometheus` against the contract-checking Grafana stand-in.

The stand-in takes `POST /api/dashboards/db` only as Grafana's spec describes it
(fixtures/contracts/grafana-dashboards-openapi.json) and only a dashboard that
Grafana's dashboard schema accepts.
"""
import json
import os

import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.dashboards import dashboard, dashboards_db_body
from chaosreplay.errors import EXIT_INVALID_CONFIG, EXIT_UNDELIVERED
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, VIEWER_TOKEN, grafana, grafana_pair  # noqa: F401 (fixtures)
from tests.influx_server import influxd  # noqa: F401 (fixture)

BASIC = os.path.join(JOURNALS, "generated-basic.json")
DEVIATED = os.path.join(JOURNALS, "generated-deviated.json")
CLEAN_ENV = {name: None for name in os.environ if name.startswith(("GRAFANA_", "INFLUX_"))}


def invoke(*args, env=None):
    return CliRunner().invoke(replay, [*args, "--grafana-retries", "0"], env={**CLEAN_ENV, **(env or {})},
                              catch_exceptions=False)


def saves(standin):
    return [request for request in standin.requests if request.path == "/api/dashboards/db"]


def test_dashboard_is_saved_once_per_server_and_overwritten_by_uid(grafana_pair, influxd):  # noqa: F811
    first, second = grafana_pair
    # The influx dashboard reads the measurement the events are written to.
    args = [BASIC, DEVIATED, "--grafana-url", first.url, "--grafana-url", second.url,
            "--grafana-dashboard", "influx", "--influx-url", influxd.url, "--influx-database", "provisioning",
            "--influx-create-database", "--influx-measurement", "chaos_runs"]
    done = invoke(*args, env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert done.exit_code == 0, done.output
    for standin in (first, second):
        assert standin.violations == []
        assert len(saves(standin)) == 1  # two journals, one dashboard per server
        (saved,) = standin.saved_dashboards.values()
        assert saved["uid"] == "chaostoolkit-influx" and saved["version"] == 1
        assert all('FROM "chaos_runs"' in target["query"]
                   for panel in saved["dashboard"]["panels"] for target in panel["targets"])
        assert saves(standin)[0].headers["Authorization"] == f"Bearer {EDITOR_TOKEN}"
        assert f"-> grafana {standin.url}: dashboard chaostoolkit-influx saved (version 1, " \
               "/d/chaostoolkit-influx/chaos-toolkit-runs-influxdb)" in done.output
        assert standin.with_tag("chaostoolkit")  # the annotations went too

    again = invoke(*args, env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert again.exit_code == 0, again.output
    (saved,) = first.saved_dashboards.values()
    assert saved["version"] == 2
    assert EDITOR_TOKEN not in done.output + again.output


def test_a_viewer_cannot_save_it_and_the_run_says_so(grafana):
    done = invoke(BASIC, "--grafana-url", grafana.url, "--grafana-dashboard", "prometheus",
                  env={"GRAFANA_TOKEN": VIEWER_TOKEN})
    assert done.exit_code == EXIT_UNDELIVERED
    assert (f"-> grafana {grafana.url}: dashboard chaostoolkit-prometheus NOT saved: save dashboard: HTTP 403"
            in done.output)
    assert "dashboards:create" in done.output
    assert grafana.saved_dashboards == {}


def test_dry_run_shows_the_request_with_credentials_masked_and_saves_nothing(grafana):
    done = invoke(BASIC, "--grafana-url", grafana.url, "--grafana-dashboard", "prometheus", "--dry-run",
                  env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert done.exit_code == 0, done.output
    assert f"POST {grafana.url}/api/dashboards/db" in done.output
    assert "Authorization: Bearer ***" in done.output
    assert '"overwrite": true' in done.output and '"uid": "chaostoolkit-prometheus"' in done.output
    assert grafana.requests == [] and EDITOR_TOKEN not in done.output


def test_without_a_grafana_server_the_flag_is_a_configuration_error():
    done = invoke(BASIC, "--grafana-dashboard", "influx")
    assert done.exit_code == EXIT_INVALID_CONFIG
    assert "configuration grafana.url: --grafana-dashboard" in done.stderr
    assert "given but no server" in done.stderr


def test_the_stand_in_holds_saves_to_grafanas_contract(grafana):
    headers = {"Authorization": f"Bearer {EDITOR_TOKEN}", "Content-Type": "application/json"}
    url = f"{grafana.url}/api/dashboards/db"
    body = dashboards_db_body(dashboard("influx"))
    unknown_field = requests.post(url, headers=headers, data=json.dumps({**body, "overwrites": True}), timeout=5)
    assert unknown_field.status_code == 400 and "overwrites" in unknown_field.json()["message"]
    broken = dashboards_db_body(dashboard("influx"))
    broken["dashboard"]["panels"][0]["gridPos"] = {"x": 0}
    assert requests.post(url, headers=headers, json=broken, timeout=5).status_code == 400
    assert requests.post(url, headers=headers, json=body, timeout=5).status_code == 200
    no_overwrite = {**body, "overwrite": False}
    refused = requests.post(url, headers=headers, json=no_overwrite, timeout=5)
    assert refused.status_code == 412 and refused.json()["status"] == "name-exists"
    assert len(grafana.violations) == 2
