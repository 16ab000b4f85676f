"""Live delivery: ship events to targets while a run goes on, never holding the run up.

The experiment's threads only call `DeliveryEngine.offer`, which appends to a
bounded in-memory queue and returns (a full queue drops the event and counts it
as undelivered; it never waits). One daemon worker per target sends what has
queued up since its last request as one batch (`Target.send`), retries failed
batches with exponential backoff and jitter a bounded number of times, and
gives up on a target at once when the backend refuses the credentials. When the
run ends, `DeliveryEngine.close` lets the workers drain for at most
`drain_timeout` seconds, then reports per target which events were delivered
and which were not; that report goes into the journal so that
`chaos-replay --only-undelivered` re-sends exactly the missing events
(`undelivered_run`).
"""
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from . import CONTROL_PACKAGES
from .config import as_number
from .events import ACTIVITY, EXPERIMENT, PHASE, Event, Run
from .render import printable

__all__ = [
    "LivePolicy",
    "TargetReport",
    "DeliveryEngine",
    "warning_line",
    "replay_command",
    "undelivered_run",
    "DELIVERIES_KEY",
    "LiveBatch",
    "SECTIONS",
    "POLICY_KEYS",
    "LIVE_OPTIONS",
    "control_target_sections",
    "sections_from_controls",
]

# Key of the delivery record inside the recorder's journal extension.
DELIVERIES_KEY = "deliveries"

# chaosreplay.controls.influx declared without a URL falls back on chaosdb.influx's
# defaults (localhost:8086, database gatlingdb) when the experiment has no
# `configuration.influxdb`, as chaosdb did; this key of its section says so.
CHAOSDB_DEFAULTS_KEY = "chaosdb_defaults"
# chaostoolkit-prometheus' pushgateway control's default `pushgateway_url`.
PEER_PUSHGATEWAY_URL = "http://localhost:9091"

# Target sections a live control can ship to: the same keys as `chaos-replay --config`.
SECTIONS = ("influx", "grafana", "pushgateway")
POLICY_KEYS = ("drain_timeout", "queue_size", "batch_size", "retries", "backoff", "backoff_max")
# Arguments of every live control that are about the shipping, not a target.
LIVE_OPTIONS = POLICY_KEYS + ("strict", "events_path", "tags")
# Journals name the live controls by their package path, or by the deprecated
# top-level names of 0.1 (`controls.influx`, ...): both describe the same targets.
_SINGLE_SECTION_CONTROLS = {
    f"{prefix}.{section}": section for prefix in CONTROL_PACKAGES for section in SECTIONS
}
# The peers' controls, as journals of runs made with them declare them: a replay
# sends to the servers they sent to, with their defaults.
_SINGLE_SECTION_CONTROLS.update({"chaosdb.influx": "influx", "chaosdb.grafana": "grafana",
                                 "chaosprometheus.metrics": "pushgateway"})
_LIVE_CONTROLS = {f"{prefix}.live" for prefix in CONTROL_PACKAGES}

logger = logging.getLogger("chaostoolkit_replay.delivery")


@dataclass(frozen=True)
class LivePolicy:
    """How hard a live control tries; every value can be set as a control argument."""

    drain_timeout: float = 5.0
    queue_size: int = 10000
    batch_size: int = 500
    retries: int = 5
    backoff: float = 0.2
    backoff_max: float = 5.0

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> "LivePolicy":
        """The policy from control arguments; a bad value raises ConfigError naming it."""
        bounds = {"drain_timeout": (float, 0), "backoff": (float, 0), "backoff_max": (float, 0),
                  "queue_size": (int, 1), "batch_size": (int, 1), "retries": (int, 0)}
        return cls(**{name: as_number(arguments[name], name, kind, minimum)
                      for name, (kind, minimum) in bounds.items() if arguments.get(name) is not None})

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1-based): exponential, capped, jittered.

        Half the delay is fixed and half random, so workers retrying the same
        restarted backend do not come back in lockstep.
        """
        ceiling = min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class TargetReport:
    """What one target got of one run, as recorded in the journal."""

    label: str
    delivered: int
    undelivered: Tuple[str, ...]
    last_error: Optional[str]

    def to_record(self) -> dict:
        return {
            "delivered": self.delivered,
            "undelivered": list(self.undelivered),
            "last_error": self.last_error,
        }


class _TargetWorker:
    """One target's queue, background sender and bookkeeping."""

    def __init__(self, target, source: str, policy: LivePolicy, run_details: Mapping[str, Any]):
        self.target = target
        self.run_details = dict(run_details)
        self.label = target.label
        # Most sinks key points by status, so only a settled event may be sent;
        # a target that updates in place (Grafana) also takes open ones.
        self._ships_open = getattr(target, "ships_open_events", False)
        self.source = source
        self.policy = policy
        self._lock = threading.Condition()
        self._queue: Deque[Event] = deque()
        # Every id offered, and those whose latest version has not reached
        # the target yet (offer order).
        self._offered: set = set()
        self._pending: Dict[str, Event] = {}
        self._title = ""
        self._last_error: Optional[str] = None
        self._closing = False
        self._deadline = float("inf")
        # Set when the target refused our credentials: nothing more is sent.
        self._refused = False
        self._thread = threading.Thread(
            target=self._work, name=f"chaostoolkit-replay live {self.label}", daemon=True
        )
        self._thread.start()

    def offer(self, event: Event) -> None:
        with self._lock:
            self._offered.add(event.id)
            self._pending[event.id] = event
            if event.kind == EXPERIMENT:
                self._title = event.name
            if (_is_open(event) and not self._ships_open) or self._refused or self._closing:
                return
            if len(self._queue) >= self.policy.queue_size:
                self._last_error = self._last_error or (
                    f"queue full ({self.policy.queue_size} events waiting)"
                )
                return
            self._queue.append(event)
            self._lock.notify()

    def close(self, deadline: float) -> None:
        with self._lock:
            self._closing = True
            self._deadline = deadline
            self._lock.notify()

    def join(self, deadline: float) -> None:
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def report(self) -> TargetReport:
        with self._lock:
            still_open = sum(1 for event in self._pending.values() if _is_open(event))
            return TargetReport(
                label=self.label,
                delivered=len(self._offered) - len(self._pending),
                undelivered=tuple(self._pending),
                last_error=self._last_error or (
                    f"{still_open} event(s) still open when the run ended" if still_open else None
                ),
            )

    def _work(self) -> None:
        batch: Dict[str, Event] = {}
        attempt = 0
        while True:
            with self._lock:
                while not self._queue and not batch and not self._closing:
                    self._lock.wait()
                if self._closing and (time.monotonic() >= self._deadline or not (self._queue or batch)):
                    return
                # A newer version of an event already in the batch replaces it.
                while self._queue and len(batch) < self.policy.batch_size:
                    event = self._queue.popleft()
                    batch[event.id] = event
                title = self._title
            delivery_error, failed, refused = self._send(list(batch.values()), title)
            with self._lock:
                for event_id, event in list(batch.items()):
                    if event_id in failed:
                        continue
                    del batch[event_id]
                    if self._pending.get(event_id) is event:
                        del self._pending[event_id]
                if delivery_error:
                    self._last_error = delivery_error
                if not batch:
                    attempt = 0
                    continue
                # Refused credentials do not get better by asking again.
                if refused:
                    self._refused = True
                    self._queue.clear()
                    return
                # During the drain a failure ends the work: the backend had
                # its retries while the run went on.
                if self._closing:
                    return
                attempt += 1
                if attempt > self.policy.retries:
                    batch.clear()
                    attempt = 0
                    continue
                self._lock.wait_for(lambda: self._closing, timeout=self.policy.delay(attempt))

    def _send(self, events: List[Event], title: str) -> Tuple[Optional[str], set, bool]:
        """Send one batch; the error text, the ids that did not get through, whether credentials were refused."""
        try:
            delivery = self.target.send(LiveBatch(events[0].run_id, self.source, tuple(events), title=title,
                                                  **self.run_details))
        except Exception as error:  # a sink bug must not stop the bookkeeping
            # Its text may quote a request, credentials included: it stays out
            # of the journal and the warning line.
            logger.debug("%s: send failed", self.label, exc_info=True)
            return (f"internal error in {self.label} ({type(error).__name__})",
                    {event.id for event in events}, False)
        failed = set(delivery.failed)
        if delivery.error and not failed and not delivery.delivered:
            failed = {event.id for event in events}
        return delivery.error, failed, delivery.refused


def _is_open(event: Event) -> bool:
    """An experiment, phase or activity that has started and not ended yet."""
    return event.end is None and event.kind in (EXPERIMENT, PHASE, ACTIVITY)


@dataclass(frozen=True)
class LiveBatch(Run):
    """A slice of a run being shipped live: it has the run's title even when
    the experiment event (still open) is not part of it."""

    title: str = ""


class DeliveryEngine:
    """Live delivery of one run's events to several targets at once."""

    def __init__(self, targets: Sequence[Any], source: str = "live", policy: LivePolicy = LivePolicy(),
                 run_details: Optional[Mapping[str, Any]] = None):
        """`run_details`: what a live run's batches carry besides events (`Run` fields such as
        `experiment_hash`), known when the run starts."""
        self.policy = policy
        self._workers = [_TargetWorker(target, source, policy, run_details or {}) for target in targets]
        self._reports: Optional[List[TargetReport]] = None
        self._deadline: Optional[float] = None

    def offer(self, event: Event) -> None:
        """Queue an event (a later version of the same id supersedes it); never blocks."""
        for worker in self._workers:
            worker.offer(event)

    def begin_drain(self, drain_timeout: Optional[float] = None) -> float:
        """Let the workers drain for at most `drain_timeout` seconds from now (once); the deadline.

        Called by `close`, or before it, so that several engines of one run
        (live controls declared separately) drain at the same time.
        """
        if self._deadline is None:
            timeout = self.policy.drain_timeout if drain_timeout is None else drain_timeout
            self._deadline = time.monotonic() + timeout
            for worker in self._workers:
                worker.close(self._deadline)
        return self._deadline

    def close(self, drain_timeout: Optional[float] = None) -> List[TargetReport]:
        """Drain for at most `drain_timeout` seconds, then report; later calls return the same.

        Never waits past the deadline: a worker still sending then (a server
        dripping its answer) is a daemon thread and is left behind, its events
        reported undelivered, so the process exits on time.
        """
        if self._reports is None:
            deadline = self.begin_drain(drain_timeout)
            for worker in self._workers:
                worker.join(deadline)
            self._reports = [worker.report() for worker in self._workers]
        return self._reports

    def reports_so_far(self) -> List[TargetReport]:
        """Each target's delivery state now, while the run goes on (nothing waits)."""
        return self._reports or [worker.report() for worker in self._workers]

    def record(self) -> Dict[str, dict]:
        """The journal's `deliveries` record (drains first if not done yet)."""
        return {report.label: report.to_record() for report in self.close()}


def replay_command(journal_path: Optional[str]) -> str:
    return f"chaos-replay {journal_path or '<journal.json>'} --only-undelivered"


def warning_line(report: TargetReport, journal_path: Optional[str]) -> Optional[str]:
    """One line for a target that missed events; None when it got everything."""
    if not report.undelivered:
        return None
    total = report.delivered + len(report.undelivered)
    cause = report.last_error or "not sent within the drain deadline"
    return (
        f"live delivery to {printable(report.label)}: {len(report.undelivered)} of {total} event(s) "
        f"not delivered ({_one_line(cause)}); re-send them with: {replay_command(journal_path)}"
    )


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


def undelivered_run(run: Run, label: str, deliveries: Optional[Mapping[str, Any]] = None) -> Run:
    """The part of `run` that target `label` still needs after the live delivery.

    `deliveries` defaults to the run's recorded extension. A target the record
    does not know (no live control, or another target than live) gets every
    event; a known one gets the events recorded as undelivered, plus the
    experiment event for context (resending it is idempotent).
    """
    if deliveries is None:
        deliveries = run.extension.get(DELIVERIES_KEY) if isinstance(run.extension, Mapping) else None
    record = deliveries.get(label) if isinstance(deliveries, Mapping) else None
    if not isinstance(record, Mapping):
        return run
    missing = record.get("undelivered")
    missing = set(missing) if isinstance(missing, list) else set()
    if not missing:
        return run.with_events(())
    return run.with_events(
        event for event in run.events if event.id in missing or event.kind == EXPERIMENT
    )


def control_target_sections(module: str, arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """The target sections a live control's arguments describe.

    `chaosreplay.controls.live` takes sections by name; `chaosreplay.controls.influx|grafana|pushgateway`
    take one section's keys directly (an empty section means: use chaosdb's
    keys of the experiment's `configuration`).
    """
    if module in _LIVE_CONTROLS:
        return {key: arguments[key] for key in SECTIONS if arguments.get(key) is not None}
    section = _SINGLE_SECTION_CONTROLS.get(module)
    if section is None:
        return {}
    keys = {key: value for key, value in arguments.items() if key not in LIVE_OPTIONS}
    # Declared as the peer's control was, with no server named: the peer's default server.
    if section == "influx" and "url" not in keys:
        keys[CHAOSDB_DEFAULTS_KEY] = True
    if section == "pushgateway" and "url" not in keys and "pushgateway_url" not in keys:
        keys["pushgateway_url"] = PEER_PUSHGATEWAY_URL
    return {section: keys}


def sections_from_controls(controls: Any) -> Dict[str, Any]:
    """Targets the live controls declared in a journal's experiment shipped to.

    `chaos-replay` uses them below `--config`, so `chaos-replay journal.json
    --only-undelivered` re-sends to the very targets the live run missed.
    """
    sections: Dict[str, Any] = {}
    for control in controls if isinstance(controls, (list, tuple)) else ():
        provider = control.get("provider") if isinstance(control, Mapping) else None
        if not isinstance(provider, Mapping) or not isinstance(provider.get("module"), str):
            continue
        arguments = provider.get("arguments")
        declared = control_target_sections(provider["module"], arguments if isinstance(arguments, Mapping) else {})
        sections.update({key: value for key, value in declared.items() if value})
    return sections
