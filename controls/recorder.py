"""The recording control: every run event, timestamped, in the journal and in a side file.

Enable it as an experiment-level control, as a global control in the
chaostoolkit settings file, or with `chaos run --control-file`::

    {"name": "chaostoolkit-replay",
     "provider": {"type": "python", "module": "chaosreplay.controls.recorder",
                  "arguments": {"events_path": "./run.events.jsonl", "tags": {"team": "sre"}}}}

chaoslib (>= 1.26) hands `configure_control` its run event registry; the
`Recorder` registered there sees every phase and activity exactly once,
whatever the placement. The per-activity hooks could not do that: they fire
once per declaration, and global controls miss the method and rollback hooks
when the experiment declares a control of its own. Older chaoslib gets the
hook functions instead (`FALLBACK_HOOKS`), made idempotent.

Nothing here may change the run: every entry point chaoslib calls swallows its
own failures and logs them once at WARNING.
"""
import functools
import inspect
import json
import logging
import math
import os
import platform
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import chaoslib
from chaoslib.exceptions import InterruptExecution

from chaosreplay import CONTROL_PACKAGES
from chaosreplay.config import Redactor, Settings, known_secrets
from chaosreplay.errors import ConfigError
from chaosreplay.events import (
    ACTIVITY,
    EXPERIMENT,
    INTERRUPTION,
    MARK,
    PHASE,
    Event,
    activity_id,
    experiment_id,
    interruption_id,
    mark_id,
    parse_time,
    phase_id,
    redacted_event,
    run_id_for,
)
from chaosreplay.journal import (
    EXTENSION_NAME,
    SIDE_FILE_MARKER,
    activity_fields,
    error_text,
    experiment_fields,
    order,
    phase_name,
)
from chaosreplay.render import printable

try:
    from chaoslib.run import RunEventHandler
except ImportError:  # chaoslib < 1.26 has no run event registry: the hooks drive a plain object
    RunEventHandler = object

__all__ = [
    "Recorder",
    "install",
    "configure_control",
    "mark",
    "FALLBACK_HOOKS",
    "hook_functions",
    "EXTENSION_VERSION",
]

logger = logging.getLogger("chaostoolkit.replay.recorder")

EXTENSION_VERSION = 1
# Keys of our journal extension entry that a contributor may not replace.
_CORE_KEYS = ("name", "version", "run_id", "tags", "events")

_warned: set = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning("chaostoolkit-replay: %s", printable(message))


def _guarded(method: Callable) -> Callable:
    """Run a handler for chaoslib without ever letting an error reach it."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as error:  # the run must go on whatever the recorder does
            _warn_once(
                f"handler {method.__name__}",
                f"recording failed in {method.__name__} ({type(error).__name__}: {error});"
                " the run is not affected",
            )
            logger.debug("recorder failure", exc_info=True)
            return None

    return wrapper


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _journal_time(text: Any, default: datetime) -> datetime:
    """A chaoslib timestamp as the reader parses it, or `default` where chaoslib wrote none."""
    try:
        return parse_time(text)
    except (TypeError, ValueError, OverflowError):
        return default


def _json_native(value: Any) -> Any:
    """`value` with only what json.dump (and chaostoolkit's encoder) writes faithfully.

    One value the CLI cannot encode truncates the whole journal, so anything
    else becomes its text, and non-finite floats become text too.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _json_native(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_native(item) for item in value]
    return str(value)


def _user_tags(tags: Any) -> Dict[str, str]:
    """User tags as key -> text; a `["k:v", ...]` list (the CLI's form) is accepted too."""
    if isinstance(tags, Mapping):
        return {str(key): str(value) for key, value in tags.items()}
    if isinstance(tags, (list, tuple)):
        pairs = (str(item).partition(":") for item in tags)
        return {key: value for key, _, value in pairs if key}
    return {}


def _interruption_cause() -> Tuple[Optional[str], str]:
    """(signal name, reason) of the exception chaoslib is handling right now.

    chaoslib turns SIGTERM into InterruptExecution raised from
    `chaoslib.exit._terminate_now`, SIGUSR1/SIGUSR2 into SystemExit(20/30),
    and SIGINT is Python's KeyboardInterrupt.
    """
    error = sys.exc_info()[1]
    if isinstance(error, KeyboardInterrupt):
        return "SIGINT", "received SIGINT"
    if isinstance(error, SystemExit):
        name = {20: "SIGUSR1", 30: "SIGUSR2"}.get(error.code)
        return name, f"received {name}" if name else f"exit requested ({error.code})"
    if error is None:
        return None, "interrupted"
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    raised_by_signal = trace is not None and trace.tb_frame.f_code.co_name == "_terminate_now"
    return ("SIGTERM" if raised_by_signal else None), (str(error) or type(error).__name__)


def _missing_status() -> str:
    """Status of a run entry chaoslib ended without one: what cut it short.

    chaoslib calls `activity_completed` from a `finally`, so the exception
    still propagating is visible; the journal reader gives these entries the
    run's final status, which this matches (interrupted or aborted).
    """
    error = sys.exc_info()[1]
    if error is None:
        return "unknown"
    if isinstance(error, (KeyboardInterrupt, SystemExit, InterruptExecution)):
        return "interrupted"
    return "aborted"


# Compact separators and no circularity check: a side file line is written per
# event on the run's own threads.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


class _SideFile:
    """The NDJSON side file: one os.write per event on an O_APPEND descriptor, so each
    line reaches the file (and survives a SIGKILL) as it is stamped, without buffers."""

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None

    def open(self, header: Dict[str, Any]) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            self._fail(error)
            return
        self._write_line(header)

    def write(self, event: Event) -> None:
        if self._fd is not None:
            self._write_line(event.to_dict())

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as error:
                self._fail(error)
            self._fd = None

    def _write_line(self, record: Dict[str, Any]) -> None:
        try:
            os.write(self._fd, (_LINE_ENCODER.encode(record) + "\n").encode("utf-8"))
        except (OSError, ValueError) as error:
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        reason = getattr(error, "strerror", None) or str(error)
        _warn_once(
            f"side file {self.path}",
            f"cannot write the side file {self.path}: {reason}; events are still"
            " recorded in the journal",
        )
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None


class Recorder(RunEventHandler):
    """Stamps every run event as chaoslib reports it, and keeps the run's record.

    Ids follow the journal reader's rules (chaosreplay.journal), so an event
    recorded here and the same event derived from journal.json are one event.
    """

    def __init__(self, events_path: Any = None, tags: Optional[Mapping[str, Any]] = None):
        # None: default file in the working directory; "" or False: no side file.
        self.events_path = events_path
        self.tags = _user_tags(tags)
        self._lock = threading.RLock()
        self._listeners: List[Callable[[Event], Any]] = []
        self._contributors: List[Callable[[Dict[str, Any]], Mapping[str, Any]]] = []
        self._preparers: List[Callable[[], Any]] = []
        self._run_id: Optional[str] = None
        self._side_file: Optional[_SideFile] = None
        self._events: Dict[str, Event] = {}
        self._ordinals: Dict[Tuple[str, str], int] = {}
        self._mark_ordinals: Dict[str, int] = {}
        # The phase the main thread is in, and the event id of each open phase.
        self._phase: Optional[str] = None
        self._open_phases: Dict[str, str] = {}
        # Opened phases are stamped when their first activity starts: chaoslib
        # enters rollbacks (and an empty method) even when there is nothing to
        # play, and the journal reader derives no phase without activities.
        self._unannounced: Dict[str, Event] = {}
        # Activity event ids per open phase event id, in start order.
        self._members: Dict[str, List[str]] = {}
        self._met: Dict[str, Optional[bool]] = {}
        self._during_thread: Optional[int] = None
        self._during_iteration = 0
        # Per thread: (the activity dict chaoslib passed, its event id).
        self._running: Dict[int, Tuple[Any, str]] = {}
        self._finished = False
        # The run's known secrets (an http action's URL with a token fails with it in its error).
        self.redactor = Redactor()

    # -- API for controls built on the recorder -------------------------------------------

    @property
    def run_id(self) -> Optional[str]:
        return self._run_id

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def phase(self) -> Optional[str]:
        """The phase the run's main thread is in (None before the first)."""
        return self._phase

    def add_listener(self, listener: Callable[[Event], Any]) -> None:
        """`listener(event)` for every event stamped: at start (end None), at end, and again
        if a late field (a probe's tolerance_met) revises an ended event. Same id each time."""
        with self._lock:
            self._listeners.append(listener)

    def add_extension_contributor(self, contributor: Callable[[Dict[str, Any]], Mapping[str, Any]],
                                  prepare: Optional[Callable[[], Any]] = None) -> None:
        """`contributor(journal)` is called at the end of the run; its keys join our journal entry.

        Contributions are merged: two contributors' `deliveries` (three live
        controls declared separately) keep every target's record. Every
        `prepare()` is called before the first contributor, so that work the
        contributors wait for (live targets draining) runs at the same time.
        """
        with self._lock:
            self._contributors.append(contributor)
            if prepare is not None:
                self._preparers.append(prepare)

    def events(self) -> List[Event]:
        """The latest version of every event so far, in the order they were first stamped."""
        with self._lock:
            return list(self._events.values())

    def mark(self, name: str, fields: Optional[Mapping[str, Any]] = None,
             tags: Optional[Mapping[str, Any]] = None) -> Optional[Event]:
        """Stamp a user mark now; None when the run has not started."""
        with self._lock:
            if self._run_id is None or self._finished:
                return None
            name = str(name)
            ordinal = self._mark_ordinals.get(name, 0)
            self._mark_ordinals[name] = ordinal + 1
            now = _now()
            # A mark is an instant, done when stamped: it succeeded and ends where it starts.
            event = Event(
                id=mark_id(self._run_id, name, ordinal),
                run_id=self._run_id,
                kind=MARK,
                name=name,
                start=now,
                end=now,
                status="succeeded",
                phase=self._phase_of_thread(),
                tags={**self.tags, **_user_tags(tags)},
                fields=_json_native(dict(fields or {})),
            )
            self._stamp(event)
            return event

    # -- chaoslib run events ---------------------------------------------------------------

    @_guarded
    def running(self, experiment, journal, *args, **kwargs) -> None:
        with self._lock:
            if self._run_id is not None:
                return
            title = (journal.get("experiment") or {}).get("title") or ""
            start_text = journal.get("start") or ""
            node = journal.get("node") or ""
            self._run_id = run_id_for(title, start_text, node)
            _active.append(self)
            self._know_experiment_secrets(experiment)
            self._open_side_file(title, start_text, node)
            self._stamp(Event(
                id=experiment_id(self._run_id),
                run_id=self._run_id,
                kind=EXPERIMENT,
                name=title,
                start=_journal_time(start_text, _now()),
                tags=self.tags,
            ))

    @_guarded
    def start_hypothesis_before(self, experiment) -> None:
        self._open_phase("before")

    @_guarded
    def hypothesis_before_completed(self, experiment, state, journal=None) -> None:
        self._close_phase("before", state)

    @_guarded
    def start_hypothesis_after(self, experiment) -> None:
        self._open_phase("after")

    @_guarded
    def hypothesis_after_completed(self, experiment, state, journal=None) -> None:
        self._close_phase("after", state)

    @_guarded
    def start_method(self, experiment) -> None:
        self._open_phase("method")

    @_guarded
    def method_completed(self, experiment, state=None) -> None:
        self._close_phase("method")

    @_guarded
    def start_rollbacks(self, experiment) -> None:
        self._open_phase("rollbacks")

    @_guarded
    def rollbacks_completed(self, experiment, journal=None) -> None:
        self._close_phase("rollbacks")

    @_guarded
    def start_continuous_hypothesis(self, frequency) -> None:
        # chaoslib runs the continuous hypothesis in its own worker thread,
        # alongside the method: its probes belong to `during`, not to the
        # main thread's phase.
        with self._lock:
            self._during_thread = threading.get_ident()

    @_guarded
    def continuous_hypothesis_iteration(self, iteration_index, state) -> None:
        self._close_phase("during", state)

    @_guarded
    def continuous_hypothesis_completed(self, experiment, journal, exception=None) -> None:
        # An iteration cut short by an exception never reports its state.
        self._close_phase("during", {"steady_state_met": False} if exception else None)

    @_guarded
    def start_activity(self, activity) -> None:
        with self._lock:
            if self._run_id is None or self._finished:
                return
            thread = threading.get_ident()
            current = self._running.get(thread)
            if current is not None and current[0] is activity:
                return  # the same activity announced twice (hook fallback, several controls)
            phase = self._phase_of_thread()
            if phase == "during" and "during" not in self._open_phases:
                self._open_phase_locked("during")
            name = str(activity.get("name", ""))
            key = (phase, name)
            ordinal = self._ordinals.get(key, 0)
            self._ordinals[key] = ordinal + 1
            event = Event(
                id=activity_id(self._run_id, phase, name, ordinal),
                run_id=self._run_id,
                kind=ACTIVITY,
                phase=phase,
                name=name,
                activity_type=activity.get("type"),
                start=_now(),
                tags=self.tags,
                fields=activity_fields(activity),
            )
            self._running[thread] = (activity, event.id)
            phase_event = self._open_phases.get(phase)
            if phase_event is not None:
                self._members[phase_event].append(event.id)
                if phase_event in self._unannounced:
                    self._stamp(self._unannounced.pop(phase_event))
            self._stamp(event)

    @_guarded
    def activity_completed(self, activity, run) -> None:
        with self._lock:
            thread = threading.get_ident()
            current = self._running.get(thread)
            if current is None or current[0] is not activity:
                return  # never started here, or already completed
            del self._running[thread]
            started = self._events[current[1]]
            run = run if isinstance(run, dict) else {}
            end = _journal_time(run.get("end"), _now())
            fields = dict(started.fields)
            start = _journal_time(run.get("start"), started.start)
            fields["duration"] = (end - start).total_seconds()
            # Masked before it is shortened, so no part of a secret survives the cut.
            error = error_text(self.redactor.value(run.get("exception")))
            if error:
                fields["error"] = error
            status = run.get("status")
            if not isinstance(status, str):
                status = _missing_status()
            self._stamp(started.evolve(start=start, end=end, status=status, fields=fields))

    @_guarded
    def interrupted(self, experiment, journal) -> None:
        self._record_interruption(*_interruption_cause())

    @_guarded
    def signal_exit(self) -> None:
        self._record_interruption(*_interruption_cause())

    @_guarded
    def finish(self, journal) -> None:
        with self._lock:
            if self._run_id is None or self._finished:
                return
            for phase in list(self._open_phases):
                self._close_phase_locked(phase, None)
            status = journal.get("status") or "unknown"
            noted = journal.get("interruption")
            if status == "interrupted":
                self._complete_interruption(noted if isinstance(noted, dict) else {})
            self._stamp(self._ended_experiment(journal, status))
            self._finished = True
            entry = {
                "name": EXTENSION_NAME,
                "version": EXTENSION_VERSION,
                "run_id": self._run_id,
                # The journal reader gives these to the events it derives from the
                # journal's own entries, so they match the side file's and live ones.
                "tags": dict(self.tags),
                "events": [event.to_dict() for event in order(self._events.values())
                           if event.end is not None or event.kind in (MARK, INTERRUPTION)],
            }
            contributors = list(self._contributors)
            preparers = list(self._preparers)
        try:
            for prepare in preparers:
                try:
                    prepare()
                except Exception as error:  # the contributor itself still runs
                    _warn_once(f"preparer {id(prepare)}", f"journal extension preparer failed ({type(error).__name__})")
            for contributor in contributors:
                _merge_contribution(entry, self._contribution(contributor, journal))
            self._attach(journal, _json_native(entry))
        finally:
            with self._lock:
                if self._side_file is not None:
                    self._side_file.close()
                if self in _active:
                    _active.remove(self)

    # -- internals (callers hold the lock where it says so) --------------------------------

    def _open_side_file(self, title: str, start_text: str, node: str) -> None:
        if self.events_path is False or self.events_path == "":
            return
        path = str(self.events_path or os.curdir)
        if os.path.isdir(path):
            path = os.path.join(path, f"chaostoolkit-replay-{self._run_id}.events.jsonl")
        self._side_file = _SideFile(os.path.abspath(path))
        self._side_file.open({
            EXTENSION_NAME: SIDE_FILE_MARKER,
            "version": EXTENSION_VERSION,
            "run_id": self._run_id,
            "experiment": title,
            "start": start_text,
            "node": node,
        })

    def know_secrets(self, configuration: Any = None, secrets: Any = None) -> None:
        """Mask these values (chaoslib's resolved configuration and secrets) in every event from now on."""
        with self._lock:
            self.redactor.add(known_secrets(configuration if isinstance(configuration, Mapping) else {},
                                            secrets if isinstance(secrets, Mapping) else {}))

    def _know_experiment_secrets(self, experiment: Any) -> None:
        """The experiment's own secrets and credentials, `{"type": "env"}` resolved as chaoslib does."""
        if not isinstance(experiment, Mapping):
            return
        configuration, secrets = experiment.get("configuration"), experiment.get("secrets")
        try:
            settings = Settings(configuration=configuration if isinstance(configuration, Mapping) else {},
                                secrets=secrets if isinstance(secrets, Mapping) else {})
        except ConfigError:  # a `${...}` chaoslib would refuse too: the values as written
            self.redactor.add(known_secrets({}, secrets if isinstance(secrets, Mapping) else {}))
            return
        self.redactor.add(settings.known_secrets())

    def _stamp(self, event: Event) -> None:
        """Keep, write and announce `event` (lock held), the run's known secrets masked."""
        event = redacted_event(event, self.redactor)
        self._events[event.id] = event
        if self._side_file is not None:
            self._side_file.write(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception as error:  # a listener must not break recording
                _warn_once(
                    f"listener {id(listener)}",
                    f"event listener {getattr(listener, '__qualname__', listener)!s} failed"
                    f" ({type(error).__name__}: {error})",
                )

    def _phase_of_thread(self) -> str:
        if self._during_thread is not None and threading.get_ident() == self._during_thread:
            return "during"
        return self._phase or "method"

    def _open_phase(self, phase: str) -> None:
        with self._lock:
            if self._run_id is None or self._finished or phase in self._open_phases:
                return
            self._phase = phase
            self._open_phase_locked(phase)

    def _open_phase_locked(self, phase: str) -> None:
        iteration = 0
        fields: Dict[str, Any] = {}
        if phase == "during":
            self._during_iteration += 1
            iteration = self._during_iteration
            fields["iteration"] = iteration
        event = Event(
            id=phase_id(self._run_id, phase, iteration),
            run_id=self._run_id,
            kind=PHASE,
            phase=phase,
            name=phase_name(phase, iteration),
            start=_now(),
            tags=self.tags,
            fields=fields,
        )
        self._open_phases[phase] = event.id
        self._members[event.id] = []
        self._unannounced[event.id] = event

    def _close_phase(self, phase: str, state: Any = None) -> None:
        with self._lock:
            self._close_phase_locked(phase, state)

    def _close_phase_locked(self, phase: str, state: Any) -> None:
        event_id = self._open_phases.pop(phase, None)
        if event_id is None:
            return
        member_ids = self._members.pop(event_id)
        if self._unannounced.pop(event_id, None) is not None:
            return  # nothing was played in it
        members = [self._events[member] for member in member_ids]
        fields = dict(self._events[event_id].fields)
        if isinstance(state, dict) and "steady_state_met" in state:
            met = bool(state["steady_state_met"])
            fields["steady_state_met"] = met
            self._met[phase] = met
            members = self._revise_tolerances(members, state.get("probes"))
        failed = fields.get("steady_state_met") is False or any(
            member.status == "failed" for member in members
        )
        opened = self._events[event_id]
        # A `during` iteration opens at its first probe's start_activity, which
        # chaoslib calls just after taking the probe's start time.
        start = min([opened.start] + [member.start for member in members])
        self._stamp(opened.evolve(
            start=start, end=_now(), status="failed" if failed else "succeeded", fields=fields
        ))

    def _revise_tolerances(self, members: List[Event], probes: Any) -> List[Event]:
        """chaoslib sets `tolerance_met` on a probe's run entry only after the probe ended:
        revise the ended probe events of this hypothesis, in order (lock held)."""
        if not isinstance(probes, list):
            return members
        revised = []
        for member, probe in zip(members, probes):
            if isinstance(probe, dict) and "tolerance_met" in probe and member.end is not None:
                member = member.evolve(
                    fields={**member.fields, "tolerance_met": bool(probe["tolerance_met"])}
                )
                self._stamp(member)
            revised.append(member)
        return revised + members[len(revised):]

    def _record_interruption(self, signal_name: Optional[str], reason: str) -> None:
        with self._lock:
            if self._run_id is None or self._finished:
                return
            event_id = interruption_id(self._run_id)
            if event_id in self._events:
                return
            fields = {"reason": reason}
            if signal_name:
                fields["signal"] = signal_name
            self._stamp(Event(
                id=event_id,
                run_id=self._run_id,
                kind=INTERRUPTION,
                name="interruption",
                start=_now(),
                status="interrupted",
                phase=self._phase,
                tags=self.tags,
                fields=fields,
            ))

    def _complete_interruption(self, noted: Mapping[str, Any]) -> None:
        """At the end of an interrupted run: the interruption event, with the signal
        chaostoolkit noted in the journal (>= 1.21) if we could not tell (lock held)."""
        event_id = interruption_id(self._run_id)
        current = self._events.get(event_id)
        noted_signal = noted.get("name") if isinstance(noted.get("name"), str) else None
        if current is None:
            reason = noted.get("reason") if isinstance(noted.get("reason"), str) else "interrupted"
            self._record_interruption(noted_signal, reason)
        elif noted_signal and "signal" not in current.fields:
            self._stamp(current.evolve(fields={**current.fields, "signal": noted_signal}))

    def _ended_experiment(self, journal: Mapping[str, Any], status: str) -> Event:
        activities = [event for event in self._events.values() if event.kind == ACTIVITY]
        started = self._events[experiment_id(self._run_id)]
        return started.evolve(
            end=_journal_time(journal.get("end"), _now()),
            status=status,
            fields=experiment_fields(
                journal.get("deviated"), self._met.get("before"), self._met.get("after"), activities
            ),
        )

    def _contribution(self, contributor: Callable[[Dict[str, Any]], Mapping[str, Any]],
                      journal: Dict[str, Any]) -> Dict[str, Any]:
        try:
            extra = dict(contributor(journal) or {})
        except Exception as error:  # a contributor must not cost the journal record
            _warn_once(
                f"contributor {id(contributor)}",
                f"journal extension contributor failed ({type(error).__name__}: {error})",
            )
            return {}
        return {key: value for key, value in extra.items() if key not in _CORE_KEYS}

    def _attach(self, journal: Dict[str, Any], entry: Dict[str, Any]) -> None:
        """Put our entry in the journal's `extensions` list, replacing an earlier one of ours."""
        extensions = journal.get("extensions")
        if extensions is None:
            journal["extensions"] = [entry]
            return
        if not isinstance(extensions, list):
            _warn_once("extensions", "the journal's `extensions` is not a list: events not added")
            return
        extensions[:] = [
            item for item in extensions
            if not (isinstance(item, dict) and item.get("name") == EXTENSION_NAME)
        ] + [entry]


def _merge_contribution(entry: Dict[str, Any], contribution: Mapping[str, Any]) -> None:
    """Add a contributor's keys to our entry; an object another contributor gave too
    (`deliveries`, one record per target) gets the keys of both."""
    for key, value in contribution.items():
        known = entry.get(key)
        if isinstance(known, dict) and isinstance(value, dict):
            entry[key] = {**known, **value}
        else:
            entry[key] = value


# Recorders of runs in progress in this process, latest last: where `mark` stamps.
_active: List[Recorder] = []


def _registry_supported() -> bool:
    try:
        from chaoslib.control.python import initialize_control
    except ImportError:
        return False
    return "event_registry" in inspect.signature(initialize_control).parameters


EVENT_REGISTRY_SUPPORTED = _registry_supported()


def install(event_registry: Any = None, events_path: Any = None, tags: Any = None) -> Optional[Recorder]:
    """The run's Recorder, created on first call and shared by every control that asks.

    Call it from a control's `configure_control(event_registry=None, **arguments)`.
    However many controls (or placements of one control) install it, a run
    gets one Recorder, one side file and one journal entry; the first caller's
    `events_path` wins and every caller's `tags` are merged. Returns None only
    when chaoslib offers no way to record (a registry-era chaoslib that passed
    no registry).
    """
    global _hook_recorder
    if event_registry is not None:
        for handler in getattr(event_registry, "handlers", ()):
            if isinstance(handler, Recorder) and not handler.finished:
                handler.tags.update(_user_tags(tags))
                return handler
        recorder = Recorder(events_path=events_path, tags=tags)
        event_registry.register(recorder)
        return recorder
    if EVENT_REGISTRY_SUPPORTED:
        _warn_once("no registry", "chaoslib passed no run event registry: nothing is recorded")
        return None
    with _hook_lock:
        if _hook_recorder is None or _hook_recorder.finished:
            _hook_recorder = Recorder(events_path=events_path, tags=tags)
        else:
            _hook_recorder.tags.update(_user_tags(tags))
        return _hook_recorder


def configure_control(event_registry: Any = None, events_path: Any = None, tags: Any = None,
                      configuration: Any = None, secrets: Any = None, **arguments) -> None:
    """chaoslib's entry point; `arguments` absorbs whatever else chaoslib passes. The run's
    configuration and secrets, resolved by chaoslib, are masked in every event recorded."""
    try:
        recorder = install(event_registry, events_path=events_path, tags=tags)
        if recorder is not None:
            recorder.know_secrets(configuration, secrets)
    except Exception as error:
        _warn_once("install", f"the recorder could not start ({type(error).__name__}: {error})")


def mark(name: str, fields: Optional[Mapping[str, Any]] = None,
         tags: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """Python activity: stamp a user mark in the running experiment's record.

    Returns the recorded event (JSON-native, so it can be the activity's
    output) or None, with a warning, when no recorder is active: a mark never
    fails the run.
    """
    try:
        recorder = _active[-1] if _active else None
        event = recorder.mark(name, fields, tags) if recorder else None
    except Exception as error:
        _warn_once("mark", f"mark {name!r} not recorded ({type(error).__name__}: {error})")
        return None
    if event is None:
        _warn_once("mark inactive", f"mark {name!r} not recorded: the recorder control is not active")
        return None
    return event.to_dict()


# -- chaoslib < 1.26: drive the Recorder from the control hooks -----------------------------

_hook_lock = threading.Lock()
_hook_recorder: Optional[Recorder] = None


def _hook(method: Callable) -> Callable:
    # Not functools.wraps: chaoslib inspects the hook's own signature to decide
    # what to pass, and must see this one, not the driver method's.
    def hook(context: Any = None, state: Any = None, **arguments) -> None:
        recorder = _hook_recorder
        if recorder is None or recorder.finished:
            return
        try:
            method(recorder, context, state)
        except Exception as error:
            _warn_once(f"hook {method.__name__}",
                       f"recording failed in {method.__name__} ({type(error).__name__}: {error})")
    hook.__name__ = hook.__qualname__ = method.__name__
    return hook


class _HookDriver:
    """Hook calls translated into run events; the Recorder ignores repeats, so several
    placements calling the same hook record once."""

    @staticmethod
    def before_experiment_control(recorder: Recorder, experiment, state) -> None:
        _warn_if_not_automatic(experiment)
        # The journal does not exist yet for the hooks: this run id cannot be the one the
        # reader would derive, so the journal entry carries it (the reader prefers it).
        journal = {
            "experiment": {"title": experiment.get("title", "")},
            "start": _now().replace(tzinfo=None).isoformat(),
            "node": platform.node(),
        }
        recorder.running(experiment, journal)

    @staticmethod
    def before_hypothesis_control(recorder: Recorder, hypothesis, state) -> None:
        if threading.current_thread() is not threading.main_thread():
            recorder.start_continuous_hypothesis(None)
        elif recorder.phase in (None, "before"):
            recorder.start_hypothesis_before(None)
        else:
            recorder.start_hypothesis_after(None)

    @staticmethod
    def after_hypothesis_control(recorder: Recorder, hypothesis, state) -> None:
        if threading.current_thread() is not threading.main_thread():
            recorder.continuous_hypothesis_iteration(None, state)
        elif recorder.phase == "before":
            recorder.hypothesis_before_completed(None, state)
        else:
            recorder.hypothesis_after_completed(None, state)

    @staticmethod
    def before_method_control(recorder: Recorder, experiment, state) -> None:
        recorder.start_method(experiment)

    @staticmethod
    def after_method_control(recorder: Recorder, experiment, state) -> None:
        recorder.method_completed(experiment, state)

    @staticmethod
    def before_rollback_control(recorder: Recorder, experiment, state) -> None:
        recorder.start_rollbacks(experiment)

    @staticmethod
    def after_rollback_control(recorder: Recorder, experiment, state) -> None:
        recorder.rollbacks_completed(experiment)

    @staticmethod
    def before_activity_control(recorder: Recorder, activity, state) -> None:
        recorder.start_activity(activity)

    @staticmethod
    def after_activity_control(recorder: Recorder, activity, state) -> None:
        recorder.activity_completed(activity, state)

    @staticmethod
    def after_experiment_control(recorder: Recorder, experiment, state) -> None:
        if isinstance(state, dict):
            recorder.finish(state)


def _warn_if_not_automatic(experiment: Any) -> None:
    """Before chaoslib 1.26, `"automatic": false` keeps the activity hooks from ever being
    called: the run would be recorded without a single activity, silently."""
    controls = experiment.get("controls") if isinstance(experiment, dict) else None
    for control in controls if isinstance(controls, list) else ():
        provider = control.get("provider") if isinstance(control, dict) else None
        module = provider.get("module") if isinstance(provider, dict) else None
        if isinstance(module, str) and module.startswith(tuple(f"{prefix}." for prefix in CONTROL_PACKAGES)) and control.get("automatic") is False:
            _warn_once("not automatic", f"control {control.get('name')!r} is declared with \"automatic\": false: "
                       f"chaostoolkit-lib {chaoslib.__version__} (before 1.26) then never calls it for "
                       f"activities, so none is recorded; remove \"automatic\": false or upgrade chaostoolkit-lib")


def _cleanup_hook_recorder() -> None:
    """Hooks era: a run that ended without after_experiment_control still closes its file."""
    recorder = _hook_recorder
    if recorder is not None and not recorder.finished:
        recorder.finish({"status": "unknown"})


def hook_functions() -> Dict[str, Callable]:
    """The control hooks that drive the shared Recorder where chaoslib has no registry."""
    hooks = {
        name: _hook(getattr(_HookDriver, name))
        for name in vars(_HookDriver) if name.endswith("_control")
    }
    hooks["cleanup_control"] = _cleanup_hook_recorder
    return hooks


# The control hooks, only where chaoslib lacks the event registry: defining them
# for a newer chaoslib would record twice and add chaoslib's per-hook cost to
# every activity. A live control module re-exports them the same way.
FALLBACK_HOOKS: Dict[str, Callable] = {} if EVENT_REGISTRY_SUPPORTED else hook_functions()
globals().update(FALLBACK_HOOKS)
