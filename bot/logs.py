"""How carebot's log lines look: ``CAREBOT_LOG_FORMAT=text`` (the default) or ``json``.

Both carry the time in UTC with its zone (ISO 8601, ``2026-11-03T02:00:00.123+00:00``),
whatever the server's time zone. ``text`` is one line per event as people read it (a
traceback follows on the next lines); ``json`` is exactly one JSON object per line, for a
log shipper: ``time``, ``level``, ``logger``, ``message``, and ``exception`` (the traceback,
folded into the line) when there is one.

What is logged is the caller's business: carebot logs ids (update, ticket, chat), never an
owner's phone or text, nor a token or password (``tests/test_logs.py`` runs a whole
scenario and looks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Libraries that say too much at INFO (aiohttp.access: carebot's own access log replaces it).
NOISY = ("httpx", "apscheduler", "tortoise", "aiosqlite", "asyncio", "aiohttp.access")
# "Execution of job ... skipped: maximum number of running instances reached": a job still
# busy (a staff post waiting out a Telegram outage) when its next turn comes, every 3 s.
QUIET = ("apscheduler.scheduler",)
JOBS = "apscheduler.executors.default"  # "Job ... raised an exception", with the traceback


class NotCancelled(logging.Filter):
    """Drops a job's "raised an exception" when the exception is its cancellation: a job
    cut short by the stop (SIGTERM while it waited for Telegram) is no error, and its
    chained traceback ran to 80 lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


_NOT_CANCELLED = NotCancelled()


def utc_time(record: logging.LogRecord) -> str:
    """The record's time in UTC, ISO 8601 with its zone, to the millisecond."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """The usual one line per event, with a UTC time that says so."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord,
                   datefmt: str | None = None) -> str:
        return utc_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is the ``exception`` field of that line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup(fmt: str = "text", *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Send the log to stderr (the journal under systemd) in ``fmt``; called again once the
    settings are read, it replaces its own handler (other handlers, a test's, stay)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "carebot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.carebot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for quiet in QUIET:
        logging.getLogger(quiet).setLevel(logging.ERROR)
    logging.getLogger(JOBS).addFilter(_NOT_CANCELLED)  # the same object: added once
