"""Deprecated name of `chaosreplay.controls.influx`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.controls.influx")
