"""`chaos-replay J --grafana-url URL --grafana-token T` end to end, against the Grafana stand-in."""
import glob
import hashlib
import json
import os
import threading
import time

from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana_annotations import run_tag
from tests.blackhole import Refusing
from tests.conftest import JOURNALS, expected_annotation_kinds
from tests.grafana_standin import EDITOR_TOKEN, GrafanaStandIn, grafana, grafana_pair  # noqa: F401 (fixtures)

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
    lookups = grafana.count("GET")
    # Journals of runs far apart in time are each looked up alone, at most once.
    assert lookups <= len(VALID_JOURNALS)

    second = invoke(*VALID_JOURNALS, "--grafana-url", grafana.url, env={"GRAFANA_TOKEN": EDITOR_TOKEN})
    assert second.exit_code == 0, second.output
    assert len(grafana.annotations) == created and grafana.count("POST") == posts
    assert grafana.count("GET") == 2 * lookups
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
    assert len(grafana.with_tag(run_tag(run.run_id))) == sum(expected_annotation_kinds(run).values())
    assert EDITOR_TOKEN not in result.output


def test_servers_are_sent_to_at_the_same_time(grafana_pair):
    """The first server's look-up waits until the second has stored an annotation: sent one
    after the other, it would wait its whole deadline and the second would get nothing first."""
    first, second = grafana_pair
    second_stored = threading.Event()
    first.hold(second_stored, seconds=20, method="GET")
    watcher = threading.Thread(target=_set_when, args=(lambda: second.annotations, second_stored, 30))
    watcher.start()
    result = invoke(BASIC, "--grafana-url", first.url, "--grafana-url", second.url,
                    "--grafana-token", EDITOR_TOKEN, "--grafana-timeout", "30")
    watcher.join()
    assert result.exit_code == 0, result.output
    [held] = [request for request in first.requests if request.released is not None]
    assert held.released is True
    assert len(first.annotations) == len(second.annotations) > 0


def test_a_server_named_twice_is_sent_to_once(grafana):
    run = read_journal(BASIC)
    result = invoke(BASIC, "--grafana-url", grafana.url, "--grafana-url", grafana.url,
                    "--grafana-token", EDITOR_TOKEN)
    assert result.exit_code == 0, result.output
    assert sum(1 for line in result.output.splitlines() if line.startswith("  -> grafana")) == 1
    assert grafana.count("GET") == 1
    assert len(grafana.annotations) == sum(expected_annotation_kinds(run).values())


def test_two_dashboards_of_one_server_are_sent_to_in_turn(tmp_path):
    """Each target's look-up must see what the other created: while the first target's
    look-up is held, the second must not start its own."""
    server = GrafanaStandIn(dashboards={"first": 1, "second": 2})
    try:
        config = tmp_path / "targets.json"
        config.write_text(json.dumps({"grafana": [
            {"url": server.url, "token": EDITOR_TOKEN, "dashboard_uid": uid} for uid in ("first", "second")]}))
        server.hold(threading.Event(), seconds=1, method="GET")
        result = invoke(BASIC, "--config", str(config))
        assert result.exit_code == 0, result.output
        assert server.violations == []
        methods = [request.method for request in server.requests]
        first_writes = [i for i, request in enumerate(server.requests)
                        if request.method != "GET" and (request.body or {}).get("dashboardUID") == "first"]
        second_lookup = [i for i, method in enumerate(methods) if method == "GET"][1]
        assert first_writes and max(first_writes) < second_lookup
    finally:
        server.close()


def _set_when(condition, event: threading.Event, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    if condition():
        event.set()


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
