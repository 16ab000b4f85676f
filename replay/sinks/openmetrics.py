"""OpenMetrics file sink: a run's series at their true times, for `promtool` to import.

`--openmetrics FILE` (or `OPENMETRICS_FILE`, or `openmetrics.path` in
`--config`) writes the samples of `prometheus_series.run_families` so that
`promtool tsdb create-blocks-from openmetrics FILE DIR` turns them into blocks
(timestamps in seconds, each family once, each series in time order, `# EOF`).
Every run replayed by one `chaos-replay` call goes into the same file; a
`{run_id}` in the name gives one file per run instead. The file is replaced
whole (written beside it, then renamed), so it is never left half-written.

A run id comes from a journal or a side file, so it never picks a path: in
`{run_id}` it is put in a safe file-name form (`file_name_for`), which cannot
leave the directory the user named.
"""
import os
import re
import tempfile
from hashlib import sha256
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
        families = run_families(run, delivery="openmetrics")
        return [PlannedRequest("WRITE", self._path_for(run), {}, openmetrics_text(families))]

    def send(self, run: Run) -> Delivery:
        path = self._path_for(run)
        ids = tuple(event.id for event in run.events)
        runs: Dict[str, List[Family]] = {}
        try:
            runs = self._written.setdefault(os.path.abspath(path), {})
            runs[run.run_id] = run_families(run, delivery="openmetrics")
            _replace_file(path, openmetrics_text(merge_families(*runs.values())))
        except (OSError, ValueError) as error:  # ValueError: a NUL in the configured path
            runs.pop(run.run_id, None)
            reason = getattr(error, "strerror", None) or error
            return Delivery(self.label, (), ids, f"cannot write {path}: {reason}")
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
