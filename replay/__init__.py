"""chaostoolkit-replay: record Chaos Toolkit runs now, ship them any time."""

__version__ = "0.1.0"
