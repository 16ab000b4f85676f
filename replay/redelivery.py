"""What `chaos-replay --only-undelivered` re-sent, kept next to the journal.

The journal's `deliveries` record says what the live delivery missed; it is
never rewritten (journal.json is chaostoolkit's file, and the run's own
record). After a re-send, what each target still misses is written to
`<journal>.redelivered` beside it (JSON, replaced atomically: a temporary file
renamed over it), so running the same command again sends only what is still
missing, and nothing once everything is through. The name has no `.json`
ending, so directories and `*.json` globs of journals never pick it up.
Delete the file to re-send from the journal's own record again.

    {"run_id": "<run id>",
     "deliveries": {"<target label>": {"undelivered": ["<event id>", ...]}}}
"""
import json
import os
import tempfile
from typing import Any, Dict, Iterable, Mapping, Optional

from .sinks import Delivery

__all__ = ["RECORD_SUFFIX", "record_path", "read_record", "write_record"]

RECORD_SUFFIX = ".redelivered"


def record_path(source: str) -> str:
    return source + RECORD_SUFFIX


def read_record(source: str, run_id: str) -> Dict[str, Mapping[str, Any]]:
    """Target label -> its record after the last re-send of this run; {} without one.

    A file for another run (the journal was replaced) or one that cannot be
    read is ignored: the journal's own record applies then.
    """
    try:
        with open(record_path(source), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(record, dict) or record.get("run_id") != run_id:
        return {}
    deliveries = record.get("deliveries")
    if not isinstance(deliveries, dict):
        return {}
    return {label: entry for label, entry in deliveries.items()
            if isinstance(entry, dict) and isinstance(entry.get("undelivered"), list)}


def write_record(source: str, run_id: str, sent: Iterable[Delivery]) -> Optional[str]:
    """Record what each target of `sent` still misses; the problem if it cannot be written, else None."""
    deliveries: Dict[str, Any] = dict(read_record(source, run_id))
    for delivery in sent:
        deliveries[delivery.target] = {"undelivered": list(delivery.failed)}
    path = record_path(source)
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=os.path.dirname(path) or ".",
                                             prefix=".redelivered-", delete=False)
        try:
            with handle:
                json.dump({"run_id": run_id, "deliveries": deliveries}, handle, indent=2, ensure_ascii=True)
            os.replace(handle.name, path)
        except BaseException:
            os.unlink(handle.name)
            raise
    except OSError as error:
        return f"{path}: {error.strerror or error}"
    return None
