"""Chaos Toolkit probes shipped with chaostoolkit-replay (`chaosreplay.probes.prometheus`)."""
