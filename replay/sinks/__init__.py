"""Sinks: where Events go. Each sink module is a pure serializer plus a small transport.

A sink module (``chaosreplay.sinks.<name>``) exposes:

- ``OPTIONS``: the click options it adds to ``chaos-replay`` (a list of
  ``click.option(...)`` decorators);
- ``targets(settings) -> list[Target]``: its targets resolved from a
  :class:`chaosreplay.config.Settings`, raising :class:`chaosreplay.errors.ConfigError`
  naming the key at fault. No target configured -> ``[]``.

A ``Target`` has a ``label`` (kind and URL, never a credential) and:

- ``plan(run) -> list[PlannedRequest]``: the exact requests a send would make,
  credentials masked; ``planned(run) -> Planned``: the same requests made one at a
  time, how many known first (``--dry-run`` of a run of 10^6 events);
- ``send(run) -> Delivery``: deliver the run's events; never raises for a
  backend failure, it reports it in the Delivery (``refused`` when the
  server refused the credentials);
- ``close()``, if it holds anything to release (an HTTP session): called once
  when ``chaos-replay`` or a live run is done with the target (callers use
  ``getattr``, so a target with nothing to release has none).

For a back-fill of many runs (``chaosreplay.pipeline``), a target may also have:

- ``submit(run, done)`` and ``flush()``: the run joins batches shared with the
  runs submitted before it; ``done(delivery)`` is called once its events are
  written or failed, ``flush`` sends what waits for a full batch (InfluxDB);
- ``send_runs(runs) -> list[Delivery]``: several runs at once, one Delivery
  each, in order (Grafana: one look-up for runs close in time, requests in
  parallel);
- ``finish() -> str | None``: called once every run is sent, for a target
  that writes at the end (the OpenMetrics file of many runs); the problem on
  one line, or None.

Optional class attributes, read with ``getattr`` (default False):

- ``ships_open_events``: live delivery also sends events not ended yet, since
  the target updates what it stored in place (Grafana);
- ``needs_whole_run``: ``--only-undelivered`` gives the target the whole run,
  not only the events it missed, since what it stores replaces what it held
  (the pushgateway's PUT of a group).
"""
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

__all__ = ["PlannedRequest", "Planned", "BodyText", "Delivery", "SINK_MODULES", "sink_modules", "shorten"]

# Order is the order targets are listed and sent to.
SINK_MODULES: Tuple[str, ...] = ("influx", "grafana", "pushgateway", "remote_write", "openmetrics")


@dataclass(frozen=True)
class PlannedRequest:
    method: str
    url: str
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = None

    def to_dict(self) -> dict:
        body = str(self.body) if isinstance(self.body, BodyText) else self.body
        return {"method": self.method, "url": self.url, "headers": dict(self.headers), "body": body}


class BodyText:
    """A request body too big to hold at once (an OpenMetrics file of 10^6 activities): its
    text made a piece at a time, each piece whole lines, made again at each iteration."""

    def __init__(self, pieces: Callable[[], Iterable[str]]):
        self._pieces = pieces

    def __iter__(self) -> Iterator[str]:
        return iter(self._pieces())

    def __str__(self) -> str:
        return "".join(self)


class Planned:
    """The requests a target would make for a run: how many (`len`), known before the first
    is made, then the requests themselves, made one at a time as they are iterated (once)."""

    def __init__(self, count: int, requests: Iterable[PlannedRequest]):
        self._count = count
        self._requests = iter(requests)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[PlannedRequest]:
        return self._requests

    def whole(self) -> List[PlannedRequest]:
        """Every request, each body whole (a run of a few events: tests, `plan`)."""
        return [PlannedRequest(request.method, request.url, request.headers, str(request.body))
                if isinstance(request.body, BodyText) else request for request in self]


@dataclass(frozen=True)
class Delivery:
    """What one target did with one run's events."""

    target: str
    delivered: Tuple[str, ...] = ()
    failed: Tuple[str, ...] = ()
    error: Optional[str] = None
    notes: Tuple[str, ...] = ()
    # The server refused the credentials (401/403): sending again will not help.
    refused: bool = False
    # Nothing was sent: `--only-undelivered` found nothing the target misses.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "delivered": len(self.delivered),
            "failed": list(self.failed),
            "error": self.error,
            "notes": list(self.notes),
            "refused": self.refused,
        }


def shorten(text: str, limit: int) -> str:
    """`text` on one line of at most `limit` characters, for messages and annotations."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sink_modules() -> List[Any]:
    return [importlib.import_module(f"{__name__}.{name}") for name in SINK_MODULES]
