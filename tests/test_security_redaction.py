"""Secrets that leak into activity errors are masked (`***`) before any event is recorded or sent.

An http action to `http://user:${token}@host/` that fails puts the token in
chaoslib's error text. A real `chaos run` with the recorder and the live
controls (to recording servers) must keep it out of the journal's extension,
the side file and every request; a replay of that journal (whose run entries
chaoslib wrote with the token in clear) out of every request and of the text,
JSON and dry-run output. The run's known secrets: its secrets' values
(resolved), credential values of its configuration, the credentials of the
replay's targets; and the user information of any URL in an error text.
"""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.config import Redactor
from chaosreplay.events import Event, Run
from chaosreplay.journal import EXTENSION_NAME, recorded_extension
from tests.blackhole import Refusing
from tests.conftest import REPO
from tests.crafted_journals import write_journal
from tests.recording_server import RecordingServer, recorders  # noqa: F401 (fixture)

CHAOS = os.path.join(os.path.dirname(sys.executable), "chaos")
EXPERIMENTS = os.path.join(REPO, "tests", "experiments")
TOKEN = "tok-SeCrEt-0123456789"  # from the environment, through the experiment's secrets
INLINE = "inline-pa55-ABCDEF"  # written in the experiment's secrets
CONFIGURED = "configured-api-token-777"  # a credential in the experiment's configuration


def leaky_experiment(closed_port, influx_url, grafana_url):
    return {
        "title": "leaky errors",
        "description": "activities whose errors quote secrets",
        "configuration": {"service_api_token": CONFIGURED},
        "secrets": {"http": {"token": {"type": "env", "key": "LEAKY_TOKEN"}, "password": INLINE}},
        "method": [
            {"type": "action", "name": "call-with-token-in-url",
             "provider": {"type": "http", "url": f"http://user:${{token}}@127.0.0.1:{closed_port}/path",
                          "timeout": 1}},
            {"type": "action", "name": "explode-with-secrets",
             "provider": {"type": "python", "module": "replay_helpers", "func": "explode",
                          "arguments": {"message": f"denied for {INLINE} and {CONFIGURED}"}}},
        ],
        "controls": [{"name": "live", "provider": {
            "type": "python", "module": "chaosreplay.controls.live",
            "arguments": {"influx": {"url": influx_url, "database": "chaos"}, "grafana": [{"url": grafana_url}],
                          "drain_timeout": 10}}}],
    }


def assert_no_secret(text, where):
    for secret in (TOKEN, INLINE, CONFIGURED):
        assert secret not in text, f"{secret} in {where}"


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory):
    """One real `chaos run` of the leaky experiment, with its live deliveries recorded."""
    workdir = tmp_path_factory.mktemp("leaky")
    influx, grafana = RecordingServer(), RecordingServer()
    with Refusing() as closed:
        (workdir / "experiment.json").write_text(json.dumps(leaky_experiment(closed.port, influx.url, grafana.url)),
                                                 encoding="utf-8")
        env = {**os.environ, "LEAKY_TOKEN": TOKEN,
               "PYTHONPATH": os.pathsep.join(filter(None, [EXPERIMENTS, os.environ.get("PYTHONPATH")]))}
        completed = subprocess.run([CHAOS, "--no-version-check", "run", "experiment.json", "--journal-path",
                                    "journal.json"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    yield workdir, completed, influx, grafana
    influx.close()
    grafana.close()


@pytest.mark.e2e
def test_a_real_run_records_and_sends_its_errors_with_the_secrets_masked(leaky_run):
    workdir, completed, influx, grafana = leaky_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    journal = json.loads((workdir / "journal.json").read_text(encoding="utf-8"))
    # chaoslib's own run entries hold the secrets in clear: that is why we mask.
    assert TOKEN in json.dumps(journal["run"]) and INLINE in json.dumps(journal["run"])
    extension = recorded_extension(journal)
    assert extension["name"] == EXTENSION_NAME
    assert_no_secret(json.dumps(extension), "the journal's extension")
    errors = [event["fields"]["error"] for event in extension["events"] if "error" in event["fields"]]
    assert len(errors) == 2 and all("***" in error for error in errors), errors
    assert any("http://***@127.0.0.1" in error for error in errors)
    [side_file] = workdir.glob("*.events.jsonl")
    assert_no_secret(side_file.read_text(encoding="utf-8"), "the side file")
    for server, name in ((influx, "influx"), (grafana, "grafana")):
        assert server.requests, name
        assert_no_secret(server.everything(), name)
    written = "\n".join(request.text for request in influx.requests)
    assert 'ActivityFailed: denied for *** and ***"' in written


@pytest.mark.e2e
@pytest.mark.parametrize("with_token_in_env", [True, False])
def test_replaying_that_journal_masks_the_secrets_everywhere(leaky_run, recorders, with_token_in_env):
    workdir, completed, _, _ = leaky_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    influx, grafana = recorders(), recorders()
    env = {"LEAKY_TOKEN": TOKEN if with_token_in_env else None}
    targets = ["--influx-url", influx.url, "--influx-database", "chaos", "--grafana-url", grafana.url,
               "--no-journal-targets"]
    for output in (["--format", "json"], ["--dry-run"], ["--dry-run", "--format", "json"], []):
        result = CliRunner().invoke(replay, [str(workdir / "journal.json"), *targets, *output], env=env,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        assert_no_secret(result.stdout + result.stderr, f"the output of {output}")
        if output:  # the text timeline shows no errors; the events and requests do
            assert "***" in result.stdout
    for server, name in ((influx, "influx"), (grafana, "grafana")):
        assert server.requests, name
        assert_no_secret(server.everything(), name)
    texts = [json.loads(request.body)["text"] for request in grafana.requests if request.method == "POST"]
    assert any("denied for *** and ***" in text for text in texts), texts


def test_the_commands_own_credentials_are_masked_in_a_journals_errors(tmp_path, recorders):
    influx = recorders()
    password = "my-own-influx-pa55"

    def change(document):
        document["run"][0]["status"] = "failed"
        document["run"][0]["exception"] = [f"ActivityFailed: the server said: bad password {password}\n"]
    journal = write_journal(tmp_path, change)
    result = CliRunner().invoke(replay, [journal, "--influx-url", influx.url, "--influx-database", "chaos"],
                                env={"INFLUX_USERNAME": "me", "INFLUX_PASSWORD": password}, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    [write] = [request for request in influx.requests if request.path == "/write"]
    assert "bad password ***" in write.text
    assert password not in write.text.replace(" ", "") and password not in result.stdout


@pytest.mark.parametrize("text, masked", [
    ("token tok-SeCrEt-0123456789 refused", "token *** refused"),
    ("cut off at the end: tok-SeCrEt-01…", "cut off at the end: ***…"),
    ("http://user:whatever/x@host:9/p failed", "http://***@host:9/p failed"),
    ("'https://a@b@host' and http://plain/x", "'https://***@host' and http://plain/x"),
    ("short abc stays", "short abc stays"),
])
def test_the_redactor(text, masked):
    assert Redactor([TOKEN, "abc"]).text(text) == masked


def _run_of(*events):
    return Run("r", "test", tuple(events))


def _event(index, **changes):
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    return Event(id=f"e{index}", run_id="r", kind=changes.pop("kind", "activity"), name=changes.pop("name", "probe"),
                 start=start, end=start, status="failed", fields=changes.pop("fields", {"provider": "http"}), **changes)


@pytest.mark.parametrize("leaky, where", [
    (_event(9, name=f"call with {TOKEN}"), "name"),
    (_event(9, tags={"team": f"x{TOKEN}"}), "tag"),
    (_event(9, fields={"provider": "http", "error": f"401 for {TOKEN}"}), "error field"),
    (_event(9, kind="mark", fields={"detail": {"headers": [f"Bearer {TOKEN}"]}}), "nested mark field"),
    (_event(9, fields={"error": "cut at the end: tok-SeCrEt-01…"}), "shortened secret"),
])
def test_a_run_is_masked_wherever_one_event_of_many_holds_a_secret(leaky, where):
    """Runs are first looked at as a whole (most hold nothing): the one leaky event among many
    clean ones must still be found and masked, and only it changes."""
    clean = [_event(index) for index in range(200)]
    run = _run_of(*clean[:100], leaky, *clean[100:])
    masked = run.redacted(Redactor([TOKEN]))
    assert TOKEN[:14] not in json.dumps([event.to_dict() for event in masked.events], ensure_ascii=False), where
    assert "***" in json.dumps(masked.events[100].to_dict(), ensure_ascii=False)
    assert all(new is old for new, old in zip(masked.events, run.events) if new.id != "e9")


def test_a_url_with_user_information_is_masked_with_no_known_secret():
    run = _run_of(_event(1), _event(2, fields={"error": "GET http://admin:pw1234@db:8086/q failed"}))
    masked = run.redacted(Redactor())
    assert masked.events[1].fields["error"] == "GET http://***@db:8086/q failed"


def test_a_run_holding_nothing_to_mask_is_the_same_run():
    run = _run_of(*(_event(index) for index in range(50)))
    assert run.redacted(Redactor([TOKEN])) is run
    assert run.redacted(Redactor()) is run
