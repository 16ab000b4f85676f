"""Transformations of a run's timeline asked for on the command line."""
from datetime import datetime
from typing import Mapping

from .events import ACTIVITY, Run


def only_actions(run: Run) -> Run:
    """Leave probes out; phases, marks and the experiment stay."""
    return run.with_events(
        event for event in run.events
        if not (event.kind == ACTIVITY and event.activity_type == "probe")
    )


def add_tags(run: Run, tags: Mapping[str, str]) -> Run:
    if not tags:
        return run
    return run.with_events(event.evolve(tags={**event.tags, **tags}) for event in run.events)


def shift_to(run: Run, instant: datetime) -> Run:
    """Re-time the run so it starts at `instant`, keeping every offset.

    Ids are kept: a shifted run re-sent to a backend updates the same points and
    annotations. Shifted events are tagged `replayed` so dashboards can tell.
    """
    if not run.events:
        return run
    delta = instant - min(event.start for event in run.events)
    return run.with_events(
        event.evolve(
            start=event.start + delta,
            end=event.end + delta if event.end else None,
            tags={**event.tags, "replayed": "true"},
        )
        for event in run.events
    )
