"""Deprecated name of `chaosreplay.controls.live`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.controls.live")
