"""Every query of the InfluxDB dashboard, run against a real influxd holding replayed fixture journals.

The journals go in through `chaos-replay --influx-url` as a user would send them;
each panel's and template variable's query is then sent as Grafana would send
it, and what comes back must be what the journals say: runs per status, deviated
runs, failures per activity name, one run's activities and their statuses.
"""
import os
import time
import uuid
from collections import Counter

import pytest
import requests
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.dashboards import dashboard
from chaosreplay.events import ACTIVITY
from chaosreplay.journal import read_journal

from .conftest import JOURNALS
from .grafana_queries import panel_queries, regex_value, substituted, variable_queries
from .influx_server import influxd  # noqa: F401 (fixture)

pytestmark = pytest.mark.servers

JOURNAL_NAMES = ["generated-deviated.json", "tauber-1.44.0-method-probe-failed.json",
                 "generated-interrupted-sigterm.json", "generated-basic.json", "generated-continuous.json",
                 "mdrcs-1.9.0-failed-deviated-k8s.json", "generated-aborted.json",
                 "azurechaos-1.28.0-secret-refs-deviated.json"]
# The dashboard's time range: every journal's year, as the time picker would give it.
TIME_FILTER = f"time >= 946684800000ms and time <= {int(time.time() * 1000) + 86_400_000}ms"


@pytest.fixture(scope="module")
def replayed(influxd):  # noqa: F811 (fixture)
    database = f"dashboards_{uuid.uuid4().hex[:10]}"
    paths = [os.path.join(JOURNALS, name) for name in JOURNAL_NAMES]
    result = CliRunner().invoke(replay, [*paths, "--influx-url", influxd.url, "--influx-database", database,
                                         "--influx-create-database"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = [read_journal(path) for path in paths]
    yield influxd.url, database, runs
    requests.post(f"{influxd.url}/query", params={"q": f'DROP DATABASE "{database}"'}, timeout=10)


def influxql(url, database, query):
    answer = requests.get(f"{url}/query", params={"db": database, "q": query, "epoch": "ms"}, timeout=10).json()
    result = answer["results"][0]
    assert "error" not in result, f"{query}: {result['error']}"
    return result.get("series", [])


def grafana_query(query, experiments=None, run_id=None):
    return substituted(query, {
        "timeFilter": TIME_FILTER, "__interval": "1d",
        "experiment": ".*" if experiments is None else regex_value(experiments),
        "run_id": regex_value([run_id]) if run_id else "",
    })


def panel(title):
    (query,) = panel_queries(dashboard("influx"), "query")[title]
    return query


def activities(runs):
    return [event for run in runs for event in run.events if event.kind == ACTIVITY]


def test_run_picker_lists_the_experiments_then_their_runs(replayed):
    url, database, runs = replayed
    variables = variable_queries(dashboard("influx"))
    (series,) = influxql(url, database, grafana_query(variables["experiment"]))
    assert sorted(value for _, value in series["values"]) == sorted({run.title for run in runs})
    (series,) = influxql(url, database, grafana_query(variables["run_id"]))
    assert sorted(value for _, value in series["values"]) == sorted(run.run_id for run in runs)
    # One experiment picked: only its run. Its title has regex characters (`?`, `'`): escaped as Grafana does.
    picked = next(run for run in runs if "?" in run.title)
    (series,) = influxql(url, database, grafana_query(variables["run_id"], experiments=[picked.title]))
    assert [value for _, value in series["values"]] == [picked.run_id]


def test_runs_by_status_count_each_journal_once(replayed):
    url, database, runs = replayed
    counted = Counter()
    for series in influxql(url, database, grafana_query(panel("Runs by status"))):
        counted[series["tags"]["status"]] += sum(count for _, count in series["values"])
    assert counted == Counter(run.experiment.status for run in runs)
    assert set(counted) == {"completed", "failed", "interrupted", "aborted"}
    two = [runs[0].title, runs[5].title]
    narrowed = Counter()
    for series in influxql(url, database, grafana_query(panel("Runs by status"), experiments=two)):
        narrowed[series["tags"]["status"]] += sum(count for _, count in series["values"])
    assert narrowed == Counter(run.experiment.status for run in (runs[0], runs[5]))


def test_deviated_runs_are_counted_and_listed(replayed):
    url, database, runs = replayed
    deviated = [run for run in runs if run.experiment.fields["deviated"]]
    assert len(deviated) == 3
    (series,) = influxql(url, database, grafana_query(panel("Deviated runs")))
    assert series["values"][0][1] == len(deviated)
    listed = influxql(url, database, grafana_query(panel("Deviated runs, one by one")))
    assert sorted(series["tags"]["run_id"] for series in listed) == sorted(run.run_id for run in deviated)
    for series in listed:
        run = next(run for run in deviated if run.run_id == series["tags"]["run_id"])
        row = dict(zip(series["columns"], series["values"][0]))
        assert row["failed_activities"] == run.experiment.fields["failed_activities"]
        assert row["duration"] == pytest.approx(run.experiment.duration, abs=1e-6)


def test_failed_activities_by_name(replayed):
    url, database, runs = replayed
    found = {series["tags"]["name"]: series["values"][0][1]
             for series in influxql(url, database, grafana_query(panel("Failed activities by name")))}
    expected = Counter(event.name for event in activities(runs) if event.status == "failed")
    assert found == dict(expected)
    assert len(found) >= 2


def test_duration_of_each_activity_across_runs(replayed):
    url, database, runs = replayed
    series_list = influxql(url, database, grafana_query(panel("Duration of each activity across runs")))
    names = {series["tags"]["name"] for series in series_list}
    assert names == {event.name for event in activities(runs) if event.duration is not None}
    for series in series_list:
        durations = [event.duration for event in activities(runs)
                     if event.name == series["tags"]["name"] and event.duration is not None]
        means = [value for _, value in series["values"]]
        assert min(durations) - 1e-6 <= min(means) and max(means) <= max(durations) + 1e-6


def test_timeline_of_one_run_has_each_activity_with_its_status(replayed):
    url, database, runs = replayed
    for run in (runs[1], runs[2], runs[4]):  # a failure, an interruption, background activities
        rows = Counter()
        for series in influxql(url, database, grafana_query(panel("Timeline of run $run_id"), run_id=run.run_id)):
            status_column = series["columns"].index("status")
            for values in series["values"]:
                rows[(series["tags"]["name"], values[status_column])] += 1
        assert rows == Counter((event.name, event.status) for event in activities([run]))
