"""Journals crafted the way an attacker would: a real journal with some parts replaced.

A journal is a file anyone can hand over (a colleague's run, a CI artifact), so
the security tests start from a real one (`fixtures/journals/generated-basic.json`)
and change what an attacker controls: the experiment's configuration, secrets
and controls, run ids, statuses, errors.
"""
import copy
import json
import os
from typing import Any, Callable, Dict, Optional

from tests.conftest import JOURNALS

BASE_JOURNAL = os.path.join(JOURNALS, "generated-basic.json")


def base_journal() -> Dict[str, Any]:
    with open(BASE_JOURNAL, encoding="utf-8") as handle:
        return json.load(handle)


def write_journal(directory, change: Optional[Callable[[Dict[str, Any]], Any]] = None,
                  name: str = "crafted") -> str:
    """A copy of the base journal, changed in place by `change(document)`, written to `directory`."""
    document = copy.deepcopy(base_journal())
    if change is not None:
        change(document)
    path = os.path.join(str(directory), f"{name}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    return path


def with_recorded_run_id(document: Dict[str, Any], run_id: str) -> None:
    """Give the journal a recorder extension naming `run_id` (the reader prefers it)."""
    document.setdefault("extensions", []).append(
        {"name": "chaostoolkit-replay", "version": 1, "run_id": run_id, "events": []})


def ship_live(sections: Dict[str, Any], run, configuration=None, secrets=None) -> Dict[str, Any]:
    """Ship `run`'s events through the live controls' engine (what `chaosreplay.controls.live`
    does in a `chaos run`) to `sections`, drain, and return the journal's `deliveries` record."""
    from chaosreplay.controls.live import LiveShipping

    live = LiveShipping(sections, {"retries": 0, "drain_timeout": 10}, configuration=configuration,
                        secrets=secrets, name="test")
    for event in run.events:
        live.offer(event)
    return live.finish({})["deliveries"]
