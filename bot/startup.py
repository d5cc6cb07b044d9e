"""What stops carebot before it can work: one line that names the setting or the
dependency and what to check. The CLI prints it and exits with code 2 (no traceback), so
the journal of a service that cannot start says why in one line."""

from __future__ import annotations

EXIT_CODE = 2


class StartupError(Exception):
    """A setting is wrong or something carebot needs (the database, Telegram, a port) cannot
    be reached; ``str()`` is the one line to print."""
