"""chaostoolkit-replay: record Chaos Toolkit runs now, ship them any time.

The package is imported as `chaosreplay` (the repository's `replay/` folder);
its controls as `chaosreplay.controls` (the `controls/` folder).
"""

# The one place the version is written: setup.cfg and `chaos-replay --version` read it.
__version__ = "0.2.0"

# Where experiments find the controls: the package path, then the top-level
# names of 0.1, kept as deprecated aliases (see CHANGELOG.md).
CONTROL_PACKAGES = ("chaosreplay.controls", "controls")
