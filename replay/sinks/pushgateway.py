"""Prometheus pushgateway sink: a run's summary as gauges, live or replayed.

Configuration (highest first): `--pushgateway-url`/`--pushgateway-job`,
`PUSHGATEWAY_*` environment variables, then the `pushgateway` section of
`--config` (or of the live control's arguments): `url` (or chaostoolkit-
prometheus' `pushgateway_url`), `job`, `grouping_key`, `trace_id`,
`experiment_ref`, `username`/`password` or `token`, `ca_bundle`, `verify_tls`,
`timeout`, `retries`, `delete_at_end`.

Two layouts (`layout`):
- `chaostoolkit-prometheus`: the metrics chaostoolkit-prometheus 0.6.0's control
  pushed, names and labels unchanged (`PEER_METRICS`), so its users' queries and
  alerts keep working; the default when the section is written with the peer's
  argument `pushgateway_url` (or names no server: the peer's default
  `http://localhost:9091`), and `experiment_ref` defaults to the peer's, chaoslib's
  hash of the experiment;
- `chaostoolkit-replay`: ours (`prometheus_series`), the default otherwise.

One group per experiment: `/metrics/job/<job>/chaostoolkit_experiment_ref/<ref>`,
or exactly the user's `grouping_key`. Each run PUTs (replaces) its experiment's group,
so the pushgateway holds the latest run of each experiment and does not grow
with the number of runs; every series still carries the run id
(`chaostoolkit_run_trace_id`). When one replay sends several runs of a group
(a glob of journals), the group ends holding the newest by start time,
whatever the order of the paths: an older run than one pushed already is not
pushed (and says so). The pushgateway refuses timestamps (FACTS §6), so
a replay publishes the run's summary as of now and says so; remote write and
OpenMetrics put the history at its true time.
"""
import base64
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple
from urllib.parse import quote

import click
import requests

from ..config import Settings, as_bool, as_text
from ..delivery import LiveBatch
from ..errors import ConfigError
from ..events import Event, Run
from ..journal import order
from . import BodyText, Delivery, Planned, PlannedRequest
from .http import Refused, Unreachable, unexpected_answer
from .prometheus_http import Endpoint, endpoint_settings
from .prometheus_series import (ACTIVITIES_PER_SLICE, EXPERIMENT_REF_LABEL, experiment_ref_for, label_text,
                                run_families, run_family_slices, spooled_pieces, text_exposition_pieces,
                                whole_families)

__all__ = ["OPTIONS", "PushgatewayConfig", "PushgatewayTarget", "targets", "pushgateway_config", "SUMMARY_NOTE"]

DEFAULT_JOB = "chaostoolkit"
PEER_LAYOUT = "chaostoolkit-prometheus"
OUR_LAYOUT = "chaostoolkit-replay"
LAYOUTS = (PEER_LAYOUT, OUR_LAYOUT)
# chaostoolkit-prometheus' run statuses (a prometheus_client Enum) and duration histogram buckets.
PEER_STATUSES = ("completed", "failed", "aborted", "interrupted")
PEER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SUMMARY_NOTE = ("the pushgateway keeps no history: published the run's summary as of now "
                "(--prometheus-remote-write or --openmetrics put it at its true time)")
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# What the pushgateway answers a push it took (200; 202 from some versions and
# proxies in front of it), with no body: a `200 <html>` login page took nothing.
PUSH_TAKEN = (200, 202)

OPTIONS = [
    click.option("--pushgateway-url", "pushgateway_url", metavar="URL",
                 help="Prometheus pushgateway base URL [env PUSHGATEWAY_URL]."),
    click.option("--pushgateway-job", "pushgateway_job", metavar="NAME",
                 help=f"Pushgateway job (default {DEFAULT_JOB}) [env PUSHGATEWAY_JOB]."),
]


@dataclass(frozen=True)
class PushgatewayConfig:
    endpoint: Endpoint
    job: str = DEFAULT_JOB
    grouping_key: Tuple[Tuple[str, str], ...] = ()
    trace_id: Optional[str] = None
    experiment_ref: Optional[str] = None
    delete_at_end: bool = False
    layout: str = OUR_LAYOUT

    @property
    def label(self) -> str:
        return f"pushgateway {self.endpoint.url} job={self.job}"


def targets(settings: Settings) -> List["PushgatewayTarget"]:
    config = pushgateway_config(settings)
    return [PushgatewayTarget(config)] if config else []


def pushgateway_config(settings: Settings) -> Optional[PushgatewayConfig]:
    """The pushgateway configured in `settings`, None if there is none."""
    found = endpoint_settings(settings, "pushgateway", "PUSHGATEWAY",
                              cli={"url": "pushgateway_url", "job": "pushgateway_job"},
                              url_aliases=("pushgateway_url",),
                              other_keys=("job", "grouping_key", "trace_id", "experiment_ref", "delete_at_end", "layout"))
    if found is None:
        return None
    endpoint, pick = found
    # Written as chaostoolkit-prometheus' control was (its `pushgateway_url`): its metrics.
    peer_style = pick("url") is None
    layout = as_text(pick("layout", PEER_LAYOUT if peer_style else OUR_LAYOUT), "pushgateway.layout")
    if layout not in LAYOUTS:
        raise ConfigError("pushgateway.layout", f"expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    job = as_text(pick("job", DEFAULT_JOB), "pushgateway.job")
    if not job:
        raise ConfigError("pushgateway.job", "must not be empty")
    trace_id, experiment_ref = pick("trace_id"), pick("experiment_ref")
    return PushgatewayConfig(
        endpoint=endpoint,
        job=job,
        grouping_key=_grouping_key(pick("grouping_key")),
        trace_id=as_text(trace_id, "pushgateway.trace_id") if trace_id else None,
        experiment_ref=as_text(experiment_ref, "pushgateway.experiment_ref") if experiment_ref else None,
        delete_at_end=as_bool(pick("delete_at_end", False), "pushgateway.delete_at_end"),
        layout=layout,
    )


def _grouping_key(value: Any) -> Tuple[Tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError("pushgateway.grouping_key", f"expected an object of label: value, got {value!r}")
    pairs = []
    for name, label_value in value.items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("__") or name == "job":
            raise ConfigError("pushgateway.grouping_key", f"{name!r} is not a usable label name")
        pairs.append((name, as_text(label_value, f"pushgateway.grouping_key.{name}")))
    return tuple(pairs)


class PushgatewayTarget:
    """PUTs a run's summary to its experiment's group.

    A PUT replaces the group, so every push carries the whole summary so far:
    the live delivery engine sends slices of a run (`LiveBatch`), which are
    merged by id with the slices sent before; a replayed run is whole already.
    """

    # A run missing events would replace the group with a partial summary.
    needs_whole_run = True

    def __init__(self, config: PushgatewayConfig, session: Optional[requests.Session] = None):
        self.config = config
        self.label = config.label
        self.session = session or requests.Session()
        # run id -> event id -> latest version, for live runs only.
        self._events: Dict[str, Dict[str, Event]] = {}
        self._groups_pushed: Set[str] = set()
        # group URL -> (start, run id) of the newest replayed run pushed there.
        self._newest: Dict[str, Tuple[datetime, str]] = {}
        self._summary_noted = False

    def plan(self, run: Run) -> List[PlannedRequest]:
        return self.planned(run).whole()

    def planned(self, run: Run) -> Planned:
        merged, live = self._merged(run, remember=False)
        headers = {"Content-Type": _CONTENT_TYPE, **self.config.endpoint.auth_headers(masked=True)}
        body = BodyText(lambda: self._body_pieces(merged, live, spooled=True))
        return Planned(1, [PlannedRequest("PUT", self.group_url(merged), headers, body)])

    def send(self, run: Run) -> Delivery:
        ids = tuple(event.id for event in run.events)
        merged, live = self._merged(run, remember=True)
        url = self.group_url(merged)
        newer = None if live else self._newer_than(url, merged)
        if newer is not None:
            return Delivery(self.label, ids, (), None, (newer,))
        try:
            response = self.config.endpoint.request(
                self.session, "PUT", url, "push",
                headers={"Content-Type": _CONTENT_TYPE}, data=self._body(merged, live).encode("utf-8"))
            problem = unexpected_answer("push", response, PUSH_TAKEN, empty=True)
            if problem:
                raise problem
        except Unreachable as error:
            return Delivery(self.label, (), ids, str(error), refused=isinstance(error, Refused))
        self._groups_pushed.add(url)
        if not live:
            self._newest[url] = (_run_start(merged), merged.run_id)
        # Said once per target, however many journals a replay sends.
        notes = () if live or self._summary_noted else (SUMMARY_NOTE,)
        self._summary_noted = self._summary_noted or bool(notes)
        return Delivery(self.label, ids, (), None, notes)

    def _newer_than(self, url: str, run: Run) -> Optional[str]:
        """The note for a run older than the one this replay pushed to its group already, else None."""
        known = self._newest.get(url)
        if known is None or known[1] == run.run_id or _run_start(run) >= known[0]:
            return None
        return (f"not pushed: its group already holds run {known[1]}, which started later "
                f"({known[0].isoformat()}); the pushgateway keeps the newest run of each experiment")

    def delete_group(self) -> Optional[str]:
        """DELETE every group this target pushed to (end of a live run); the error, or None."""
        problems = []
        for url in sorted(self._groups_pushed):
            try:
                response = self.config.endpoint.request(self.session, "DELETE", url, "delete group")
                problem = unexpected_answer("delete group", response, PUSH_TAKEN, empty=True)
                if problem:
                    raise problem
            except Unreachable as error:
                problems.append(str(error))
                continue
            self._groups_pushed.discard(url)
        return "; ".join(problems) or None

    def close(self) -> None:
        self.session.close()

    def group_url(self, run: Run) -> str:
        """`<url>/metrics/job/<job>/<label>/<value>...`; values that are empty, hold a `/` or
        are `.` or `..` in the pushgateway's base64 form `<label>@base64/<value>` (FACTS §6)."""
        # A user's grouping key is used exactly as given: adding the ref would split a group
        # meant to gather experiments (and leave the group it used to fill stale).
        labels = [("job", self.config.job), *(self.config.grouping_key or [(EXPERIMENT_REF_LABEL, self._ref(run))])]
        path = "".join(_path_segment(name, value) for name, value in labels)
        return f"{self.config.endpoint.url}/metrics{path}"

    def _merged(self, run: Run, remember: bool) -> Tuple[Run, bool]:
        """The run so far, and whether it is live: a live slice merged with those sent before."""
        if not isinstance(run, LiveBatch):
            return run, False
        known = dict(self._events.get(run.run_id, {}))
        known.update((event.id, event) for event in run.events)
        if remember:
            self._events[run.run_id] = known
        return dataclasses.replace(run, events=order(known.values())), True

    def _ref(self, run: Run) -> str:
        if self.config.experiment_ref:
            return self.config.experiment_ref
        if self.config.layout == PEER_LAYOUT and run.experiment_hash:
            return run.experiment_hash
        return experiment_ref_for(run.title)

    def _body(self, run: Run, live: bool) -> str:
        return "".join(self._body_pieces(run, live))

    def _body_pieces(self, run: Run, live: bool, spooled: bool = False) -> Iterator[str]:
        """The body a piece at a time; `spooled`: the series of a run of 10^6 activities are
        never all held (`SpooledFamilies`), for showing it."""
        experiment = run.experiment
        in_progress = live and (experiment is None or experiment.end is None)
        if self.config.layout == PEER_LAYOUT:
            yield peer_exposition(run, self.config.trace_id or run.run_id, self._ref(run),
                                  run.chaoslib_version or "", in_progress)
            return
        arguments = dict(trace_id=self.config.trace_id, experiment_ref=self._ref(run), in_progress=in_progress,
                         delivery="pushgateway")
        if spooled:
            yield from spooled_pieces(run_family_slices(run, **arguments, activities_per_slice=ACTIVITIES_PER_SLICE),
                                      text_exposition_pieces)
        else:
            yield from text_exposition_pieces(whole_families(run_families(run, **arguments)))


def _run_start(run: Run) -> datetime:
    """When the run started: its experiment's start, else its first event's."""
    experiment = run.experiment
    if experiment is not None:
        return experiment.start
    return min((event.start for event in run.events), default=datetime.min.replace(tzinfo=timezone.utc))


def peer_exposition(run: Run, trace_id: str, experiment_ref: str, chaoslib_version: str, in_progress: bool) -> str:
    """What chaostoolkit-prometheus' control pushed for a run, in the text format prometheus_client writes.

    Every series has the labels `source="chaostoolkit"`, `chaostoolkit_lib_version`,
    `chaostoolkit_run_trace_id` and `chaostoolkit_experiment_ref`. While the run goes on
    only `chaostoolkit_inprogress_experiment` 1 (the peer's push at the start); once it
    has ended, `chaostoolkit_experiment_status` (an Enum: one series per status, labelled
    `chaostoolkit_experiment_status`, 1 for the run's), `chaostoolkit_inprogress_experiment`
    0, `chaostoolkit_experiment_duration` (s), the `chaostoolkit_experiment_duration_dist`
    histogram and, for a deviated run, the `chaostoolkit_deviated_experiment_total` counter.
    The `_created` samples carry the run's start, when the peer created its collector.
    """
    labels = {"source": "chaostoolkit", "chaostoolkit_lib_version": chaoslib_version,
              "chaostoolkit_run_trace_id": trace_id, "chaostoolkit_experiment_ref": experiment_ref}
    experiment = run.experiment
    lines: List[str] = []

    def family(name: str, kind: str, help_text: str, samples: List[Tuple[str, Dict[str, str], float]]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        for sample_name, extra, value in samples:
            merged = [(key, text) for key, text in {**labels, **extra}.items() if text]
            lines.append(f"{sample_name}{label_text(merged)} {_go_float(value)}")

    ended = experiment is not None and experiment.end is not None and not in_progress
    if not ended:
        family("chaostoolkit_inprogress_experiment", "gauge", "Chaos Toolkit experiments in progress",
               [("chaostoolkit_inprogress_experiment", {}, 1.0)])
        return "\n".join(lines) + "\n"
    created = experiment.start.timestamp()
    duration = experiment.duration or 0.0
    family("chaostoolkit_experiment_status", "gauge", "Chaos Toolkit experiment runs status",
           [("chaostoolkit_experiment_status", {"chaostoolkit_experiment_status": status},
             1.0 if status == experiment.status else 0.0) for status in PEER_STATUSES])
    if experiment.fields.get("deviated"):
        family("chaostoolkit_deviated_experiment_total", "counter", "Chaos Toolkit deviated experiments",
               [("chaostoolkit_deviated_experiment_total", {}, 1.0)])
        family("chaostoolkit_deviated_experiment_created", "gauge", "Chaos Toolkit deviated experiments",
               [("chaostoolkit_deviated_experiment_created", {}, created)])
    family("chaostoolkit_inprogress_experiment", "gauge", "Chaos Toolkit experiments in progress",
           [("chaostoolkit_inprogress_experiment", {}, 0.0)])
    family("chaostoolkit_experiment_duration", "gauge", "Chaos Toolkit experiment duration",
           [("chaostoolkit_experiment_duration", {}, duration)])
    histogram = "chaostoolkit_experiment_duration_dist"
    buckets = [(f"{histogram}_bucket", {"le": _go_float(bound)}, 1.0 if duration <= bound else 0.0)
               for bound in PEER_BUCKETS]
    buckets.append((f"{histogram}_bucket", {"le": "+Inf"}, 1.0))
    family(histogram, "histogram", "Chaos Toolkit experiment duration distribution",
           buckets + [(f"{histogram}_count", {}, 1.0), (f"{histogram}_sum", {}, duration)])
    family(f"{histogram}_created", "gauge", "Chaos Toolkit experiment duration distribution",
           [(f"{histogram}_created", {}, created)])
    return "\n".join(lines) + "\n"


def _go_float(value: float) -> str:
    """prometheus_client's number format: `1.0`, `0.005`, `1.7e+09`."""
    return repr(float(value))



def _path_segment(name: str, value: str) -> str:
    # `.` and `..` would be dot segments: requests (like any URL client) removes them,
    # and the push would address another group (`job/..` is the gateway's root).
    if not value or "/" in value or value in (".", ".."):
        encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
        return f"/{name}@base64/{encoded or '='}"
    return f"/{name}/{quote(value, safe='')}"
