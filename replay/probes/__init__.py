"""Chaos Toolkit probes shipped with chaostoolkit-replay (`replay.probes.prometheus`)."""
