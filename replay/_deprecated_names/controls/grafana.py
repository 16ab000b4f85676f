"""Deprecated name of `chaosreplay.controls.grafana`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.controls.grafana")
