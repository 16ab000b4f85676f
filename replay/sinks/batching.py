"""Batches that many runs share: N small runs cost about N / batch requests, not N.

`CrossRunBatches` takes the items (InfluxDB lines, remote-write series) of
run after run, cuts them into batches of `size` items whatever run they come
from, and writes each batch from one writer thread while the caller builds
the next (at most `IN_FLIGHT` batches wait to be written: memory stays
bounded by the batches, not by the input). When every item of a run has been
accounted for, the run's outcome is handed to its `done` callback, in the
order the runs were added.

A sink provides `write(items) -> (stored items, [(index in batch, reason)])`,
raising `Unreachable` when the whole batch did not get through, and may say what
a run's outcome keeps of each item stored or failed (`keep`: its event's id, say,
rather than a whole line: a run of 10^6 events would hold them all until its end).
"""
import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Deque, Iterable, List, Optional, Tuple

from .http import Refused, Unreachable

__all__ = ["CrossRunBatches", "RunOutcome", "IN_FLIGHT"]

logger = logging.getLogger("chaostoolkit_replay.batching")

# Batches handed to the writer and not written yet: one on the wire, one ready.
IN_FLIGHT = 2


@dataclass(eq=False)  # compared and hashed by identity: one per run queued
class RunOutcome:
    """What became of one run's items."""

    run: Any
    items: int = 0
    # `keep(item)` of the items stored, and of the items of batches that did not get through at all.
    stored: List[Any] = field(default_factory=list)
    failed: List[Any] = field(default_factory=list)
    # (1-based position of the item in its run, item, reason)
    rejected: List[Tuple[int, Any, str]] = field(default_factory=list)
    error: Optional[Unreachable] = None
    batches: int = 0
    failed_batches: int = 0
    # Items handed to the writer, and those of them not written (or failed) yet.
    _dispatched: int = 0
    _open_items: int = 0
    _added: bool = False
    _done: Optional[Callable[["RunOutcome"], None]] = None

    @property
    def refused(self) -> bool:
        return isinstance(self.error, Refused)

    @property
    def complete(self) -> bool:
        """Every item is added, handed to the writer and accounted for."""
        return self._added and self._dispatched == self.items and self._open_items == 0


class CrossRunBatches:
    def __init__(self, size: int, write: Callable[[List[Any]], Tuple[List[Any], List[Tuple[int, str]]]],
                 name: str, keep: Callable[[Any], Any] = lambda item: item):
        self.size = size
        self._write = write
        self._keep = keep
        # The items waiting for a full batch, and which run each stretch of them is from:
        # (outcome, index of its first item here, position of that item in its run).
        self._items: List[Any] = []
        self._segments: List[Tuple[RunOutcome, int, int]] = []
        self._in_flight: Deque[Future] = deque()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        # Outcomes complete in the order their runs were added.
        self._waiting: Deque[RunOutcome] = deque()
        self._lock = threading.Lock()

    def add(self, run: Any, items: Iterable[Any], done: Callable[[RunOutcome], None]) -> None:
        """Queue a run's items; `done(outcome)` is called once they are all written or failed."""
        outcome = RunOutcome(run, _done=done)
        with self._lock:
            self._waiting.append(outcome)
        buffer, size = self._items, self.size
        self._segments.append((outcome, len(buffer), 1))
        position = 0
        items = iter(items)
        while True:
            # The items are taken a batch's room at a time (one call, not one per item).
            before = len(buffer)
            buffer.extend(islice(items, size - before))
            position += len(buffer) - before
            if len(buffer) < size:  # the items ran out before the batch was full
                break
            self._dispatch()
            buffer = self._items
            self._segments.append((outcome, 0, position + 1))
        with self._lock:
            outcome.items = position
            outcome._added = True
        self._finish_ready()

    def fail_run(self, run: Any, error: Unreachable, done: Callable[[RunOutcome], None]) -> None:
        """A run that could not even be queued (its database could not be created)."""
        outcome = RunOutcome(run, error=error, _done=done, _added=True)
        with self._lock:
            self._waiting.append(outcome)
        self._finish_ready()

    def flush(self) -> None:
        """Write what waits for a full batch, and wait until everything queued is written."""
        if self._items:
            self._dispatch()
        while self._in_flight:
            self._in_flight.popleft().result()
        self._finish_ready()

    def close(self) -> None:
        self._writer.shutdown(wait=False)

    def _dispatch(self) -> None:
        items, self._items = self._items, []
        # (outcome, first index, end index, position of the first item in its run), none empty
        bounds = [start for _, start, _ in self._segments[1:]] + [len(items)]
        segments = [(outcome, start, end, first) for (outcome, start, first), end in zip(self._segments, bounds)
                    if end > start]
        self._segments = []
        with self._lock:
            for outcome, start, end, _ in segments:
                outcome.batches += 1
                outcome._dispatched += end - start
                outcome._open_items += end - start
        self._in_flight.append(self._writer.submit(self._write_batch, items, segments))
        while len(self._in_flight) >= IN_FLIGHT:
            self._in_flight.popleft().result()

    def _write_batch(self, items: List[Any], segments: List[Tuple[RunOutcome, int, int, int]]) -> None:
        try:
            stored, rejected = self._write(items)
            error = None
        except Unreachable as unreachable:
            stored, rejected, error = [], [], unreachable
        except Exception as bug:  # reported with the runs, not lost in the writer thread
            logger.debug("writing a batch failed", exc_info=True)
            stored, rejected, error = [], [], Unreachable(f"internal error ({type(bug).__name__})")
        whole = error is None and not rejected and len(stored) == len(items)
        stored_ids = set() if whole else {id(item) for item in stored}
        reasons = dict(rejected)
        keep = self._keep
        with self._lock:
            for outcome, start, end, first in segments:
                outcome._open_items -= end - start
                if whole:
                    outcome.stored.extend(map(keep, items[start:end]))
                    continue
                for index in range(start, end):
                    item = items[index]
                    if id(item) in stored_ids:
                        outcome.stored.append(keep(item))
                    elif index in reasons:
                        outcome.rejected.append((first + index - start, item, reasons[index]))
                    elif error is not None:
                        outcome.failed.append(keep(item))
                if error is not None:
                    outcome.failed_batches += 1
                    outcome.error = outcome.error or error
        self._finish_ready()

    def _finish_ready(self) -> None:
        """Hand over, in order, the outcomes of runs whose items are all accounted for."""
        ready = []
        with self._lock:
            while self._waiting and self._waiting[0].complete:
                ready.append(self._waiting.popleft())
        for outcome in ready:
            outcome._done(outcome)
