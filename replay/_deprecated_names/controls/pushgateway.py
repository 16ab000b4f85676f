"""Deprecated name of `chaosreplay.controls.pushgateway`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.controls.pushgateway")
