"""One big run is written and sent a slice at a time (never a copy of the whole run beside
its events): the text, the JSON document, the OpenMetrics file and the remote-write
series are the same as when they were made whole. The slices are made tiny here so that
small runs are cut into many."""
import json
import math
import os

import pytest
from click.testing import CliRunner

from chaosreplay import cli, render
from chaosreplay.cli import replay
from chaosreplay.events import ACTIVITY
from chaosreplay.journal import read_journal
from chaosreplay.config import Settings
from chaosreplay.render import SameLine, plans_text, run_document, run_document_blocks, timeline_blocks, timeline_text
from chaosreplay.sinks import BodyText, Delivery, Planned, PlannedRequest, openmetrics, remote_write, sink_modules
from chaosreplay.sinks import pushgateway as pushgateway_sink
from chaosreplay.sinks.batching import CrossRunBatches
from chaosreplay.sinks.prometheus_series import (merge_families, openmetrics_text, run_families,
                                                 run_family_slices)
from tests.conftest import JOURNALS
from tests.prometheus_servers import prometheus, pushgateway  # noqa: F401 (fixtures)

NAMES = ["generated-continuous.json", "marzouk-1.8.1-completed-rollbacks.json", "generated-interrupted-sigterm.json",
         "tauber-1.44.0-method-probe-failed.json"]
CLEAN_ENV = {name: None for name in os.environ if name.startswith(("GRAFANA_", "INFLUX_", "PROMETHEUS_"))}


def _run(name):
    return read_journal(os.path.join(JOURNALS, name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("per_slice", [1, 2, 3])
def test_family_slices_are_the_run_s_families_cut_by_activities(name, per_slice):
    run = _run(name)
    activities = sum(1 for event in run.events if event.kind == ACTIVITY)
    slices = list(run_family_slices(run, delivery="openmetrics", activities_per_slice=per_slice))
    assert len(slices) == 1 + math.ceil(activities / per_slice)
    assert merge_families(*slices) == merge_families(run_families(run, delivery="openmetrics"))
    assert [family for part in run_family_slices(run, delivery="openmetrics") for family in part] == \
        run_families(run, delivery="openmetrics")


@pytest.mark.parametrize("plans, deliveries", [
    (None, ()),
    ([], ()),
    ([("target", [PlannedRequest("POST", "http://x/write", {"A": "b"}, "line 1\nline 2")])], ()),
    (None, [Delivery("target", ("a", "b"), ("c",), "went wrong", ("a note",))]),
])
@pytest.mark.parametrize("name", NAMES)
def test_json_blocks_are_the_run_s_document(name, plans, deliveries):
    run = _run(name)
    for events in (run, run.with_events(()), run.with_events(run.events[:1])):
        whole = json.dumps(run_document(events, plans, deliveries), indent=2, ensure_ascii=False)
        for per_block in (1, 2, 3, 1000):
            assert "\n".join(run_document_blocks(events, plans, deliveries, events_per_block=per_block)) == whole


def test_timeline_blocks_are_the_run_s_text():
    run = _run("generated-continuous.json")
    for per_block in (1, 2, 3, 1000):
        assert "\n".join(timeline_blocks(run, lines_per_block=per_block)) == timeline_text(run)
    assert max(block.count("\n") + 1 for block in timeline_blocks(run, lines_per_block=2)) == 2


def test_a_run_is_printed_a_few_lines_at_a_time_as_text_and_as_json(monkeypatch):
    monkeypatch.setattr(cli, "ECHO_LINES", 2)
    paths = [os.path.join(JOURNALS, name) for name in NAMES]
    runs = [read_journal(path) for path in paths]
    text = CliRunner().invoke(replay, paths, env=CLEAN_ENV, catch_exceptions=False)
    assert text.exit_code == 0
    assert text.stdout == "".join(timeline_text(run) + "\n" for run in runs)
    document = CliRunner().invoke(replay, [*paths, "--format", "json"], env=CLEAN_ENV, catch_exceptions=False)
    assert document.exit_code == 0
    assert document.stdout == json.dumps({"runs": [run_document(run) for run in runs]}, indent=2,
                                         ensure_ascii=False) + "\n"


def test_openmetrics_spooled_a_slice_of_activities_at_a_time_is_the_whole_run_s_file(tmp_path, monkeypatch):
    monkeypatch.setattr(openmetrics, "ACTIVITIES_PER_SLICE", 2)
    paths = [os.path.join(JOURNALS, name) for name in NAMES]
    output = tmp_path / "runs.om"
    result = CliRunner().invoke(replay, [*paths, "--openmetrics", str(output)], env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = [read_journal(path) for path in paths]
    assert output.read_text(encoding="utf-8") == openmetrics_text(merge_families(
        *(run_families(run, delivery="openmetrics") for run in runs)))


def test_remote_write_sends_the_run_s_series_made_a_slice_at_a_time(prometheus, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_write, "ACTIVITIES_PER_SLICE", 1)
    posted = []
    real_post = remote_write.RemoteWriteTarget._post

    def recording_post(self, batch):
        posted.extend((family.name, series) for family, series in batch)
        return real_post(self, batch)

    monkeypatch.setattr(remote_write.RemoteWriteTarget, "_post", recording_post)
    path = os.path.join(JOURNALS, "generated-continuous.json")
    run = read_journal(path)
    config = tmp_path / "targets.json"
    config.write_text(json.dumps({"prometheus_remote_write": {"url": f"{prometheus.url}/api/v1/write",
                                                              "batch_size": 7}}))
    result = CliRunner().invoke(replay, [path, "--config", str(config)], env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"delivered {len(run.events)} event(s)" in result.output
    # The same series, each whole (a series is never cut); sliced, they come slice by slice
    # rather than family by family, which remote write does not mind.
    whole = [(family.name, series) for family in run_families(run, delivery="remote_write")
             for series in family.series]
    assert len(posted) == len(whole) and sorted(posted, key=repr) == sorted(whole, key=repr)
    assert posted != whole
    prometheus.wait_for(f'chaostoolkit_activity_status{{chaostoolkit_run_trace_id="{run.run_id}"}}',
                        lambda found: len(found) == sum(1 for e in run.events if e.kind == ACTIVITY),
                        at=run.experiment.end.timestamp())


def test_a_run_s_outcome_keeps_what_the_sink_asks_of_each_item_not_the_item():
    def write(items):
        # The third item of each batch is refused; the others stored.
        return [item for index, item in enumerate(items) if index != 2], [(2, "refused")]

    batches = CrossRunBatches(4, write, "test", keep=lambda item: item["id"])
    outcomes = []
    items = [{"id": f"e{index}", "line": "x" * 100} for index in range(10)]
    batches.add("run", iter(items), outcomes.append)
    batches.flush()
    batches.close()
    [outcome] = outcomes
    assert outcome.stored == [item["id"] for index, item in enumerate(items) if index % 4 != 2]
    assert [(position, item["id"], reason) for position, item, reason in outcome.rejected] == \
        [(3, "e2", "refused"), (7, "e6", "refused")]


# Credentials of every kind of target: a dry run shows `***` for each, never the value.
DRY_RUN_SECRETS = ("influx-pw-7q2", "grafana-token-9x4", "push-pw-3k8", "write-token-5m1")


def _dry_run_targets_config(tmp_path):
    return {
        "influx": {"url": "http://127.0.0.1:9", "database": "d", "username": "u", "password": DRY_RUN_SECRETS[0],
                   "batch_size": 3, "create_database": True},
        "grafana": {"url": "http://127.0.0.1:9", "token": DRY_RUN_SECRETS[1]},
        "pushgateway": {"url": "http://127.0.0.1:9", "username": "u", "password": DRY_RUN_SECRETS[2]},
        "prometheus_remote_write": {"url": "http://127.0.0.1:9/api/v1/write", "token": DRY_RUN_SECRETS[3],
                                    "batch_size": 7},
        "openmetrics": {"path": str(tmp_path / "runs.om")},
    }


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_a_dry_run_made_a_slice_at_a_time_prints_the_whole_requests(tmp_path, monkeypatch, output_format):
    """Every target's requests for a run cut into many slices (one activity each, a few lines
    printed at a time, InfluxDB and remote write batches of a few) print as the requests made
    whole print them."""
    path = os.path.join(JOURNALS, "generated-continuous.json")
    run = read_journal(path)
    targets_config = _dry_run_targets_config(tmp_path)
    targets = [target for module in sink_modules() for target in module.targets(Settings(file=targets_config, env={}))]
    assert [type(target).__name__ for target in targets] == [
        "InfluxTarget", "GrafanaTarget", "PushgatewayTarget", "RemoteWriteTarget", "OpenMetricsTarget"]
    whole = [(target.label, target.plan(run)) for target in targets]
    # Made whole, the bodies are what the sinks' whole-run formulas give.
    openmetrics_body = whole[4][1][0].body
    assert openmetrics_body == openmetrics_text(run_families(run, delivery="openmetrics"))
    assert [request.body.split("as OpenMetrics:\n", 1)[1] for request in whole[3][1]] == [
        openmetrics_text(remote_write._as_families(batch)) for batch in targets[3]._batches(run)]
    assert len(whole[0][1]) == 1 + math.ceil(len(run.events) / 3) and len(whole[3][1]) > 1

    for module in (openmetrics, pushgateway_sink, remote_write):
        monkeypatch.setattr(module, "ACTIVITIES_PER_SLICE", 1)
    monkeypatch.setattr(cli, "ECHO_LINES", 2)
    monkeypatch.setattr(render, "REQUESTS_PER_BLOCK", 2)
    config = tmp_path / "targets.json"
    config.write_text(json.dumps(targets_config), encoding="utf-8")
    result = CliRunner().invoke(replay, [path, "--dry-run", "--config", str(config), "--format", output_format],
                                env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if output_format == "text":
        expected = timeline_text(run) + "\n" + "".join(plans_text(label, requests) + "\n"
                                                       for label, requests in whole)
    else:
        expected = json.dumps({"runs": [run_document(run, whole)]}, indent=2, ensure_ascii=False) + "\n"
    assert result.stdout == expected
    for secret in DRY_RUN_SECRETS:
        assert secret not in result.output
    assert not (tmp_path / "runs.om").exists()


@pytest.mark.parametrize("per_block", [1, 2, 1000])
def test_a_body_made_a_piece_at_a_time_is_one_json_string(monkeypatch, per_block):
    monkeypatch.setattr(render, "REQUESTS_PER_BLOCK", per_block)
    run = _run("generated-continuous.json")
    body = BodyText(lambda: ["a 1\n", 'b "2" \\ \u2028\n', "c\ttab\n"])
    whole = [("first", [PlannedRequest("POST", "http://x", {"A": "***"}, "a\nb"),
                        PlannedRequest("WRITE", "f.om", {}, body),
                        *(PlannedRequest("POST", "http://x", {}, {"q": str(number)}) for number in range(3))]),
             ("none", []), ("last", [PlannedRequest("GET", "http://y")])]
    deliveries = [Delivery("target", ("a",))]
    assert str(body) == 'a 1\nb "2" \\ \u2028\nc\ttab\n'
    for plans, deliveries_ in ((whole, ()), (whole, deliveries), ([], deliveries)):
        expected = json.dumps(run_document(run, plans, deliveries_), indent=2, ensure_ascii=False)
        # Requests made as they are shown, once.
        planned = ((label, Planned(len(requests), iter(requests))) for label, requests in plans)
        blocks = list(run_document_blocks(run, planned, deliveries_))
        # Joined as chaos-replay prints them: a SameLine goes on with the line before it.
        text = blocks[0]
        for block in blocks[1:]:
            text += block if isinstance(block, SameLine) else "\n" + block
        assert text == expected
