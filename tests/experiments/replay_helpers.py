"""Python providers for the recorder's end-to-end experiments."""
import os
import time

from chaoslib.exceptions import ActivityFailed


def explode(message: str = "boom") -> None:
    raise ActivityFailed(message)


def pause(seconds: float) -> None:
    time.sleep(seconds)


def file_exists(path: str) -> bool:
    return os.path.exists(path)


def remove_file(path: str) -> None:
    os.remove(path)


def create_file(path: str) -> None:
    with open(path, "w", encoding="utf-8"):
        pass


def mark_with_odd_fields():
    """A mark whose fields JSON cannot encode as they are."""
    from datetime import datetime, timezone

    from chaosreplay.controls.recorder import mark

    return mark("odd", fields={"ratio": float("nan"), "ids": (1, 2),
                               "at": datetime(2024, 1, 1, tzinfo=timezone.utc),
                               "nested": {1: float("inf")}})
