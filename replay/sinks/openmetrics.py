"""OpenMetrics file sink: a run's series at their true times, for `promtool` to import.

`--openmetrics FILE` (or `OPENMETRICS_FILE`, or `openmetrics.path` in
`--config`) writes the samples of `prometheus_series.run_families` so that
`promtool tsdb create-blocks-from openmetrics FILE DIR` turns them into blocks
(timestamps in seconds, each family once, each series in time order, `# EOF`).
Every run replayed by one `chaos-replay` call goes into the same file; a
`{run_id}` in the name gives one file per run instead.

The runs' series are spooled (`prometheus_series.SpooledFamilies`), one
temporary file per family beside the output, as the runs come (memory holds one
run's events at a time, not the whole input, and the series of a slice of its
activities); the file is written once, when the last run is in (`finish`):
written beside, then renamed, so it is never left half-written. `send` (one
run) writes the file with every run sent so far at once.

A run id comes from a journal or a side file, so it never picks a path: in
`{run_id}` it is put in a safe file-name form (`file_name_for`), which cannot
leave the directory the user named.
"""
import os
import re
import tempfile
from hashlib import sha256
from typing import IO, Callable, List, Optional, Sequence, Set

import click

from ..config import Settings, as_text
from ..events import Run
from . import BodyText, Delivery, Planned, PlannedRequest
from .prometheus_series import (ACTIVITIES_PER_SLICE, SpooledFamilies, openmetrics_pieces, openmetrics_text,
                                run_families, run_family_slices, spooled_pieces)

__all__ = ["OPTIONS", "OpenMetricsTarget", "targets"]

OPTIONS = [
    click.option("--openmetrics", "openmetrics", metavar="FILE",
                 help="Write the runs' series with their true times as an OpenMetrics file for "
                      "`promtool tsdb create-blocks-from openmetrics` ({run_id} in the name: one file per run) "
                      "[env OPENMETRICS_FILE]."),
]


def targets(settings: Settings) -> List["OpenMetricsTarget"]:
    settings.check_section("openmetrics", ("path",))
    path = settings.pick(cli="openmetrics", env="OPENMETRICS_FILE", file="openmetrics.path")
    if path is None:
        return []
    return [OpenMetricsTarget(as_text(path, "openmetrics.path"))]


class OpenMetricsTarget:
    """One file (or one per run with `{run_id}`); `chaos-replay` hands every run to the
    same instance, which writes the file with all of them when `finish` is called."""

    def __init__(self, path: str):
        self.path = path
        self.label = f"openmetrics {path}"
        # One file of many runs: their families' series spooled beside it; the runs already in it.
        self._spooled = SpooledFamilies(directory=os.path.dirname(os.path.abspath(path)))
        self._runs: Set[str] = set()
        self._unwritten = False

    def plan(self, run: Run) -> List[PlannedRequest]:
        return self.planned(run).whole()

    def planned(self, run: Run) -> Planned:
        body = BodyText(lambda: spooled_pieces(
            run_family_slices(run, delivery="openmetrics", activities_per_slice=ACTIVITIES_PER_SLICE),
            openmetrics_pieces))
        return Planned(1, [PlannedRequest("WRITE", self._path_for(run), {}, body)])

    def send(self, run: Run) -> Delivery:
        [delivery] = self.send_runs([run])
        if not delivery.ok:
            return delivery
        problem = self.finish()
        if problem:
            return Delivery(self.label, (), delivery.delivered, problem)
        return delivery

    def send_runs(self, runs: Sequence[Run]) -> List[Delivery]:
        """Add the runs to the file (spooled until `finish`), or write each run's own file."""
        return [self._add(run) for run in runs]

    def finish(self) -> Optional[str]:
        """Write the file of many runs, if runs were added since it was last written;
        the error on one line, or None."""
        if not self._unwritten:
            return None
        try:
            _replace_file(self.path, lambda out: out.writelines(openmetrics_pieces(self._spooled.families())))
        except (OSError, ValueError) as error:
            return f"cannot write {self.path}: {_reason(error)}"
        self._unwritten = False
        return None

    def close(self) -> None:
        self._spooled.close()

    def _add(self, run: Run) -> Delivery:
        path = self._path_for(run)
        ids = tuple(event.id for event in run.events)
        try:
            if path != self.path:
                families = run_families(run, delivery="openmetrics")
                _replace_file(path, lambda out: out.write(openmetrics_text(families)))
            elif run.run_id not in self._runs:  # the same run given twice is written once
                for families in run_family_slices(run, delivery="openmetrics",
                                                  activities_per_slice=ACTIVITIES_PER_SLICE):
                    self._spooled.add(families)
                self._runs.add(run.run_id)
                self._unwritten = True
        except (OSError, ValueError) as error:  # ValueError: a NUL in the configured path
            return Delivery(self.label, (), ids, f"cannot write {path}: {_reason(error)}")
        return Delivery(self.label, ids, (), None,
                        (f"import with: promtool tsdb create-blocks-from openmetrics {path} <prometheus data dir>",))

    def _path_for(self, run: Run) -> str:
        return self.path.replace("{run_id}", file_name_for(run.run_id))


_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9_.-]")
_FILE_NAME_LIMIT = 100


def file_name_for(run_id: str) -> str:
    """`run_id` as one safe file-name component: itself when it is made of letters,
    digits, `_`, `.` and `-` only (the recorder's and the reader's hex ids are),
    and neither `.` nor `..`; otherwise its safe characters (others become `_`)
    and a hash of the whole id, so that two different ids never share a file.
    """
    safe = _UNSAFE_IN_FILE_NAMES.sub("_", run_id)[:_FILE_NAME_LIMIT]
    if safe == run_id and safe.strip(".") and not safe.startswith("-"):
        return safe
    digest = sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"run_{safe.strip('.')}_{digest}"


def _reason(error: Exception) -> str:
    return str(getattr(error, "strerror", None) or error)


def _replace_file(path: str, write: Callable[[IO[str]], None]) -> None:
    """Write `path` beside it, then rename: never left half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".openmetrics-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            write(out)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
