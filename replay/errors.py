"""Errors users see as one line, and the exit codes they map to."""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INVALID_JOURNAL = 3
EXIT_INVALID_CONFIG = 4
EXIT_UNDELIVERED = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


class ReplayError(Exception):
    """An error meant for the user's terminal: one line, no traceback, its own exit code."""


class JournalError(ReplayError):
    """A journal (or side file) that cannot be read: says which file and where."""

    exit_code = EXIT_INVALID_JOURNAL

    def __init__(self, source: str, location: str, message: str):
        self.source = source
        self.location = location
        self.message = message
        where = f"{source}: {location}" if location else source
        super().__init__(f"{where}: {message}")


class NotAJournal(JournalError):
    """A JSON file that is no journal at all (an experiment, say): found in a directory
    or by a glob, it is passed over; named on the command line, it is an error."""


class ConfigError(ReplayError):
    """A target configuration that cannot be used: names the key at fault.

    The message never carries a secret's value, only the key's name.
    """

    exit_code = EXIT_INVALID_CONFIG

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"configuration {key}: {message}")
