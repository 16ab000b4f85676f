"""Python providers for the recorder's end-to-end experiments."""
import os

from chaoslib.exceptions import ActivityFailed


def explode(message: str = "boom") -> None:
    raise ActivityFailed(message)


def file_exists(path: str) -> bool:
    return os.path.exists(path)


def remove_file(path: str) -> None:
    os.remove(path)


def create_file(path: str) -> None:
    with open(path, "w", encoding="utf-8"):
        pass
