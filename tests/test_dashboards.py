"""The shipped Grafana dashboards: Grafana's dashboard model, the panels asked for, the annotation tags.

Two checks of the model: Grafana's published JSON schema of dashboards (from
grafana-foundation-sdk, kept in fixtures/contracts with its provenance) on every
Python, and the SDK's typed models (Grafana 11.6 types, Python >= 3.11), which
must read every key we wrote and give it back unchanged.
"""
import json
import os
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.dashboards import DATASOURCE_VARIABLE, LAYOUTS, dashboard, dashboards_db_body
from chaosreplay.events import MARK, Event, Run
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana_annotations import run_annotations

from .conftest import FIXTURES, JOURNALS
from .procs import IN_CI

SCHEMA_PATH = os.path.join(FIXTURES, "contracts", "grafana-dashboard.jsonschema.json")
ANNOTATED_JOURNALS = ["generated-deviated.json", "tauber-1.44.0-method-probe-failed.json",
                      "generated-interrupted-sigterm.json", "generated-basic.json"]


def schema_validator():
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return jsonschema.Draft7Validator(json.load(handle))


def variants():
    for layout in LAYOUTS:
        yield layout, dashboard(layout)
        yield f"{layout} pinned", dashboard(layout, datasource="P0123abc", uid="ours", title="Ours")
    yield "influx other measurement", dashboard("influx", measurement='chaos "events"')


@pytest.mark.parametrize("name,board", list(variants()), ids=lambda value: value if isinstance(value, str) else "")
def test_dashboard_validates_against_grafanas_published_schema(name, board):
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
              for error in schema_validator().iter_errors(board)]
    assert errors == []


def test_the_schema_is_strict_enough_to_catch_a_mistake():
    board = dashboard("influx")
    board["panels"][0]["gridPos"]["w"] = "wide"
    board["templating"]["list"][1]["refresh"] = 7
    board["pannels"] = []
    assert len(list(schema_validator().iter_errors(board))) == 3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_grafanas_typed_model_reads_every_key_back_unchanged(layout):
    if sys.version_info < (3, 11):
        pytest.skip("grafana-foundation-sdk needs Python 3.11 (the JSON schema test covers this Python)")
    try:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.models.dashboard import Dashboard
        from grafana_foundation_sdk.models.statetimeline import Options as StateTimelineOptions
    except ImportError:
        if IN_CI:
            pytest.fail("grafana-foundation-sdk not installed (setup.cfg test extra)", pytrace=False)
        pytest.skip("grafana-foundation-sdk not installed: pip install -e '.[test]'")
    register_default_plugins()
    board = dashboard(layout)
    model = Dashboard.from_json(board)
    # The panel plugin's own types decoded the options: the state timeline's are the SDK's.
    timeline = next(panel for panel in model.panels if panel.type_val == "state-timeline")
    assert isinstance(timeline.options, StateTimelineOptions)
    # A key the model does not know would be dropped, a value of the wrong type changed;
    # the model may add its defaults.
    assert _missing_or_changed(board, json.loads(json.dumps(model, cls=JSONEncoder))) == []


def _missing_or_changed(ours, back, path=""):
    """Where `back` lacks or alters something `ours` has (keys `back` adds are allowed)."""
    if isinstance(ours, dict) and isinstance(back, dict):
        return [problem for key, value in ours.items()
                for problem in ([f"{path}/{key} missing"] if key not in back
                                else _missing_or_changed(value, back[key], f"{path}/{key}"))]
    if isinstance(ours, list) and isinstance(back, list) and len(ours) == len(back):
        return [problem for index, (mine, theirs) in enumerate(zip(ours, back))
                for problem in _missing_or_changed(mine, theirs, f"{path}[{index}]")]
    return [] if ours == back else [f"{path}: {ours!r} became {back!r}"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_panel_asked_for_is_there_with_the_run_picker(layout):
    board = dashboard(layout)
    titles = {panel["title"]: panel["type"] for panel in board["panels"]}
    assert titles == {
        "Runs by status": "timeseries",
        "Deviated runs": "stat",
        "Deviated runs, one by one": "table",
        "Failed activities by name": "table",
        "Duration of each activity across runs": "timeseries",
        "Timeline of run $run_id": "state-timeline",
    }
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert set(variables) == {"datasource", "experiment", "run_id"}
    assert "$experiment" in variables["run_id"]["query"]
    timeline = next(panel for panel in board["panels"] if panel["type"] == "state-timeline")
    assert all("$run_id" in (target.get("query") or target.get("expr")) for target in timeline["targets"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)


def _tag_queries(board):
    return [annotation for annotation in board["annotations"]["list"]
            if annotation.get("target", {}).get("type") == "tags"]


def _sink_annotations():
    runs = [read_journal(os.path.join(JOURNALS, name)) for name in ANNOTATED_JOURNALS]
    first = runs[0].events[0]
    # No bundled journal has a user mark; the recorder's marks are events like this one.
    mark = Event(id="m1", run_id=runs[0].run_id, kind=MARK, name="traffic peak", start=first.start,
                 end=first.start, status="succeeded", fields={"rps": 1200})
    runs.append(Run(runs[0].run_id, "marks", (runs[0].experiment, mark)))
    return runs, [annotation for run in runs for annotation in run_annotations(run)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_annotation_queries_match_the_tags_the_grafana_sink_writes(layout):
    runs, annotations = _sink_annotations()
    queries = _tag_queries(dashboard(layout))
    assert {query["name"] for query in queries} == {
        "Chaos Toolkit runs", "Failed activities", "Steady state not met", "Interruptions", "Marks",
        "Activities of the selected run"}
    for query in queries:
        wanted = [tag.replace("$run_id", runs[1].run_id) for tag in query["target"]["tags"]]
        assert query["target"]["matchAny"] is False
        matched = [annotation for annotation in annotations if set(wanted) <= set(annotation.tags)]
        assert matched, f"{query['name']}: no annotation the sink writes has all of {wanted}"
        kinds = {annotation.kind for annotation in matched}
        expected_kind = {"Chaos Toolkit runs": "experiment", "Failed activities": "activity",
                         "Steady state not met": "steady-state", "Interruptions": "interruption",
                         "Marks": "mark", "Activities of the selected run": "activity"}[query["name"]]
        assert kinds == {expected_kind}
        if query["name"] == "Failed activities":
            assert all("status: failed" in annotation.text for annotation in matched)
        if query["name"] == "Activities of the selected run":
            assert {f"run-{runs[1].run_id}"} <= set.intersection(*(set(a.tags) for a in matched))


def invoke(*args):
    return CliRunner().invoke(replay, list(args), catch_exceptions=False)


def test_dashboard_command_prints_the_dashboard_with_its_options_and_journals_still_work():
    result = invoke("dashboard", "influx", "--datasource", "P-influx", "--measurement", "my_events")
    assert result.exit_code == 0
    board = json.loads(result.stdout)
    assert DATASOURCE_VARIABLE not in result.stdout
    assert {target["datasource"]["uid"] for panel in board["panels"] for target in panel["targets"]} == {"P-influx"}
    queries = [target["query"] for panel in board["panels"] for target in panel["targets"]]
    assert all('FROM "my_events"' in query for query in queries)
    assert "chaostoolkit_events" not in result.stdout

    assert invoke("dashboard", "prometheus").exit_code == 0
    refused = invoke("dashboard", "prometheus", "--measurement", "x")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == "chaos-replay dashboard: error: a measurement applies to the influx dashboard only"
    assert invoke("dashboard", "grafite").exit_code == 2
    journal = invoke(os.path.join(JOURNALS, "generated-basic.json"))
    assert journal.exit_code == 0 and "5 activities" in journal.stdout


def test_provisioning_body_overwrites_by_uid_and_carries_no_server_id():
    board = {**dashboard("prometheus"), "id": 42}
    body = dashboards_db_body(board, folder_uid="chaos")
    assert body["overwrite"] is True
    assert body["folderUid"] == "chaos"
    assert "id" not in body["dashboard"] and body["dashboard"]["uid"] == "chaostoolkit-prometheus"
    assert board["id"] == 42  # the caller's dashboard is left as it was


def test_the_chaos_plugin_has_the_dashboard_command_too(tmp_path):
    chaos = os.path.join(os.path.dirname(sys.executable), "chaos")
    done = subprocess.run([chaos, "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "replay",
                           "dashboard", "prometheus", "--datasource", "P1"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    board = json.loads(done.stdout)
    assert board["uid"] == "chaostoolkit-prometheus"
    assert [variable["name"] for variable in board["templating"]["list"]] == ["experiment", "run_id"]
