"""`chaos-replay` through click's runner and as a real subprocess."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.errors import EXIT_INTERRUPTED, EXIT_USAGE
from chaosreplay.events import parse_time
from chaosreplay.journal import read_journal

from .blackhole import Blackhole
from .conftest import JOURNALS
from .prometheus_servers import pushgateway  # noqa: F401 (fixture)

BASIC = os.path.join(JOURNALS, "generated-basic.json")
CONTINUOUS = os.path.join(JOURNALS, "generated-continuous.json")
TRUNCATED = os.path.join(JOURNALS, "generated-truncated-unserializable.json")
BIN = os.path.dirname(sys.executable)


def invoke(*args, env=None):
    runner = CliRunner()
    return runner.invoke(replay, list(args), env=env, catch_exceptions=False)


def as_json(result):
    return json.loads(result.stdout)


def test_text_timeline_lists_every_event_and_a_summary():
    result = invoke(BASIC)
    assert result.exit_code == 0
    run = read_journal(BASIC)
    lines = result.stdout.splitlines()
    assert len(lines) == len(run.events) + 2
    for event in run.events:
        assert any(event.name in line and f"[{event.status}]" in line for line in lines)
    assert lines[-1].strip() == "status completed, not deviated; 5 activities: 5 succeeded"


def test_json_document_has_every_event_with_offset_times():
    result = invoke(CONTINUOUS, "--format", "json")
    assert result.exit_code == 0
    document = as_json(result)
    (run,) = document["runs"]
    expected = read_journal(CONTINUOUS)
    assert run["journal"] == CONTINUOUS
    assert run["run_id"] == expected.run_id
    assert [e["id"] for e in run["events"]] == [e.id for e in expected.events]
    for event in run["events"]:
        assert set(event) == {"id", "kind", "phase", "name", "activity_type", "start", "end",
                              "status", "tags", "fields"}
        assert parse_time(event["start"]).utcoffset() == timedelta(0)
        assert event["start"].endswith("+00:00")


def test_dry_run_without_targets_plans_nothing():
    document = as_json(invoke(BASIC, "--dry-run", "--format", "json"))
    assert document["runs"][0]["plans"] == []


def test_bad_journal_does_not_stop_the_others_and_exits_3():
    result = invoke(TRUNCATED, BASIC, "--format", "json")
    assert result.exit_code == 3
    assert [r["journal"] for r in as_json(result)["runs"]] == [BASIC]
    assert result.stderr.strip().splitlines() == [
        f"chaos-replay: error: {TRUNCATED}: line 195 column 17: truncated JSON: Expecting value"
    ]


def test_directory_and_glob_inputs(tmp_path):
    for name in ("generated-basic.json", "generated-deviated.json"):
        with open(os.path.join(JOURNALS, name), "rb") as source:
            (tmp_path / name).write_bytes(source.read())
    by_dir = as_json(invoke(str(tmp_path), "--format", "json"))
    by_glob = as_json(invoke(str(tmp_path / "generated-*.json"), "--format", "json"))
    assert [os.path.basename(r["journal"]) for r in by_dir["runs"]] == [
        "generated-basic.json", "generated-deviated.json"]
    assert [r["run_id"] for r in by_glob["runs"]] == [r["run_id"] for r in by_dir["runs"]]


def test_empty_directory_is_an_input_error(tmp_path):
    result = invoke(str(tmp_path))
    assert result.exit_code == 3
    assert "is a directory" in result.stderr


def test_shift_to_keeps_offsets_and_tags_replayed():
    target = "2030-01-02T03:04:05+00:00"
    original = read_journal(CONTINUOUS)
    [document] = as_json(invoke(CONTINUOUS, "--format", "json", "--shift-to", target))["runs"]
    shifted = document["events"]
    origin = original.events[0].start
    new_origin = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for before, after in zip(original.events, shifted):
        assert parse_time(after["start"]) - new_origin == before.start - origin
        assert after["tags"] == {"replayed": "true"}
        assert after["id"] != before.id
    # A shifted run is its own run, with ids derived from the original's and the instant.
    assert document["run_id"] != original.run_id
    [again] = as_json(invoke(CONTINUOUS, "--format", "json", "--shift-to", target))["runs"]
    assert again["run_id"] == document["run_id"]
    assert [event["id"] for event in again["events"]] == [event["id"] for event in shifted]


def test_shift_to_now_lands_near_now():
    events = as_json(invoke(BASIC, "--format", "json", "--shift-to", "now"))["runs"][0]["events"]
    assert abs(parse_time(events[0]["start"]) - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_tags_and_only_actions():
    events = as_json(invoke(BASIC, "--format", "json", "--tag", "team:sre", "--tag", "env:ci",
                            "--only-actions"))["runs"][0]["events"]
    assert all(e["tags"] == {"team": "sre", "env": "ci"} for e in events)
    assert not [e for e in events if e["activity_type"] == "probe"]
    assert [e for e in events if e["activity_type"] == "action"]


@pytest.mark.parametrize("args, code, text", [
    (["--tag", "novalue"], EXIT_USAGE, "is not key:value"),
    (["--shift-to", "tomorrow"], EXIT_USAGE, "neither 'now' nor an ISO-8601 time"),
    (["--shift-to", "now", "--only-undelivered"], EXIT_USAGE, "--shift-to makes new runs"),
    (["--var", "novalue"], 4, "configuration --var"),
])
def test_usage_and_config_errors(args, code, text):
    result = invoke(BASIC, *args)
    assert result.exit_code == code
    assert text in result.stderr


def test_bad_config_file_exits_4_and_names_it(tmp_path):
    config = tmp_path / "targets.json"
    config.write_text("{not json", encoding="utf-8")
    result = invoke(BASIC, "--config", str(config))
    assert result.exit_code == 4
    assert result.stderr.startswith(f"chaos-replay: error: configuration --config: {config}: line 1")
    assert result.stdout == ""


def test_bad_var_file_exits_4(tmp_path):
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("configuration: [unclosed", encoding="utf-8")
    result = invoke(BASIC, "--var-file", str(var_file))
    assert result.exit_code == 4
    assert f"--var-file {var_file}" in result.stderr


def test_help_documents_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "3 invalid journal input" in result.stdout
    assert "5 some events could not be delivered" in result.stdout


def test_console_script_as_a_subprocess():
    completed = subprocess.run([os.path.join(BIN, "chaos-replay"), BASIC, "--format", "json"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["runs"][0]["run_id"] == read_journal(BASIC).run_id


def test_bad_input_as_a_subprocess_has_no_traceback(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    completed = subprocess.run([os.path.join(BIN, "chaos-replay"), str(empty)],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 3
    assert completed.stderr == f"chaos-replay: error: {empty}: empty file\n"


def test_ctrl_c_while_a_server_hangs_exits_130_at_once_and_says_what_it_left():
    with Blackhole() as hung:
        process = subprocess.Popen(
            [os.path.join(BIN, "chaos-replay"), BASIC, "--influx-url", hung.url, "--influx-database", "d",
             "--influx-timeout", "60", "--influx-retries", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while hung.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hung.connections > 0, "the write never reached the server"
        process.send_signal(signal.SIGINT)
        # The write in flight would hold the process for its 60 s timeout if it were waited for.
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == EXIT_INTERRUPTED
    assert stderr.strip().splitlines() == [
        "chaos-replay: error: interrupted: the runs being sent may be partly delivered; "
        "replaying them again is safe (the same points and annotations are updated)"]


def test_chaos_cli_plugin(tmp_path):
    completed = subprocess.run([os.path.join(BIN, "chaos"), "--no-version-check", "replay", BASIC],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "status completed, not deviated" in completed.stdout


def test_one_openmetrics_file_holds_every_journal_replayed(tmp_path):
    output = tmp_path / "runs.om"
    result = invoke(BASIC, CONTINUOUS, "--openmetrics", str(output))
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    for path in (BASIC, CONTINUOUS):
        assert f'chaostoolkit_run_trace_id="{read_journal(path).run_id}"' in text
    assert text.rstrip().endswith("# EOF")
    assert text.count("# EOF") == 1


def test_the_pushgateway_as_of_now_note_is_said_once(pushgateway):
    result = invoke(BASIC, CONTINUOUS, "--pushgateway-url", pushgateway.url)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("the pushgateway keeps no history") == 1
    assert result.stdout.count("delivered") == 2


def _journal_with_deliveries(tmp_path, label, missed_ids):
    with open(BASIC, encoding="utf-8") as handle:
        journal = json.load(handle)
    run = read_journal(BASIC)
    journal["extensions"] = [{"name": "chaostoolkit-replay", "version": 1, "run_id": run.run_id,
                              "events": [], "deliveries": {label: {
                                  "delivered": len(run.events) - len(missed_ids),
                                  "undelivered": list(missed_ids), "last_error": "refused"}}}]
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    return str(path), run


def _pushgateway_label(url):
    from chaosreplay.config import Settings
    from chaosreplay.sinks.pushgateway import targets

    [target] = targets(Settings(cli={"pushgateway_url": url}, env={}))
    return target.label


def test_only_undelivered_gives_the_pushgateway_the_whole_run(tmp_path, pushgateway):
    import requests

    requests.put(f"{pushgateway.url}/api/v1/admin/wipe", timeout=5)
    label = _pushgateway_label(pushgateway.url)
    run = read_journal(BASIC)
    missed = [e.id for e in run.events if e.kind == "activity"][:1]
    path, _ = _journal_with_deliveries(tmp_path, label, missed)
    result = invoke(path, "--only-undelivered", "--pushgateway-url", pushgateway.url)
    assert result.exit_code == 0, result.output
    metrics = requests.get(f"{pushgateway.url}/metrics", timeout=5).text
    statuses = [line for line in metrics.splitlines()
                if line.startswith("chaostoolkit_activity_status{") and run.run_id in line
                and line.rstrip().endswith(" 1")]
    assert len(statuses) == sum(1 for e in run.events if e.kind == "activity")


def test_only_undelivered_sends_nothing_to_a_target_that_missed_nothing(tmp_path, pushgateway):
    import requests

    requests.put(f"{pushgateway.url}/api/v1/admin/wipe", timeout=5)
    path, run = _journal_with_deliveries(tmp_path, _pushgateway_label(pushgateway.url), [])
    result = invoke(path, "--only-undelivered", "--pushgateway-url", pushgateway.url)
    assert result.exit_code == 0, result.output
    assert "the live delivery missed nothing: not sent again" in result.stdout
    assert run.run_id not in requests.get(f"{pushgateway.url}/metrics", timeout=5).text
