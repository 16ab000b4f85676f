"""Deprecated name of `chaosreplay.controls.recorder`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.controls.recorder")
