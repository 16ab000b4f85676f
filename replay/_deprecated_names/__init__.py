"""The module names of chaostoolkit-replay 0.1, kept working until 0.3.

0.1 installed top-level `controls` and `replay` packages. A team's own
`controls/` package beside its experiments shadowed ours, and `replay` is
another project's name on the package index, so experiments now name
`chaosreplay.controls.*` and `chaosreplay.probes.*`. Each old module is the new
one under a second name: importing it logs one warning that names the new path.
"""
import logging
import sys
from importlib import import_module

logger = logging.getLogger("chaostoolkit")
_warned = set()


def alias(old_name: str, new_name: str) -> None:
    """Make `old_name` the very module `new_name` (same functions, same state)."""
    module = import_module(new_name)
    sys.modules[old_name] = module
    if old_name not in _warned:
        _warned.add(old_name)
        logger.warning(f"chaostoolkit-replay: module {old_name!r} is deprecated and will be removed in 0.3; "
                       f"use {new_name!r} in the experiment")
