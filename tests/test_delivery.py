"""The live delivery engine against an in-test target that records what it got and fails on demand."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from chaosreplay.delivery import DeliveryEngine, LivePolicy, TargetReport, undelivered_run, warning_line
from chaosreplay.errors import ConfigError
from chaosreplay.events import Event, Run, activity_id, experiment_id
from chaosreplay.sinks import Delivery

RUN_ID = "0123456789abcdef"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
FAST = LivePolicy(drain_timeout=5.0, backoff=0.01, backoff_max=0.05, retries=3)


def experiment(end=None, status="unknown"):
    return Event(experiment_id(RUN_ID), RUN_ID, "experiment", "exp", T0, end=end, status=status)


def activity(ordinal, end=True):
    start = T0 + timedelta(seconds=ordinal)
    return Event(
        activity_id(RUN_ID, "method", f"act-{ordinal}", 0), RUN_ID, "activity", f"act-{ordinal}",
        start, end=start + timedelta(seconds=0.5) if end else None,
        status="succeeded" if end else "unknown", phase="method", activity_type="action",
    )


class RecordingTarget:
    """Stores every event it accepts (latest version by id); fails as told.

    `fail_next` failures answer like a backend returning 5xx; `error` set makes
    every request fail with it (as refused credentials with `refused`); `reject`
    ids are refused individually (partial write); `delay` makes each request slow.
    """

    def __init__(self, label="fake http://127.0.0.1:1", error=None, refused=False, fail_next=0, reject=(),
                 delay=0.0):
        self.label = label
        self.error = error
        self.refused = refused
        self.fail_next = fail_next
        self.reject = set(reject)
        self.delay = delay
        self.requests = []
        self.runs = []
        self.stored = {}
        self.lock = threading.Lock()

    def send(self, run):
        time.sleep(self.delay)
        with self.lock:
            self.requests.append([event.id for event in run.events])
            self.runs.append(run)
            ids = tuple(event.id for event in run.events)
            if self.error:
                return Delivery(self.label, failed=ids, error=self.error, refused=self.refused)
            if self.fail_next:
                self.fail_next -= 1
                return Delivery(self.label, failed=ids, error="HTTP 503 Service Unavailable")
            accepted = [event for event in run.events if event.id not in self.reject]
            for event in accepted:
                self.stored[event.id] = event
            failed = tuple(event.id for event in run.events if event.id in self.reject)
            return Delivery(
                self.label, delivered=tuple(e.id for e in accepted), failed=failed,
                error="HTTP 400 partial write" if failed else None,
            )


def test_everything_offered_is_delivered_once_in_its_latest_version():
    target = RecordingTarget()
    engine = DeliveryEngine([target], policy=FAST)
    events = [experiment()] + [activity(i, end=False) for i in range(20)]
    for event in events:
        engine.offer(event)
    finished = [activity(i) for i in range(20)] + [experiment(end=T0 + timedelta(seconds=30), status="completed")]
    for event in finished:
        engine.offer(event)
    [report] = engine.close()
    assert report == TargetReport(target.label, delivered=21, undelivered=(), last_error=None)
    assert target.stored == {event.id: event for event in finished}
    assert warning_line(report, "journal.json") is None


def test_open_events_are_not_shipped_and_batches_carry_the_run_title():
    target = RecordingTarget()
    engine = DeliveryEngine([target], policy=LivePolicy(batch_size=2))
    engine.offer(experiment())
    for i in range(10):
        engine.offer(activity(i, end=False))
        engine.offer(activity(i))
    engine.offer(experiment(end=T0 + timedelta(seconds=30), status="completed"))
    [report] = engine.close()
    assert report.delivered == 11
    assert all(event.end is not None for event in target.stored.values())
    assert len(target.requests) >= 5
    assert {run.title for run in target.runs} == {"exp"}


def test_events_still_open_at_the_end_are_undelivered_and_say_why():
    target = RecordingTarget()
    engine = DeliveryEngine([target], policy=FAST)
    engine.offer(experiment())
    engine.offer(activity(0))
    engine.offer(activity(1, end=False))
    [report] = engine.close()
    assert set(report.undelivered) == {experiment().id, activity(1).id}
    assert report.delivered == 1
    assert "(2 event(s) still open when the run ended)" in warning_line(report, "j.json")


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_transient_failures_are_retried_while_the_run_goes_on():
    target = RecordingTarget(fail_next=2)
    engine = DeliveryEngine([target], policy=FAST)
    for i in range(5):
        engine.offer(activity(i))
    wait_until(lambda: len(target.stored) == 5)
    [report] = engine.close()
    assert report.undelivered == () and report.delivered == 5
    assert len(target.stored) == 5
    assert report.last_error == "HTTP 503 Service Unavailable"


def test_the_drain_gives_a_failing_target_one_last_attempt_not_retries():
    target = RecordingTarget(fail_next=1)
    engine = DeliveryEngine([target], policy=LivePolicy(backoff=5.0))
    engine.offer(activity(0))
    wait_until(lambda: target.requests)
    started = time.monotonic()
    [report] = engine.close()
    assert time.monotonic() - started < 1.0, "the backoff sleep is cut short by the end of the run"
    assert len(target.requests) == 2
    assert report.undelivered == () and report.last_error == "HTTP 503 Service Unavailable"


def test_a_target_down_for_the_whole_run_reports_every_event_and_drains_fast():
    target = RecordingTarget(error="connection refused: http://127.0.0.1:1")
    engine = DeliveryEngine([target], policy=LivePolicy(drain_timeout=5.0, backoff=0.01, retries=1000))
    events = [experiment()] + [activity(i) for i in range(30)]
    for event in events:
        engine.offer(event)
    started = time.monotonic()
    [report] = engine.close()
    assert time.monotonic() - started < 1.0
    assert set(report.undelivered) == {event.id for event in events}
    assert report.delivered == 0
    line = warning_line(report, "runs/journal.json")
    assert line == (
        f"live delivery to {target.label}: 31 of 31 event(s) not delivered "
        "(connection refused: http://127.0.0.1:1); re-send them with: "
        "chaos-replay runs/journal.json --only-undelivered"
    )


def test_refused_credentials_stop_the_target_after_one_request():
    target = RecordingTarget(error="HTTP 401 Unauthorized: invalid API key", refused=True)
    engine = DeliveryEngine([target], policy=LivePolicy(backoff=0.01, retries=50))
    for i in range(3):
        engine.offer(activity(i))
    time.sleep(0.2)
    for i in range(3, 6):
        engine.offer(activity(i))
    [report] = engine.close()
    assert len(target.requests) == 1
    assert len(report.undelivered) == 6
    assert "401" in report.last_error


def test_only_the_refused_flag_stops_a_target_not_its_error_text():
    target = RecordingTarget(error="HTTP 401 from an upstream proxy, try again later")
    engine = DeliveryEngine([target], policy=FAST)
    engine.offer(activity(0))
    # Retries happen while the run goes on (a failure during the drain ends the work).
    deadline = time.monotonic() + 10
    while len(target.requests) < 1 + FAST.retries and time.monotonic() < deadline:
        time.sleep(0.01)
    [report] = engine.close()
    assert len(target.requests) == 1 + FAST.retries
    assert report.undelivered == (activity(0).id,)


def test_events_rejected_one_by_one_are_given_up_after_the_retries():
    bad = activity(3)
    target = RecordingTarget(reject={bad.id})
    engine = DeliveryEngine([target], policy=FAST)
    for i in range(6):
        engine.offer(activity(i))
    wait_until(lambda: sum(bad.id in ids for ids in target.requests) > FAST.retries)
    time.sleep(0.2)
    [report] = engine.close()
    assert report.undelivered == (bad.id,)
    assert report.delivered == 5
    assert sum(bad.id in ids for ids in target.requests) == FAST.retries + 1


def test_a_full_queue_drops_instead_of_waiting_and_counts_the_drop():
    target = RecordingTarget(delay=0.3)
    engine = DeliveryEngine([target], policy=LivePolicy(queue_size=3, batch_size=1))
    events = [activity(i) for i in range(20)]
    started = time.monotonic()
    for event in events:
        engine.offer(event)
    assert time.monotonic() - started < 0.1
    [report] = engine.close(drain_timeout=10)
    assert report.delivered == len(target.stored)
    assert set(report.undelivered) == {e.id for e in events} - set(target.stored)
    assert report.undelivered and "queue full" in report.last_error


def test_the_drain_is_bounded_when_the_target_hangs():
    target = RecordingTarget(delay=30)
    engine = DeliveryEngine([target], policy=LivePolicy(drain_timeout=0.5))
    engine.offer(activity(0))
    started = time.monotonic()
    [report] = engine.close()
    assert time.monotonic() - started < 1.5
    assert report.undelivered == (activity(0).id,)
    assert "drain deadline" in warning_line(report, None)
    assert "<journal.json>" in warning_line(report, None)


def test_a_slow_target_does_not_hold_up_a_healthy_one():
    slow, fast = RecordingTarget("slow", delay=30), RecordingTarget("fast")
    engine = DeliveryEngine([slow, fast], policy=LivePolicy(drain_timeout=0.5))
    for i in range(10):
        engine.offer(activity(i))
    slow_report, fast_report = engine.close()
    assert fast_report.delivered == 10 and len(fast.stored) == 10
    assert len(slow_report.undelivered) == 10


def test_a_sink_that_raises_is_reported_not_fatal():
    class Broken(RecordingTarget):
        def send(self, run):
            raise ValueError("Invalid header value 'Bearer s3cret-token\\n'")

    target = Broken()
    engine = DeliveryEngine([target], policy=FAST)
    engine.offer(activity(0))
    [report] = engine.close()
    assert report.undelivered == (activity(0).id,)
    assert report.last_error == f"internal error in {target.label} (ValueError)"
    line = warning_line(report, "journal.json")
    assert "s3cret" not in line and "internal error" in line


def test_close_twice_returns_the_same_report_and_records_it():
    engine = DeliveryEngine([RecordingTarget()], policy=FAST)
    engine.offer(activity(0))
    assert engine.close() is engine.close()
    assert engine.record() == {"fake http://127.0.0.1:1": {"delivered": 1, "undelivered": [], "last_error": None}}


def test_policy_from_control_arguments():
    policy = LivePolicy.from_arguments({"drain_timeout": "2.5", "retries": 2, "url": "ignored"})
    assert policy.drain_timeout == 2.5 and policy.retries == 2
    with pytest.raises(ConfigError, match="drain_timeout"):
        LivePolicy.from_arguments({"drain_timeout": "soon"})
    with pytest.raises(ConfigError, match="queue_size"):
        LivePolicy.from_arguments({"queue_size": 0})


def test_backoff_grows_is_capped_and_jittered():
    policy = LivePolicy(backoff=1.0, backoff_max=8.0)
    delays = [policy.delay(attempt) for attempt in range(1, 8) for _ in range(20)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 1
    assert max(policy.delay(1) for _ in range(50)) <= 1.0
    assert min(policy.delay(7) for _ in range(50)) >= 4.0


def test_undelivered_run_selects_per_target():
    events = (experiment(status="completed"), activity(0), activity(1), activity(2))
    run = Run(RUN_ID, "journal.json", events, extension={"deliveries": {
        "influx a": {"delivered": 3, "undelivered": [events[2].id], "last_error": "x"},
        "grafana b": {"delivered": 4, "undelivered": [], "last_error": None},
    }})
    assert [e.id for e in undelivered_run(run, "influx a").events] == [events[0].id, events[2].id]
    assert undelivered_run(run, "grafana b").events == ()
    assert undelivered_run(run, "pushgateway c").events == events
    assert undelivered_run(Run(RUN_ID, "j", events), "influx a").events == events


def test_sections_from_the_journal_controls():
    from chaosreplay.delivery import sections_from_controls

    controls = [
        {"name": "rec", "provider": {"type": "python", "module": "chaosreplay.controls.recorder"}},
        {"name": "influx", "provider": {"type": "python", "module": "chaosreplay.controls.influx",
                                        "arguments": {"url": "http://i:8086", "database": "d",
                                                      "drain_timeout": 2, "strict": True}}},
        {"name": "live", "provider": {"type": "python", "module": "chaosreplay.controls.live", "arguments": {
            "grafana": [{"url": "http://g:3000"}], "pushgateway": {"url": "http://p:9091"},
            "retries": 3}}},
        {"name": "chaosdb-style", "provider": {"type": "python", "module": "chaosreplay.controls.grafana"}},
        "not a control",
    ]
    assert sections_from_controls(controls) == {
        "influx": {"url": "http://i:8086", "database": "d"},
        "grafana": [{"url": "http://g:3000"}],
        "pushgateway": {"url": "http://p:9091"},
    }
    assert sections_from_controls(None) == {}


def test_journals_naming_the_0_1_modules_give_the_same_targets():
    """A journal written by 0.1 names `controls.influx`/`controls.live`: a replay reaches the same targets."""
    from chaosreplay.delivery import sections_from_controls

    def controls(prefix):
        return [
            {"name": "influx", "provider": {"type": "python", "module": f"{prefix}.influx",
                                            "arguments": {"url": "http://i:8086", "database": "d"}}},
            {"name": "live", "provider": {"type": "python", "module": f"{prefix}.live",
                                          "arguments": {"pushgateway": {"url": "http://p:9091"}}}},
        ]

    expected = {"influx": {"url": "http://i:8086", "database": "d"}, "pushgateway": {"url": "http://p:9091"}}
    assert sections_from_controls(controls("chaosreplay.controls")) == expected
    assert sections_from_controls(controls("controls")) == expected
    assert sections_from_controls(controls("mycompany.controls")) == {}


def test_live_control_without_sections_uses_chaosdb_keys_with_live_timeouts(monkeypatch, tmp_path):
    from chaosreplay.controls.live import LiveShipping

    # A sink that cannot ship live (a file written per send) must not be picked up from the environment.
    monkeypatch.setenv("OPENMETRICS_FILE", str(tmp_path / "live.om"))
    shipping = LiveShipping({}, {}, configuration={
        "influxdb": {"host": "127.0.0.1", "port": 9, "database": "chaos"},
    })
    [target] = shipping.targets
    assert target.label.startswith("influx http://127.0.0.1:9")
    assert (target.config.timeout, target.config.retries) == (2.0, 0)
    shipping.engine.close(drain_timeout=0)
