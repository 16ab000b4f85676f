"""Every query of the Prometheus dashboard, run against a real Prometheus holding replayed fixture journals.

The journals are back-filled through `chaos-replay --prometheus-remote-write`
into a private Prometheus (so no other test's series count), then each panel's
PromQL and each variable's `label_values(...)` is asked as Grafana asks it
(`/api/v1/query`, `/api/v1/query_range`, `/api/v1/label/<name>/values`).
"""
import os
import re
from collections import Counter

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.dashboards import dashboard
from chaosreplay.events import ACTIVITY
from chaosreplay.journal import read_journal

from .conftest import JOURNALS
from .grafana_queries import panel_queries, promql_regex_value, substituted, variable_queries
from .prometheus_servers import start_prometheus

pytestmark = pytest.mark.servers

JOURNAL_NAMES = ["generated-deviated.json", "tauber-1.44.0-method-probe-failed.json",
                 "generated-interrupted-sigterm.json", "generated-basic.json", "generated-continuous.json",
                 "mdrcs-1.9.0-failed-deviated-k8s.json", "generated-aborted.json",
                 "azurechaos-1.28.0-secret-refs-deviated.json"]
STATUS_CODES = {"succeeded": 1, "failed": 2, "interrupted": 3, "aborted": 4, "unknown": 5}
DAY = 86_400


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    server = start_prometheus(str(tmp_path_factory.mktemp("prometheus-dashboards")))
    try:
        paths = [os.path.join(JOURNALS, name) for name in JOURNAL_NAMES]
        result = CliRunner().invoke(replay, [*paths, "--prometheus-remote-write", f"{server.url}/api/v1/write"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        yield server.url, [read_journal(path) for path in paths]
    finally:
        server.stop()


def api(url, path, **params):
    answer = requests.get(f"{url}{path}", params=params, timeout=20).json()
    assert answer["status"] == "success", answer
    return answer["data"]


def span(runs):
    """The dashboard's time range: from a minute before the first run to a day after the last one (the
    last 1-day step then covers it), with 0.137 s so that no sample sits exactly on a step's edge."""
    start = min(run.experiment.start.timestamp() for run in runs) - 60.137
    end = max(run.experiment.end.timestamp() for run in runs) + DAY + 0.137
    return start, end


def grafana_expr(expr, runs, interval="1d", experiments=None, run_id=""):
    start, end = span(runs)
    return substituted(expr, {
        "__interval": interval, "__range": f"{int(end - start) + 1}s",
        "experiment": ".*" if experiments is None else promql_regex_value(experiments), "run_id": run_id,
    })


def panel(title):
    (expr,) = panel_queries(dashboard("prometheus"), "expr")[title]
    return expr


def instant(url, runs, title):
    return api(url, "/api/v1/query", query=grafana_expr(panel(title), runs), time=f"{span(runs)[1]:.3f}")["result"]


def ranged(url, runs, title, step, interval, run_id="", start=None, end=None):
    default_start, default_end = span(runs)
    return api(url, "/api/v1/query_range", query=grafana_expr(panel(title), runs, interval, run_id=run_id),
               start=f"{start or default_start:.3f}", end=f"{end or default_end:.3f}", step=step)["result"]


def activities(runs):
    return [event for run in runs for event in run.events if event.kind == ACTIVITY]


def label_values(url, runs, query, experiments=None):
    """`label_values(selector, label)` as Grafana asks it: the label's values among the selector's series."""
    text = grafana_expr(query, runs, experiments=experiments)
    selector, label = re.fullmatch(r"label_values\((.*), (\w+)\)", text).groups()
    start, end = span(runs)
    return api(url, f"/api/v1/label/{label}/values", **{"match[]": selector, "start": f"{start:.3f}",
                                                        "end": f"{end:.3f}"})


def test_run_picker_lists_the_experiments_then_their_runs(replayed):
    url, runs = replayed
    variables = variable_queries(dashboard("prometheus"))
    assert sorted(label_values(url, runs, variables["experiment"])) == sorted({run.title for run in runs})
    assert sorted(label_values(url, runs, variables["run_id"])) == sorted(run.run_id for run in runs)
    picked = next(run for run in runs if "?" in run.title)
    assert label_values(url, runs, variables["run_id"], experiments=[picked.title]) == [picked.run_id]


def test_runs_by_status_count_each_journal_once(replayed):
    url, runs = replayed
    counted = Counter()
    for series in ranged(url, runs, "Runs by status", step=DAY, interval="1d"):
        counted[series["metric"]["status"]] += sum(int(value) for _, value in series["values"])
    assert counted == Counter(run.experiment.status for run in runs)
    assert set(counted) == {"completed", "failed", "interrupted", "aborted"}


def test_deviated_runs_are_counted_and_listed(replayed):
    url, runs = replayed
    deviated = [run for run in runs if run.experiment.fields["deviated"]]
    assert len(deviated) == 3
    (count,) = instant(url, runs, "Deviated runs")
    assert int(count["value"][1]) == len(deviated)
    listed = instant(url, runs, "Deviated runs, one by one")
    assert sorted(series["metric"]["chaostoolkit_run_trace_id"] for series in listed) == sorted(
        run.run_id for run in deviated)


def test_failed_activities_by_name(replayed):
    url, runs = replayed
    found = {series["metric"]["activity"]: int(series["value"][1])
             for series in instant(url, runs, "Failed activities by name")}
    assert found == dict(Counter(event.name for event in activities(runs) if event.status == "failed"))
    assert len(found) >= 2


def test_duration_of_each_activity_across_runs(replayed):
    url, runs = replayed
    result = ranged(url, runs, "Duration of each activity across runs", step=DAY, interval="1d")
    assert {series["metric"]["activity"] for series in result} == {
        event.name for event in activities(runs) if event.duration is not None}
    for series in result:
        longest = max(event.duration for event in activities(runs)
                      if event.name == series["metric"]["activity"] and event.duration is not None)
        assert max(float(value) for _, value in series["values"]) == pytest.approx(longest)


def test_timeline_of_one_run_has_each_activity_with_its_status(replayed):
    url, runs = replayed
    for run in (runs[1], runs[2], runs[4]):  # a failure, an interruption, background activities
        result = ranged(url, runs, "Timeline of run $run_id", step=1, interval="1s", run_id=run.run_id,
                        start=run.experiment.start.timestamp() - 1.137, end=run.experiment.end.timestamp() + 2.137)
        seen = {series["metric"]["activity"]: {int(float(value)) for _, value in series["values"]}
                for series in result}
        expected = {}
        for event in activities([run]):
            expected.setdefault(event.name, set()).add(STATUS_CODES[event.status])
        assert set(seen) == set(expected)
        for name, codes in seen.items():
            # Two activities of one name within the same second show as the worse status.
            assert codes <= expected[name] and max(expected[name]) in codes
