"""Deprecated: `chaosreplay.probes` (see chaosreplay._deprecated_names)."""
