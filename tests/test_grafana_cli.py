"""`chaos-replay J --grafana-url URL --grafana-token T` end to end, against the Grafana stand-in."""
import glob
import hashlib
import json
import os

import pytest
from click.testing import CliRunner

from replay.cli import replay
from replay.journal import read_journal
from replay.sinks.grafana_annotations import run_tag
from tests.blackhole import Refusing
from tests.conftest import JOURNALS
from tests.grafana_standin import EDITOR_TOKEN, grafana, grafana_pair  # noqa: F401 (fixtures)

VALID_JOURNALS = sorted(path for path in glob.glob(os.path.join(JOURNALS, "*.json"))
                        if "truncated" not in os.path.basename(path))
BASIC = os.path.join(JOURNALS, "generated-basic.json")
# No GRAFANA_* from the machine running the tests.
CLEAN_ENV = {name: None for name in os.environ if name.startswith("GRAFANA_")}


def invoke(*args, env=None):
    result = CliRunner().invoke(replay, [*args, "--grafana-retries", "0"], env={**CLEAN_ENV, **(env or {})},
                                catch_exceptions=False)
    return result


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_every_journal_creates_its_annotations_once(grafana):
    before = {path: _digest(path) for path in VALID_JOURNALS}
    first = invoke(*VALID_JOURNALS, "--grafana-url", grafana.url, "--grafana-token", EDITOR_TOKEN)
    assert first.exit_code == 0, first.output
    assert grafana.violations == []
    for path in VALID_JOURNALS:
        run = read_journal(path)
        assert grafana.with_tag(run_tag(run.run_id)), path
    created = len(grafana.annotations)
    posts = grafana.count("POST")

    second = invoke(*VALID_JOURNALS, "--grafana-url", grafana.url, env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert second.exit_code == 0, second.output
    assert len(grafana.annotations) == created and grafana.count("POST") == posts
    assert grafana.count("GET") == 2 * len(VALID_JOURNALS)
    # Replaying reads journals, never writes them: no token can end up in one.
    assert {path: _digest(path) for path in VALID_JOURNALS} == before
    for output in (first.output, second.output):
        assert EDITOR_TOKEN not in output


def test_two_servers_and_one_down_exit_5_and_the_other_gets_everything(grafana):
    run = read_journal(BASIC)
    with Refusing() as down:
        result = invoke(BASIC, "--grafana-url", down.url, "--grafana-url", grafana.url,
                        "--grafana-token", EDITOR_TOKEN)
    assert result.exit_code == 5
    assert f"grafana {down.url}: delivered 0" in result.output and "refused" in result.output
    assert len(grafana.with_tag(run_tag(run.run_id))) == sum(1 for e in run.events if e.kind != "phase")
    assert EDITOR_TOKEN not in result.output


def test_dry_run_shows_the_requests_per_server_with_credentials_masked(grafana_pair):
    first, second = grafana_pair
    password = "very-secret-pa55"
    result = invoke(BASIC, "--dry-run", "--format", "json", "--grafana-url", first.url,
                    "--grafana-url", f"http://admin:{password}@{second.url.split('//')[1]}",
                    env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert result.exit_code == 0, result.output
    assert EDITOR_TOKEN not in result.output and password not in result.output
    [document] = json.loads(result.stdout)["runs"]
    grafana_plans = {plan["target"]: plan["requests"] for plan in document["plans"]
                     if plan["target"].startswith("grafana")}
    assert set(grafana_plans) == {f"grafana {first.url}", f"grafana {second.url}"}
    for requests_ in grafana_plans.values():
        assert requests_[0]["method"] == "GET"
        assert all(r["headers"].get("Authorization") == "Bearer ***" for r in requests_)
        assert all(r["method"] == "POST" for r in requests_[1:])
    assert first.count() == second.count() == 0


def test_a_token_without_a_server_is_a_configuration_error():
    result = invoke(BASIC, "--grafana-token", EDITOR_TOKEN)
    assert result.exit_code == 4
    assert "--grafana-token given but no server" in result.output
    assert EDITOR_TOKEN not in result.output
