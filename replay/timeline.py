"""Transformations of a run's timeline asked for on the command line."""
from dataclasses import replace
from datetime import datetime
from typing import Mapping

from .events import ACTIVITY, Run, shifted_event_id, shifted_run_id


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

    A shifted run is another run: it gets its own run id and event ids, derived
    from the original's and the instant, so it never counts as the original
    next to it, and shifting the same run to the same instant again updates the
    same points and annotations. Shifted events are tagged `replayed`.
    """
    if not run.events:
        return run
    delta = instant - min(event.start for event in run.events)
    run_id = shifted_run_id(run.run_id, instant)
    return replace(run, run_id=run_id, events=tuple(
        event.evolve(
            id=shifted_event_id(run_id, event.id),
            run_id=run_id,
            start=event.start + delta,
            end=event.end + delta if event.end else None,
            tags={**event.tags, "replayed": "true"},
        )
        for event in run.events
    ))
