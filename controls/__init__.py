"""Chaos Toolkit controls: the recorder and the live shippers built on it."""
