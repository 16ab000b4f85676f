"""Deprecated name of `chaosreplay.probes.prometheus`."""
from chaosreplay._deprecated_names import alias

alias(__name__, "chaosreplay.probes.prometheus")
