"""The back-fill pipeline: reading, serializing and sending overlap, and each server
takes runs at its own pace.

`chaos-replay` reads the runs in a reader thread (`read_ahead`, a bounded
queue) and hands each run to one `Lane` per server. A lane is a thread that
sends to its server's targets in the order the runs come, never waiting for
another server: a slow Grafana does not hold InfluxDB back. Within a lane a
target is used the way it sends best (see chaosreplay.sinks):

- `submit(run, done)` and `flush()`: the run joins batches shared with the
  runs before it (InfluxDB lines, remote-write series);
- `send_runs(runs)`: a window of up to `WINDOW_RUNS` runs at once (Grafana:
  one look-up for the window, then requests in parallel); the targets of one
  lane take the window one after the other, so a target's look-up sees what
  the previous target of that server created;
- `send(run)`: one run at a time.

Each (run, target) gets a Future of its Delivery; the caller prints runs in
input order as their futures complete, and holds at most a bounded number of
runs in flight: when it has to wait for the oldest, it asks the lanes still
holding that run to `flush` first, so no run waits for a batch that only later
runs would fill.
"""
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple

__all__ = ["Lane", "Job", "read_ahead", "WINDOW_RUNS", "WINDOW_EVENTS"]

# A window of runs for targets that send several runs at once (Grafana's look-up covers them all).
WINDOW_RUNS = 100
WINDOW_EVENTS = 20_000

_FLUSH = object()
_END = object()

# (target, the part of the run it gets or None for nothing to send, what to say instead, its Future)
Job = Tuple[Any, Any, Any, Future]


class Lane:
    """One server's targets, fed runs in order by one thread."""

    def __init__(self, name: str):
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._streaming: Dict[int, Any] = {}
        self._thread = threading.Thread(target=self._work, name=f"chaos-replay-send {name}", daemon=True)
        self._thread.start()

    def put(self, jobs: List[Job]) -> None:
        """Send one run to this server's targets (in the jobs' order)."""
        self._queue.put(jobs)

    def flush(self) -> None:
        """Send now what waits for a fuller batch or window."""
        self._queue.put(_FLUSH)

    def end(self) -> None:
        self._queue.put(_END)

    def join(self) -> None:
        self._thread.join()

    def _work(self) -> None:
        window: List[Job] = []
        window_runs = window_events = 0
        while True:
            item = self._queue.get()
            if item is _FLUSH or item is _END:
                self._send_window(window)
                window, window_runs, window_events = [], 0, 0
                for target in self._streaming.values():
                    _guarded(target.flush)
                if item is _END:
                    return
                continue
            windowed = False
            for job in item:
                target, part, nothing, future = job
                if part is None:
                    future.set_result(nothing)
                elif hasattr(target, "send_runs"):
                    window.append(job)
                    windowed = True
                    window_events += len(part.events)
                elif hasattr(target, "submit"):
                    self._streaming[id(target)] = target
                    _run_into(future, lambda: target.submit(part, future.set_result))
                else:
                    _run_into(future, lambda: future.set_result(target.send(part)))
            window_runs += windowed
            if window_runs >= WINDOW_RUNS or window_events >= WINDOW_EVENTS:
                self._send_window(window)
                window, window_runs, window_events = [], 0, 0

    @staticmethod
    def _send_window(window: List[Job]) -> None:
        """Each target takes its runs of the window in turn."""
        by_target: Dict[int, List[Job]] = {}
        for job in window:
            by_target.setdefault(id(job[0]), []).append(job)
        for jobs in by_target.values():
            target = jobs[0][0]
            futures = [future for _, _, _, future in jobs]
            try:
                deliveries = target.send_runs([part for _, part, _, _ in jobs])
            except BaseException as error:  # a sink bug: the caller raises it with its traceback
                for future in futures:
                    future.set_exception(error)
                continue
            for future, delivery in zip(futures, deliveries):
                future.set_result(delivery)


def _run_into(future: Future, action: Callable[[], None]) -> None:
    """Run `action`; an exception (a sink bug) goes to `future`, for the caller to raise."""
    try:
        action()
    except BaseException as error:
        if not future.done():
            future.set_exception(error)


def _guarded(action: Callable[[], None]) -> None:
    # A flush's failures are reported through the runs' futures; a bug must not end the lane.
    try:
        action()
    except Exception:
        pass


def read_ahead(items: Iterable[Any], size: int) -> Iterator[Any]:
    """`items` produced by a thread, at most `size` ahead of the consumer; an exception
    raised while producing is raised to the consumer at that point."""
    buffer: "queue.Queue[Any]" = queue.Queue(maxsize=size)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                buffer.put((item, None))
        except BaseException as error:
            buffer.put((None, error))
        buffer.put((done, None))

    threading.Thread(target=produce, name="chaos-replay-read", daemon=True).start()
    while True:
        item, error = buffer.get()
        if error is not None:
            raise error
        if item is done:
            return
        yield item

