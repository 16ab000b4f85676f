"""Many runs shaped like the bundled real journals, for the back-fill tests and benchmark.

Each copy of a real journal (fixtures/journals) is re-timed to start an hour
after the previous copy, as a CI job's runs do, and names its own node, so
each copy is a run of its own (a run's id derives from its title, start and node).
"""
import glob
import json
import os
from datetime import datetime, timedelta
from typing import Any, List

from tests.conftest import JOURNALS

__all__ = ["real_journals", "write_copies"]

_TIME_KEYS = ("start", "end")
_ORIGIN = datetime(2024, 5, 1)


def real_journals() -> List[dict]:
    """The bundled real journals that are whole JSON (one is truncated on purpose)."""
    journals = []
    for path in sorted(glob.glob(os.path.join(JOURNALS, "*.json"))):
        try:
            with open(path, encoding="utf-8") as handle:
                journals.append(json.load(handle))
        except ValueError:
            continue
    return journals


def _shifted(value: Any, delta: timedelta) -> Any:
    """Every `start`/`end` timestamp in `value` moved by `delta`, written as chaoslib writes it."""
    if isinstance(value, list):
        return [_shifted(item, delta) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {}
    for key, item in value.items():
        if key in _TIME_KEYS and isinstance(item, str):
            try:
                item = (datetime.fromisoformat(item) + delta).isoformat()
            except ValueError:
                pass
        copy[key] = _shifted(item, delta)
    return copy


def write_copies(directory: str, runs: int) -> List[str]:
    """`runs` copies of the real journals, in turn, one an hour; their paths in time order."""
    originals = real_journals()
    paths = []
    for index in range(runs):
        original = originals[index % len(originals)]
        start = datetime.fromisoformat(original["start"]).replace(tzinfo=None)
        journal = _shifted(original, _ORIGIN + timedelta(hours=index) - start)
        journal["node"] = f"{journal.get('node') or 'node'}-{index}"
        # A recorded run id would make every copy the same run.
        for extension in journal.get("extensions") or []:
            if isinstance(extension, dict) and "run_id" in extension:
                extension["run_id"] = f"{extension['run_id']}-{index}"
        path = os.path.join(directory, f"run-{index:05d}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(journal, handle)
        paths.append(path)
    return paths
