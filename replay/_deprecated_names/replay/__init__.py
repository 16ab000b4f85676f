"""Deprecated: `chaosreplay` (see chaosreplay._deprecated_names)."""
