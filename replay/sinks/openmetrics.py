"""OpenMetrics file sink: a run's series at their true times, for `promtool` to import.

`--openmetrics FILE` (or `OPENMETRICS_FILE`, or `openmetrics.path` in
`--config`) writes the samples of `prometheus_series.run_families` so that
`promtool tsdb create-blocks-from openmetrics FILE DIR` turns them into blocks
(timestamps in seconds, each family once, each series in time order, `# EOF`).
Every run replayed by one `chaos-replay` call goes into the same file; a
`{run_id}` in the name gives one file per run instead. The file is replaced
whole (written beside it, then renamed), so it is never left half-written.
"""
import os
import tempfile
from typing import Dict, List

import click

from ..config import Settings, as_text
from ..events import Run
from . import Delivery, PlannedRequest
from .prometheus_series import Family, merge_families, openmetrics_text, run_families

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
    same instance, which rewrites the file with all the runs it was given."""

    def __init__(self, path: str):
        self.path = path
        self.label = f"openmetrics {path}"
        # file -> run id -> that run's families
        self._written: Dict[str, Dict[str, List[Family]]] = {}

    def plan(self, run: Run) -> List[PlannedRequest]:
        return [PlannedRequest("WRITE", self._path_for(run), {}, openmetrics_text(run_families(run)))]

    def send(self, run: Run) -> Delivery:
        path = self._path_for(run)
        runs = self._written.setdefault(os.path.abspath(path), {})
        runs[run.run_id] = run_families(run)
        ids = tuple(event.id for event in run.events)
        try:
            _replace_file(path, openmetrics_text(merge_families(*runs.values())))
        except OSError as error:
            del runs[run.run_id]
            return Delivery(self.label, (), ids, f"cannot write {path}: {error.strerror or error}")
        return Delivery(self.label, ids, (), None,
                        (f"import with: promtool tsdb create-blocks-from openmetrics {path} <prometheus data dir>",))

    def _path_for(self, run: Run) -> str:
        return self.path.replace("{run_id}", run.run_id)


def _replace_file(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".openmetrics-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
