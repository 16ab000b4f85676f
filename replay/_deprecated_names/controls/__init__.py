"""Deprecated: `chaosreplay.controls` (see chaosreplay._deprecated_names)."""
