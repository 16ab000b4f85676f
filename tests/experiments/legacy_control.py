"""The recorder as a chaoslib < 1.26 sees it: hooks only, no run event registry.

`configure_control` does not name `event_registry`, so chaoslib does not pass
one; the tests switch the recorder to its hook mode before running.
"""
from chaosreplay.controls.recorder import hook_functions, install


def configure_control(events_path=None, tags=None, **arguments):
    install(None, events_path=events_path, tags=tags)


globals().update(hook_functions())
