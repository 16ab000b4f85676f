"""Configuration of the pushgateway, remote-write and OpenMetrics targets, and what dry-run shows."""
import base64
import json
import os

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.config import Settings
from chaosreplay.errors import EXIT_INVALID_CONFIG, ConfigError
from chaosreplay.journal import read_journal
from chaosreplay.sinks import openmetrics, pushgateway, remote_write
from chaosreplay.sinks.prometheus_series import RUN_ID_LABEL, experiment_ref_for
from tests.conftest import JOURNALS

BASIC = os.path.join(JOURNALS, "generated-basic.json")


def _pushgateway(cli=None, env=None, file=None):
    return pushgateway.targets(Settings(cli=cli or {}, env=env or {}, file=file or {}))


def test_flags_beat_environment_which_beats_the_config_file():
    file = {"pushgateway": {"url": "http://file:9091", "job": "from-file"}}
    env = {"PUSHGATEWAY_URL": "http://env:9091", "PUSHGATEWAY_JOB": "from-env"}
    [from_file] = _pushgateway(file=file)
    [from_env] = _pushgateway(env=env, file=file)
    [from_cli] = _pushgateway(cli={"pushgateway_url": "http://cli:9091", "pushgateway_job": "from-cli"},
                              env=env, file=file)
    assert (from_file.label, from_env.label, from_cli.label) == (
        "pushgateway http://file:9091 job=from-file", "pushgateway http://env:9091 job=from-env",
        "pushgateway http://cli:9091 job=from-cli")
    assert _pushgateway() == []


def test_chaostoolkit_prometheus_control_arguments_pass_straight_through():
    run = read_journal(BASIC)
    arguments = {"pushgateway_url": "http://gw:9091", "job": "chaos", "grouping_key": {"team": "sre/core"},
                 "trace_id": "trace-42", "experiment_ref": "ref-7"}
    [target] = _pushgateway(file={"pushgateway": arguments})
    encoded = base64.urlsafe_b64encode(b"sre/core").decode()
    # The grouping key exactly as given, as chaostoolkit-prometheus pushed it.
    assert target.group_url(run) == f"http://gw:9091/metrics/job/chaos/team@base64/{encoded}"
    [plan] = target.plan(run)
    assert f'{RUN_ID_LABEL}="trace-42"' in plan.body and run.run_id not in plan.body


def test_the_default_group_is_the_experiment_not_the_run():
    run = read_journal(BASIC)
    [target] = _pushgateway(cli={"pushgateway_url": "http://gw:9091/"})
    assert target.group_url(run) == (
        f"http://gw:9091/metrics/job/chaostoolkit/chaostoolkit_experiment_ref/{experiment_ref_for(run.title)}")
    [plan] = target.plan(run)
    assert plan.method == "PUT" and f'{RUN_ID_LABEL}="{run.run_id}"' in plan.body


@pytest.mark.parametrize("section, key, fragment", [
    ({"url": "ftp://gw"}, "pushgateway.url", "http(s)://"),
    ({"url": "http://gw", "grouping_key": ["a"]}, "pushgateway.grouping_key", "label: value"),
    ({"url": "http://gw", "grouping_key": {"bad-name": "x"}}, "pushgateway.grouping_key", "label name"),
    ({"url": "http://gw", "grouping_key": {"job": "x"}}, "pushgateway.grouping_key", "label name"),
    ({"url": "http://gw", "timeout": 0}, "pushgateway.timeout", "more than 0"),
    ({"url": "http://gw", "delete_at_end": "maybe"}, "pushgateway.delete_at_end", "true or false"),
    ({"url": "http://gw", "job": ""}, "pushgateway.job", "empty"),
])
def test_bad_pushgateway_settings_name_the_key(section, key, fragment):
    with pytest.raises(ConfigError) as error:
        _pushgateway(file={"pushgateway": section})
    assert error.value.key == key and fragment in str(error.value) and "\n" not in str(error.value)


def test_a_job_without_a_url_is_an_error():
    with pytest.raises(ConfigError, match="--pushgateway-job given but no URL"):
        _pushgateway(cli={"pushgateway_job": "x"})


def test_credentials_never_show_in_labels_plans_or_errors():
    run = read_journal(BASIC)
    [basic] = _pushgateway(cli={"pushgateway_url": "https://alice:hunter2@gw:9091"})
    [bearer] = _pushgateway(file={"pushgateway": {"url": "http://gw:9091", "token": "t0ken-value"}})
    shown = [basic.label, bearer.label, repr(basic.config), repr(bearer.config),
             *(json.dumps(plan.to_dict()) for target in (basic, bearer) for plan in target.plan(run))]
    assert not any("hunter2" in text or "t0ken-value" in text for text in shown)
    assert basic.plan(run)[0].headers["Authorization"] == "Basic ***"
    assert bearer.plan(run)[0].headers["Authorization"] == "Bearer ***"
    with pytest.raises(ConfigError) as error:
        _pushgateway(cli={"pushgateway_url": "gopher://alice:hunter2@gw"})
    assert "hunter2" not in str(error.value)


def test_remote_write_from_environment_and_its_batch_size_checked():
    [target] = remote_write.targets(Settings(env={"PROMETHEUS_REMOTE_WRITE_URL": "http://p:9090/api/v1/write",
                                                  "PROMETHEUS_REMOTE_WRITE_TOKEN": "abc"}))
    assert target.label == "prometheus remote write http://p:9090/api/v1/write"
    run = read_journal(BASIC)
    plans = target.plan(run)
    assert plans[0].headers["Authorization"] == "Bearer ***" and plans[0].headers["Content-Encoding"] == "snappy"
    assert plans[0].body.rstrip().endswith("# EOF")
    with pytest.raises(ConfigError, match="prometheus_remote_write.batch_size"):
        remote_write.targets(Settings(env={}, file={"prometheus_remote_write": {"url": "http://p", "batch_size": 0}}))


def test_an_unwritable_openmetrics_file_is_one_line(tmp_path):
    run = read_journal(BASIC)
    [target] = openmetrics.targets(Settings(env={"OPENMETRICS_FILE": str(tmp_path / "missing" / "x.om")}))
    delivery = target.send(run)
    assert not delivery.ok and "cannot write" in delivery.error and "\n" not in delivery.error
    assert set(delivery.failed) == {event.id for event in run.events}


def test_dry_run_shows_each_request_and_writes_nothing(tmp_path):
    output = tmp_path / "out.om"
    result = CliRunner().invoke(replay, [
        BASIC, "--dry-run", "--pushgateway-url", "http://gw:9091", "--pushgateway-job", "j",
        "--prometheus-remote-write", "http://p:9090/api/v1/write", "--openmetrics", str(output)],
        env={"PUSHGATEWAY_PASSWORD": "pw-secret", "PUSHGATEWAY_USERNAME": "bob"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PUT http://gw:9091/metrics/job/j/chaostoolkit_experiment_ref/" in result.stdout
    assert "POST http://p:9090/api/v1/write" in result.stdout
    assert f"WRITE {output}" in result.stdout
    assert "pw-secret" not in result.stdout and "Basic ***" in result.stdout
    assert not output.exists()


def test_a_bad_setting_stops_everything_before_sending():
    result = CliRunner().invoke(replay, [BASIC, "--pushgateway-url", "not a url"], env={})
    assert result.exit_code == EXIT_INVALID_CONFIG
    assert "configuration pushgateway.url" in result.stderr
