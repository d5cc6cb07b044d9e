"""Error alerts to the staff group, rate-limited and digested.

The first error of a kind (a handler's exception class, an update parked with it) is told at
once. Further errors of that kind within the window (``CAREBOT_ERROR_ALERT_MINUTES``, 10)
are only counted; when the window closes, a periodic tick tells them once: "12 errors of
this kind in the last 10 minutes". A window that closed with a digest is followed by another
quiet one, so a steady flood makes one message per window; a window that closed with
nothing more to tell ends, and the next error of the kind is told at once again.

The windows are kept in memory, per process (no table: a restart starts afresh, and with
several instances each tells its own first error and digest). What is told is built by the
caller from ids and the error's class only, never an owner's text or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Window:
    """One kind's window: since when, how many errors in it, whether the first was told."""

    started: datetime
    count: int
    first_told: bool

    @property
    def untold(self) -> int:
        return self.count - (1 if self.first_told else 0)


@dataclass(frozen=True)
class Digest:
    """What a closed window owes: ``count`` errors of ``kind`` in ``minutes`` minutes."""

    kind: str
    count: int
    minutes: int
    started: datetime


class ErrorDigest:
    """The windows of every kind of error; see the module's docstring."""

    def __init__(self, minutes: float = 10.0) -> None:
        self.window = timedelta(minutes=minutes)
        self.windows: dict[str, Window] = {}

    def note(self, kind: str, now: datetime) -> Window | None:
        """An error of ``kind`` happened: its new window when it is to be told now (the
        first of its kind), None when it is only counted."""
        window = self.windows.get(kind)
        if window is None:
            window = self.windows[kind] = Window(started=now, count=1, first_told=True)
            return window
        window.count += 1
        return None

    def due(self, now: datetime) -> list[Digest]:
        """The windows closed by ``now`` with errors not told yet, as digests to tell; each
        is followed by a quiet window, the others end."""
        digests = []
        for kind, window in list(self.windows.items()):
            if now < window.started + self.window:
                continue
            if window.untold <= 0:
                del self.windows[kind]
                continue
            digests.append(Digest(kind, window.count, self.minutes, window.started))
            self.windows[kind] = Window(started=now, count=0, first_told=False)
        return digests

    @property
    def minutes(self) -> int:
        return max(1, round(self.window.total_seconds() / 60))
