"""Live delivery records every control's targets and ends on time, whatever the server does.

Real `chaos run` subprocesses, real servers (influxd, pushgateway, the Grafana
stand-in) and small misbehaving loopback servers (tests/blackhole.py): the
wall time of a run is compared with a baseline run measured in the same test.
"""
import json

import pytest
from click.testing import CliRunner

from chaosreplay.cli import replay
from chaosreplay.journal import read_journal
from chaosreplay.sinks.grafana_annotations import run_annotations, run_tag
from tests.blackhole import Answering
from tests.grafana_standin import EDITOR_TOKEN, grafana  # noqa: F401 (fixture)
from tests.prometheus_servers import pushgateway  # noqa: F401 (fixture)
from tests.test_live_controls import DATABASE, chaos_run, deliveries, experiment, influx_control, influxd  # noqa: F401

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

# What the process may take beyond its drain deadline: importing and starting the control,
# interpreter exit, the journal written, a loaded machine's jitter (2.6 s seen with two test
# workers beside two other suites on 2 cores); far below what these tests exclude: a dripping
# answer's minute, or sink retries' 12.5 s of backoff.
MARGIN = 3.0
# The drain deadline the controls are given: a dripping answer would take a minute, so one second
# is as telling as more, and each test waits it out once.
DRAIN_SECONDS = 1


def control(module, **arguments):
    return {"name": module.rsplit(".", 1)[-1],
            "provider": {"type": "python", "module": f"chaosreplay.controls.{module}", "arguments": arguments}}


def dripping(request):
    """A whole answer that would take a minute at one byte a second."""
    return (204, {"X-Padding": "." * 60}, b"")


def test_three_controls_declared_separately_record_every_target(tmp_path, influxd, grafana, pushgateway):
    controls = [influx_control(influxd.url),
                control("grafana", url=grafana.url, token=EDITOR_TOKEN),
                control("pushgateway", url=pushgateway.url, job="separate")]
    completed, _, journal_path = chaos_run(tmp_path, "separate", experiment(controls))
    assert completed.returncode == 0, completed.stderr
    _, record = deliveries(journal_path)
    assert sorted(label.split()[0] for label in record) == ["grafana", "influx", "pushgateway"], record
    assert all(entry["undelivered"] == [] for entry in record.values()), json.dumps(record)
    run = read_journal(journal_path)
    assert len(grafana.with_tag(run_tag(run.run_id))) == len(run_annotations(run))

    grafana_requests = grafana.count()
    result = CliRunner().invoke(replay, [journal_path, "--only-undelivered"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # Every target got everything live: nothing is sent again, not even the look-up.
    assert grafana.count() == grafana_requests
    assert result.output.count("missed nothing") == 3, result.output


@pytest.mark.parametrize("section", ["influx", "grafana", "pushgateway"])
def test_a_server_dripping_its_answer_does_not_keep_chaos_run_alive(tmp_path, section):
    _, baseline_seconds, _ = chaos_run(tmp_path, "baseline", experiment())
    arguments = {"url": None, "drain_timeout": DRAIN_SECONDS}
    if section == "influx":
        arguments["database"] = DATABASE
    with Answering(dripping, drip=1.0) as server:
        arguments["url"] = server.url
        completed, seconds, journal_path = chaos_run(tmp_path, "drip", experiment([control(section, **arguments)]))
        assert server.received, "the control should have sent something"
    assert completed.returncode == 0, completed.stderr
    assert seconds - baseline_seconds < DRAIN_SECONDS + MARGIN, (seconds, baseline_seconds)
    # The senders left behind die with the process, quietly.
    assert "Traceback" not in completed.stderr and "Fatal" not in completed.stderr, completed.stderr
    _, record = deliveries(journal_path)
    [entry] = record.values()
    assert entry["undelivered"], entry


def test_a_pushgateway_dripping_the_end_of_run_delete_does_not_keep_chaos_run_alive(tmp_path):
    _, baseline_seconds, _ = chaos_run(tmp_path, "baseline", experiment())
    answers = {"PUT": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
               "DELETE": b"HTTP/1.1 202 Accepted\r\nX-Padding: " + b"." * 60 + b"\r\nContent-Length: 0\r\n\r\n"}
    drip = {"PUT": 0.0, "DELETE": 1.0}
    with Answering(lambda request: answers[request.method], drip=drip) as server:
        gateway = control("pushgateway", url=server.url, delete_at_end=True, drain_timeout=DRAIN_SECONDS)
        completed, seconds, _ = chaos_run(tmp_path, "delete", experiment([gateway]))
        methods = {request.method for request in server.received}
    assert completed.returncode == 0, completed.stderr
    assert methods == {"PUT", "DELETE"}
    assert seconds - baseline_seconds < DRAIN_SECONDS + MARGIN, (seconds, baseline_seconds)
    assert "delete group" in completed.stderr or "not done within the drain deadline" in completed.stderr


def test_a_failing_server_with_sink_retries_ends_at_the_drain_deadline(tmp_path):
    _, baseline_seconds, _ = chaos_run(tmp_path, "baseline", experiment())
    with Answering(lambda request: (500, {}, b"overloaded")) as server:
        live = control("live", influx={"url": server.url, "database": DATABASE, "retries": 5}, drain_timeout=1)
        completed, seconds, journal_path = chaos_run(tmp_path, "failing", experiment([live]))
    assert completed.returncode == 0, completed.stderr
    assert seconds - baseline_seconds < 1 + MARGIN, (seconds, baseline_seconds)
    _, record = deliveries(journal_path)
    [entry] = record.values()
    assert entry["undelivered"], entry


def test_only_undelivered_twice_re_sends_once_then_says_everything_is_through(tmp_path, influxd):
    influxd.stop()
    completed, _, journal_path = chaos_run(tmp_path, "down", experiment([influx_control(influxd.url)]))
    assert completed.returncode == 0, completed.stderr
    run = read_journal(journal_path)
    influxd.start()
    first = CliRunner().invoke(replay, [journal_path, "--only-undelivered"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert sorted(p["event_id"] for p in influxd.points()) == sorted(e.id for e in run.events)
    with open(journal_path + ".redelivered", encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["run_id"] == run.run_id and [entry["undelivered"] for entry in record["deliveries"].values()] == [[]]

    # Down again: a second send would fail, so exit 0 shows nothing was sent.
    influxd.stop()
    second = CliRunner().invoke(replay, [journal_path, "--only-undelivered"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "everything is through" in second.output
