"""`--no-journal-targets`: replaying someone else's journal sends only where the command says.

By default a replay also sends to the targets the journal names (its
`configuration.influxdb`/`grafana`, its live controls' sections), so chaosdb
journals replay unchanged and `--only-undelivered` re-sends to what the live
run missed. With the option those are ignored, whatever the journal holds.
"""
import json

from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.delivery import DELIVERIES_KEY
from tests.crafted_journals import write_journal
from tests.recording_server import recorders  # noqa: F401 (fixture)


def invoke(*args):
    return CliRunner().invoke(replay, list(args), env={"INFLUX_URL": None, "GRAFANA_URL": None,
                                                       "PUSHGATEWAY_URL": None}, catch_exceptions=False)


def journal_with_targets(tmp_path, influx, grafana, gateway, live_influx):
    def change(document):
        experiment = document["experiment"]
        experiment["configuration"]["influxdb"] = {"host": "127.0.0.1", "port": int(influx.url.rsplit(":", 1)[1]),
                                                   "database": "theirs"}
        experiment["configuration"]["grafana"] = [{"url": grafana.url, "tags": ["theirs"]}]
        experiment["controls"] = [{"name": "live", "provider": {
            "type": "python", "module": "chaosreplay.controls.live",
            "arguments": {"pushgateway": {"url": gateway.url}, "influx": {"url": live_influx.url,
                                                                          "database": "live"}}}}]
    return write_journal(tmp_path, change, name="their-journal")


def test_by_default_the_journals_targets_are_sent_to(tmp_path, recorders):
    servers = [recorders() for _ in range(4)]
    journal = journal_with_targets(tmp_path, *servers)
    result = invoke(journal)
    assert result.exit_code == 0, result.stderr
    # The live control's influx section wins over chaosdb's configuration.influxdb (precedence).
    influx, grafana, gateway, live_influx = servers
    assert grafana.requests and gateway.requests and live_influx.requests
    assert influx.requests == []


def test_no_journal_targets_sends_only_to_the_commands_targets(tmp_path, recorders):
    servers = [recorders() for _ in range(4)]
    mine = recorders()
    journal = journal_with_targets(tmp_path, *servers)
    for extra in ([], ["--dry-run"], ["--format", "json"]):
        result = invoke(journal, "--no-journal-targets", "--influx-url", mine.url, "--influx-database", "mine", *extra)
        assert result.exit_code == 0, result.stderr
        for server in servers:
            assert server.requests == [], extra
        for url in (server.url for server in servers):
            assert url not in result.stdout
    writes = [request for request in mine.requests if request.path == "/write"]
    assert len(writes) == 2 and all(request.query["db"] == ["mine"] for request in writes)
    # Nothing of the journal's configuration reaches the command's target either: no "theirs" tag.
    result = invoke(journal, "--no-journal-targets", "--grafana-url", mine.url)
    assert result.exit_code == 0, result.stderr
    posts = [json.loads(request.body) for request in mine.requests if request.method == "POST"
             and request.path == "/api/annotations"]
    assert posts and all("theirs" not in post["tags"] for post in posts)


def test_no_journal_targets_and_nothing_else_only_shows_the_timeline(tmp_path, recorders):
    servers = [recorders() for _ in range(4)]
    journal = journal_with_targets(tmp_path, *servers)
    result = invoke(journal, "--no-journal-targets")
    assert result.exit_code == 0, result.stderr
    assert "->" not in result.stdout
    assert all(server.requests == [] for server in servers)


def test_only_undelivered_with_no_journal_targets_leaves_the_live_targets_alone(tmp_path, recorders):
    servers = [recorders() for _ in range(4)]
    mine = recorders()
    journal_path = journal_with_targets(tmp_path, *servers)
    with open(journal_path, encoding="utf-8") as handle:
        document = json.load(handle)
    gateway_label = f"pushgateway {servers[2].url} job=chaostoolkit"
    document["extensions"] = [{"name": "chaostoolkit-replay", "version": 1, "events": [],
                               DELIVERIES_KEY: {gateway_label: {"delivered": 0, "undelivered": ["x"],
                                                                "last_error": "down"}}}]
    with open(journal_path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    result = invoke(journal_path, "--only-undelivered", "--no-journal-targets", "--pushgateway-url", mine.url)
    assert result.exit_code == 0, result.stderr
    assert all(server.requests == [] for server in servers)
    assert [request.method for request in mine.requests] == ["PUT"]
