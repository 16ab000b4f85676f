"""The pushgateway sink against a real pushgateway, checked through a real Prometheus scraping it."""
import glob
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from chaosreplay.config import Settings
from chaosreplay.delivery import LiveBatch
from chaosreplay.events import Event, Run, activity_id, experiment_id
from chaosreplay.journal import read_journal
from chaosreplay.sinks.pushgateway import SUMMARY_NOTE, PushgatewayConfig, PushgatewayTarget, targets
from chaosreplay.sinks.prometheus_http import Endpoint
from chaosreplay.sinks.prometheus_series import RUN_ID_LABEL
from tests.blackhole import Blackhole, Refusing
from tests.conftest import JOURNALS
from tests.prometheus_servers import prometheus, pushgateway  # noqa: F401 (fixtures)

pytestmark = pytest.mark.servers

VALID_JOURNALS = [path for path in sorted(glob.glob(os.path.join(JOURNALS, "*.json")))
                  if "truncated" not in path]


def _target(url, **config):
    return PushgatewayTarget(PushgatewayConfig(Endpoint(url, retries=0, timeout=5), **config))


def _group_series(pushgateway_url, job):
    """Sample lines the pushgateway exposes for `job` (its own push_time metrics left out)."""
    text = requests.get(f"{pushgateway_url}/metrics", timeout=5).text
    return [line for line in text.splitlines()
            if line.startswith("chaostoolkit_") and f'job="{job}"' in line]


def test_every_journal_pushed_is_scraped_with_its_run_id_and_summary(pushgateway, prometheus):
    runs = {}
    for index, path in enumerate(VALID_JOURNALS):
        run = read_journal(path)
        job = f"replay/{index}"  # a "/" in a grouping value goes base64-encoded in the URL
        [target] = targets(Settings(cli={"pushgateway_url": pushgateway.url, "pushgateway_job": job}, env={}))
        delivery = target.send(run)
        assert delivery.ok, delivery.error
        assert delivery.notes == (SUMMARY_NOTE,)
        assert set(delivery.delivered) == {event.id for event in run.events}
        runs[run.run_id] = (run, job)

    result = prometheus.wait_for(
        "chaostoolkit_experiment_status == 1",
        lambda result: {r["metric"][RUN_ID_LABEL] for r in result} >= set(runs), timeout=40)
    for sample in result:
        run, job = runs[sample["metric"][RUN_ID_LABEL]]
        assert sample["metric"]["status"] == run.experiment.status
        assert sample["metric"]["job"] == job
        assert sample["metric"]["chaostoolkit_experiment_title"] == run.title

    activities = prometheus.query(f"sum by ({RUN_ID_LABEL}) (chaostoolkit_experiment_activities)")
    counted = {r["metric"][RUN_ID_LABEL]: float(r["value"][1]) for r in activities}
    durations = {r["metric"][RUN_ID_LABEL]: float(r["value"][1])
                 for r in prometheus.query("chaostoolkit_experiment_duration_seconds")}
    for run_id, (run, _) in runs.items():
        assert counted.get(run_id, 0) == sum(1 for event in run.events if event.kind == "activity")
        assert durations[run_id] == pytest.approx(run.experiment.duration)


def _experiment(run_id, title, start, seconds, status="completed"):
    return Event(id=experiment_id(run_id), run_id=run_id, kind="experiment", name=title, start=start,
                 end=start + timedelta(seconds=seconds), status=status, fields={"deviated": False})


def _activity(run_id, name, start, seconds, status="succeeded"):
    return Event(id=activity_id(run_id, "method", name, 0), run_id=run_id, kind="activity", name=name,
                 start=start, end=start + timedelta(seconds=seconds), status=status, phase="method",
                 activity_type="action", fields={"duration": float(seconds)})


def test_each_run_replaces_its_experiments_group_instead_of_adding_one(pushgateway):
    title = 'pods "die"\\ again\nand again'
    job = "replaces"
    target = _target(pushgateway.url, job=job)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    first = Run("run-one", "a.json", (_experiment("run-one", title, start, 10),
                                      _activity("run-one", "kill", start, 2)))
    second = Run("run-two", "b.json", (_experiment("run-two", title, start, 20, status="failed"),))
    assert target.send(first).ok
    lines_after_first = _group_series(pushgateway.url, job)
    assert any('chaostoolkit_run_trace_id="run-one"' in line for line in lines_after_first)
    assert target.send(second).ok
    lines = _group_series(pushgateway.url, job)
    assert lines and all('chaostoolkit_run_trace_id="run-two"' in line for line in lines)
    assert any('status="failed"} 1' in line for line in lines)
    # The title with quotes, a backslash and a newline made it through the exposition format.
    assert 'chaostoolkit_experiment_title="pods \\"die\\"\\\\ again\\nand again"' in lines[0]

    # Replaying the same run again changes nothing.
    assert target.send(second).ok
    assert _group_series(pushgateway.url, job) == lines


def test_live_slices_accumulate_then_the_group_is_deleted_at_the_end(pushgateway):
    job = "live"
    target = _target(pushgateway.url, job=job)
    start = datetime.now(timezone.utc)
    first = _activity("live-run", "first", start, 1)
    second = _activity("live-run", "second", start + timedelta(seconds=1), 1, status="failed")
    experiment = _experiment("live-run", "live one", start, 3)

    live_delivery = target.send(LiveBatch("live-run", "live", (first,), title="live one"))
    assert live_delivery.ok and live_delivery.notes == ()
    lines = _group_series(pushgateway.url, job)
    assert any(line.startswith("chaostoolkit_experiment_in_progress{") and line.endswith(" 1") for line in lines)
    assert not any(line.startswith("chaostoolkit_experiment_status{") for line in lines)

    assert target.send(LiveBatch("live-run", "live", (second,), title="live one")).ok
    assert target.send(LiveBatch("live-run", "live", (experiment,), title="live one")).ok
    lines = _group_series(pushgateway.url, job)
    assert any(line.startswith("chaostoolkit_experiment_in_progress{") and line.endswith(" 0") for line in lines)
    durations = [line for line in lines if line.startswith("chaostoolkit_activity_duration_seconds{")]
    assert len(durations) == 2, "the first slice's activity is still in the group"
    assert any('activity="second"' in line and 'status="failed"' in line
               for line in lines if line.startswith("chaostoolkit_activity_status{"))

    assert target.delete_group() is None
    assert _group_series(pushgateway.url, job) == []


@pytest.mark.parametrize("backend", [Blackhole, Refusing], ids=["blackhole", "refusing"])
def test_an_unreachable_pushgateway_is_reported_in_one_line_within_the_timeout(backend):
    start = datetime.now(timezone.utc)
    run = Run("r", "j.json", (_experiment("r", "t", start, 1),))
    with backend() as server:
        target = PushgatewayTarget(PushgatewayConfig(Endpoint(server.url, retries=0, timeout=1)))
        began = time.monotonic()
        delivery = target.send(run)
        elapsed = time.monotonic() - began
    assert not delivery.ok and delivery.failed == (run.events[0].id,)
    assert delivery.notes == (), "nothing was published, so nothing is said to be"
    assert delivery.error.startswith("push: ") and "\n" not in delivery.error
    assert elapsed < 10
