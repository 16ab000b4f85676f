"""Ship a run's events to several targets while it goes on, without ever holding it up.

Declare it as a control (experiment or settings level)::

    {"name": "live", "provider": {"type": "python", "module": "chaosreplay.controls.live",
     "arguments": {"influx": {"url": "http://influx:8086", "database": "chaos"},
                   "grafana": [{"url": "http://grafana:3000", "api_token": "${grafana_token}"}],
                   "pushgateway": {"url": "http://pushgateway:9091"},
                   "drain_timeout": 5, "strict": false}}}

Each section takes the keys of the same section of `chaos-replay --config`;
the experiment's `configuration` and `secrets` fill in what is missing, as for
`chaos-replay`. The recording control records every event; this control hands
each settled one to the delivery engine (`chaosreplay.delivery`), drains it for at
most `drain_timeout` seconds when the run ends and adds what each target got to
the journal (`deliveries`). A target that missed events gets one WARNING line
with the command that re-sends them. With `strict: true` a run whose delivery
was incomplete ends with status `failed` (so `chaos run` exits 1).
"""
import logging
import sys
import time

import chaoslib
from typing import Any, Dict, List, Mapping, Optional, Sequence

from chaosreplay.controls.recorder import FALLBACK_HOOKS, install
from chaosreplay.config import Settings, as_bool
from chaosreplay.delivery import (
    DELIVERIES_KEY,
    POLICY_KEYS,
    SECTIONS,
    DeliveryEngine,
    LivePolicy,
    TargetReport,
    control_target_sections,
    warning_line,
)
from chaosreplay.errors import ConfigError
from chaosreplay.journal import experiment_hash
from chaosreplay.render import printable
from chaosreplay.sinks import sink_modules
from chaosreplay.sinks.http import DaemonCall, TimedOut

__all__ = ["LiveShipping", "start", "configure_control", "configure_control_for", "journal_path_from_argv"]

logger = logging.getLogger("chaostoolkit")

# The engine retries across the whole run; a sink retrying inside one request
# would make the experiment's last drain attempt slow against a dead backend.
LIVE_SINK_DEFAULTS = {"retries": 0, "timeout": 2.0}
# What the end-of-run clean-up (a pushgateway group's DELETE) may take beyond
# the drain deadline when the drain used it all.
CLEANUP_SECONDS = 0.5


def journal_path_from_argv(argv: Sequence[str]) -> Optional[str]:
    """Where `chaos run` writes the journal, read from its command line; None elsewhere."""
    if "run" not in argv:
        return None
    for index, argument in enumerate(argv):
        if argument == "--journal-path" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--journal-path="):
            return argument.split("=", 1)[1]
    return "./journal.json"


def _with_live_defaults(section: Any) -> Any:
    if isinstance(section, dict):
        return {**LIVE_SINK_DEFAULTS, **section}
    if isinstance(section, list):
        return [_with_live_defaults(entry) for entry in section]
    return section


class LiveShipping:
    """The targets of one run, their delivery engine and what to do when it ends."""

    def __init__(self, sections: Mapping[str, Any], options: Mapping[str, Any],
                 configuration: Optional[Mapping[str, Any]] = None,
                 secrets: Optional[Mapping[str, Any]] = None, name: str = "chaosreplay.controls.live",
                 experiment: Any = None):
        self.name = name
        # chaostoolkit-prometheus hashed the experiment chaoslib configured it with; the
        # journal keeps the hash so that a replay pushes to the very same group.
        self.run_details = {"chaoslib_version": chaoslib.__version__}
        if isinstance(experiment, dict):
            self.run_details["experiment_hash"] = experiment_hash(experiment)
        self.strict = as_bool(options.get("strict", False), "strict")
        self.policy = LivePolicy.from_arguments({k: options.get(k) for k in POLICY_KEYS})
        # No section named: every live-capable sink, from chaosdb's keys of the configuration.
        requested = dict(sections) or {section: {} for section in SECTIONS}
        # The experiment's sections are the journal's: the environment's credentials go only
        # to the environment's URLs (INFLUX_URL, ...), the sections' only to their own.
        settings = Settings(
            controls={key: _with_live_defaults(value) for key, value in requested.items()},
            configuration=configuration, secrets=secrets,
        )
        self.targets = []
        for module in sink_modules():
            if module.__name__.rsplit(".", 1)[-1] in requested:
                self.targets.extend(module.targets(settings))
        if not self.targets:
            raise ConfigError(self.name, "no target configured (sections: " + ", ".join(SECTIONS) + ")")
        self.engine = DeliveryEngine(self.targets, source="live", policy=self.policy, run_details=self.run_details)
        self.reports: List[TargetReport] = []

    def offer(self, event) -> None:
        self.engine.offer(event)

    def finish(self, journal: Dict[str, Any]) -> Dict[str, Any]:
        """Drain, warn about what was missed, fail the run if strict and something was,
        and return the journal extension's part."""
        self.reports = self.engine.close()
        journal_path = journal_path_from_argv(sys.argv)
        for target, report in zip(self.targets, self.reports):
            line = warning_line(report, journal_path)
            if line:
                logger.warning(line)
            elif getattr(getattr(target, "config", None), "delete_at_end", False):
                # A pushgateway group only makes sense while the run goes on.
                problem = self._before_deadline(target.delete_group)
                if problem:
                    logger.warning(f"live delivery to {printable(report.label)}: {printable(problem)}")
        self.fail_if_strict(journal)
        contribution = {DELIVERIES_KEY: self.engine.record()}
        if "experiment_hash" in self.run_details:
            contribution["experiment_ref"] = self.run_details["experiment_hash"]
        return contribution

    def _before_deadline(self, cleanup) -> Optional[str]:
        """`cleanup()`'s problem, or None; it is left behind (a daemon thread) at the drain
        deadline, or CLEANUP_SECONDS from now if that is later, so the run still ends on time."""
        deadline = max(self.engine.begin_drain(), time.monotonic() + CLEANUP_SECONDS)
        try:
            return DaemonCall(cleanup).result(deadline - time.monotonic())
        except TimedOut:
            return "not done within the drain deadline"

    def fail_if_strict(self, journal: Dict[str, Any]) -> None:
        """In strict mode an incomplete delivery fails the run, keeping why in the journal."""
        missed = [report for report in self.reports if report.undelivered]
        if not self.strict or not missed:
            return
        journal["status"] = "failed"
        logger.error(
            f"{self.name}: strict delivery: run marked failed, {len(missed)} target(s) missed events"
        )


def start(event_registry: Any, sections: Mapping[str, Any], options: Mapping[str, Any],
          configuration: Optional[Mapping[str, Any]], secrets: Optional[Mapping[str, Any]],
          name: str, experiment: Any = None) -> Optional[LiveShipping]:
    """Set up live shipping for the run `event_registry` belongs to; None if it cannot be.

    Called from the live controls' `configure_control`. A configuration error is
    logged as one line and leaves the run unaffected (the recorder still records).
    """
    recorder = install(event_registry, events_path=options.get("events_path"), tags=options.get("tags"))
    if recorder is None:
        return None
    recorder.know_secrets(configuration, secrets)
    try:
        shipping = LiveShipping(sections, options, configuration, secrets, name=name, experiment=experiment)
    except ConfigError as error:
        logger.error(f"{name}: {printable(error)}; events are recorded but not shipped live")
        return None
    recorder.add_listener(shipping.offer)
    # The recorder calls it once the run is over, from chaoslib's run event registry or,
    # before chaoslib 1.26, from the after-experiment hook: strict mode works with both.
    recorder.add_extension_contributor(shipping.finish, prepare=shipping.engine.begin_drain)
    return shipping


def configure_control_for(module: str, event_registry: Any, configuration: Any, secrets: Any,
                          arguments: Mapping[str, Any], experiment: Any = None) -> Optional[LiveShipping]:
    """The `configure_control` of every live control module, named by `module`."""
    sections = control_target_sections(module, arguments)
    return start(event_registry, sections, arguments, configuration, secrets, name=module, experiment=experiment)


def configure_control(event_registry: Any = None, configuration: Any = None, secrets: Any = None,
                      experiment: Any = None, **arguments) -> None:
    """chaoslib's entry point: `influx`, `grafana`, `pushgateway` sections plus the live options."""
    configure_control_for(__name__, event_registry, configuration, secrets, arguments, experiment)


# chaoslib < 1.26 has no run event registry: the recorder's hooks drive the run.
globals().update(FALLBACK_HOOKS)
