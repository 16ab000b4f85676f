"""Each peer feature through a real `chaos run` with our controls, against real servers.

What is stored is compared with what the peer's code and FACTS §4 say the peer stored:
chaosdb.influx (measurement `chaos_toolkit.actions`, tags `experiment`/`scope`, fields
`type`/`module`/`func`, two points per Python action), chaosdb.grafana (its tags on the
annotations, `only_actions`), and the README's PromQL answers once per run when a run is
both pushed and remote-written. (The pushgateway control's and the probes' runs are in
tests/test_chaostoolkit_prometheus_compat.py.)
"""
import json
import os

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana_annotations import run_tag
from tests.conftest import JOURNALS, REPO
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixture)
from tests.influx_server import influx_db, influxd  # noqa: F401 (fixtures)
from tests.prometheus_servers import prometheus, pushgateway  # noqa: F401 (fixtures)
from tests.test_live_controls import chaos_run

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


def _python(kind, name, module, func, arguments):
    return {"type": kind, "name": name, "provider": {"type": "python", "module": module, "func": func,
                                                     "arguments": arguments}}


def _experiment(title, controls, configuration=None, method=None):
    return {
        "title": title, "description": "what the peers recorded",
        "configuration": configuration or {},
        "steady-state-hypothesis": {"title": "root exists", "probes": [
            {**_python("probe", "root-exists", "os.path", "exists", {"path": "/"}), "tolerance": True}]},
        "method": method or [
            _python("action", "look at root", "os.path", "exists", {"path": "/"}),
            {"type": "action", "name": "sleep", "provider": {"type": "process", "path": "sleep", "arguments": "0.05"}},
            _python("action", "look at tmp", "os.path", "lexists", {"path": "/tmp"}),
        ],
        "rollbacks": [_python("action", "look again", "os.path", "exists", {"path": "/"})],
        "controls": controls,
    }


def _replay(*args):
    return CliRunner().invoke(replay, list(args), env={"INFLUX_URL": "", "GRAFANA_URL": "", "PUSHGATEWAY_URL": ""})


def test_chaosdb_influx_layout_stores_what_chaosdb_stored(influx_db, tmp_path):
    host, port = influx_db.url.rsplit("//", 1)[1].split(":")
    # chaosdb's configuration, our module, the opt-in layout.
    configuration = {"influxdb": {"host": host, "port": int(port), "http_endpoint": "/write",
                                  "database": influx_db.name}}
    control = {"name": "tracing", "provider": {"type": "python", "module": "chaosreplay.controls.influx",
                                               "arguments": {"layout": "chaosdb"}}}
    completed, _, journal_path = chaos_run(tmp_path, "chaosdb-influx", _experiment(
        "chaosdb influx layout", [control], configuration))
    assert completed.returncode == 0, completed.stderr
    run = read_journal(journal_path)
    actions = [e for e in run.events if e.activity_type == "action" and e.fields.get("provider") == "python"]
    assert [e.name for e in actions] == ["look at root", "look at tmp", "look again"]
    points = influx_db.points("chaos_toolkit.actions")
    # Per Python action (rollbacks too), a point before and one after; none for probes or processes.
    expected = sorted((event.start if scope == "before" else event.end, scope, event.fields["func"])
                      for event in actions for scope in ("before", "after"))
    stored = sorted((p["time"] // 1000, p["scope"], p["func"]) for p in points)
    assert [(scope, func) for _, scope, func in stored] == [(scope, func) for _, scope, func in expected]
    assert [at for at, _, _ in stored] == [int(moment.timestamp() * 1_000_000) for moment, _, _ in expected]
    assert {(p["experiment"], p["type"], p["module"]) for p in points} == {("exp1", "python", "os.path")}
    # Replaying the journal rewrites the same points.
    result = _replay(journal_path)
    assert result.exit_code == 0, result.output
    assert len(influx_db.points("chaos_toolkit.actions")) == len(points)


def test_chaosdb_grafana_configuration_gives_chaosdbs_tags_and_the_journal_replays_once(grafana, tmp_path):
    host, port = grafana.url.rsplit("//", 1)[1].split(":")
    configuration = {"grafana": [{"host": host, "port": int(port), "protocol": "http", "api_token": EDITOR_TOKEN,
                                  "dashboardId": 0, "only_actions": 1, "tags": ["P2"],
                                  "annotation_api_endpoint": "/api/annotations"}]}
    control = {"name": "tracing", "provider": {"type": "python", "module": "chaosreplay.controls.grafana"}}
    completed, _, journal_path = chaos_run(tmp_path, "chaosdb-grafana", _experiment(
        "chaosdb grafana", [control], configuration))
    assert completed.returncode == 0, completed.stderr
    run = read_journal(journal_path)
    stored = grafana.with_tag(run_tag(run.run_id))
    by_kind = {}
    for annotation in stored:
        by_kind.setdefault(next(t for t in annotation.tags if t in ("experiment", "activity", "method")),
                           []).append(annotation)
    # only_actions 1: no probe; the experiment and the method as chaosdb tagged them.
    [experiment] = by_kind["experiment"]
    assert {"chaostoolkit", "experiment", "P2"} <= set(experiment.tags)
    [method] = by_kind["method"]
    assert {"chaostoolkit", "method", "before", "after", "P2"} <= set(method.tags)
    activities = {next(t for t in a.tags if t in ("look at root", "sleep", "look at tmp", "look again")): a
                  for a in by_kind["activity"]}
    assert sorted(activities) == ["look again", "look at root", "look at tmp", "sleep"]
    for name, annotation in activities.items():
        assert {"chaostoolkit", "activity", "before", "after", "action", "P2"} <= set(annotation.tags)
    assert "lexists" in activities["look at tmp"].tags and "exists" in activities["look again"].tags
    assert not any("probe" in a.tags for a in stored)
    # The journal carries chaosdb's configuration (only_actions 1): it replays, adding nothing.
    result = _replay(journal_path)
    assert result.exit_code == 0, result.output
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(stored)
    assert grafana.violations == []


# The README's examples (section "Prometheus"), each answering once per run.
LATEST_FAILED = 'chaostoolkit_experiment_status{chaostoolkit_delivery="pushgateway", status="failed"} == 1'
FAILED_ACTIVITIES = ('sum by (chaostoolkit_run_trace_id) (chaostoolkit_experiment_activities'
                     '{chaostoolkit_delivery="remote_write", status="failed"})')
FAILED_IN_RANGE = ('last_over_time(chaostoolkit_experiment_status{chaostoolkit_delivery="remote_write", '
                   'status="failed"}[30d]) == 1')


def _sent_both_ways(prometheus, run_id, result):
    """After `result` (the replay) sent run `run_id` to the pushgateway and remote write: its series by query."""
    assert result.exit_code == 0, result.output
    # Without the label, the one run is there twice: what the README's examples avoid.
    mine = f'chaostoolkit_run_trace_id="{run_id}"'
    both = prometheus.wait_for(f"chaostoolkit_experiment_status{{{mine}}} == 1", lambda result: len(result) == 2)
    assert sorted(series["metric"]["chaostoolkit_delivery"] for series in both) == ["pushgateway", "remote_write"]

    def of_run(expr):
        return [s for s in prometheus.query(expr) if s["metric"].get("chaostoolkit_run_trace_id") == run_id]
    return of_run


def test_readme_promql_answers_once_per_run_pushed_and_remote_written(prometheus, pushgateway, tmp_path):
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert LATEST_FAILED in readme and FAILED_ACTIVITIES in readme and FAILED_IN_RANGE in readme

    # A failed run (chaoslib 1.9: an after-hypothesis probe raised), re-timed to now, pushed and remote-written.
    journal = os.path.join(JOURNALS, "mdrcs-1.9.0-failed-deviated-k8s.json")
    result = _replay(journal, "--shift-to", "now", "--pushgateway-url", pushgateway.url,
                     "--prometheus-remote-write", f"{prometheus.url}/api/v1/write", "--format", "json")
    assert result.exit_code == 0, result.output
    [document] = json.loads(result.stdout)["runs"]
    assert read_journal(journal).experiment.status == "failed"
    # Re-timed, the run has a run id of its own.
    of_run = _sent_both_ways(prometheus, document["run_id"], result)
    assert len(of_run(LATEST_FAILED)) == 1
    assert len(of_run(FAILED_IN_RANGE)) == 1

    # A live run with two failed actions (pushgateway control), replayed with remote write: 2, not 4.
    two_failures = _experiment("promql: two failed actions", [{"name": "live", "provider": {
        "type": "python", "module": "chaosreplay.controls.pushgateway",
        "arguments": {"url": pushgateway.url, "job": "promql-e2e"}}}], method=[
        _python("action", "stat a missing file", "os", "stat", {"path": str(tmp_path / "missing-1")}),
        _python("action", "stat another missing file", "os", "stat", {"path": str(tmp_path / "missing-2")}),
    ])
    completed, _, journal_path = chaos_run(tmp_path, "two-failures", two_failures)
    run = read_journal(journal_path)
    result = _replay(journal_path, "--prometheus-remote-write", f"{prometheus.url}/api/v1/write")
    of_run = _sent_both_ways(prometheus, run.run_id, result)
    [failed] = of_run(FAILED_ACTIVITIES)
    assert failed["value"][1] == "2"
