"""Is Telegram reachable? One record per process, kept by the HTTP layer.

Every Bot API call carebot makes (the sender's, ``getUpdates``, ``getMe``, ``setWebhook``,
the webhook probe...) goes through :class:`bot.telegram_http.AiohttpRequest`, which tells
this record how each one ended: answered (with its HTTP status) or failed on the way (a
timeout, a refused or dropped connection). So there is one place that knows

- when Telegram last answered a call (``last_success``);
- since when every call has failed (``failing_since``) and how many in a row;
- the errors by kind, for ``/metrics``: ``timeout``, ``network``, ``server`` (5xx),
  ``unauthorized`` (401/404: the token), ``rate_limited`` (429), ``forbidden`` (403),
  ``bad_request`` (400), ``conflict`` (409), ``other``;
- when ``getUpdates`` last answered (polling), and what Telegram holds for the webhook.

Telegram *fails* when a call gets no answer (timeout, network) or an answer that says it
cannot work (5xx, 401/404); a 400, 403, 409 or 429 is Telegram answering, so it is reachable.
The log gets one WARNING line when Telegram starts failing (the kind of error, no traceback)
and one when it answers again (how long it was out), whatever the number of calls between
(before Telegram ever answered, start-up's ``getMe`` stops carebot with its own one line):
the callers (the poller, the sender's retries) log theirs at DEBUG. ``/healthz`` says
``degraded`` once the failing has lasted ``CAREBOT_TELEGRAM_DEGRADED_AFTER`` seconds.
Times come from the Clock; everything here is in memory, per process.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from bot.clock import Clock

log = logging.getLogger(__name__)

KINDS = ("timeout", "network", "server", "unauthorized", "rate_limited", "forbidden",
         "bad_request", "conflict", "other")
FAILING = frozenset({"timeout", "network", "server", "unauthorized"})


def status_kind(status: int) -> str | None:
    """The error kind of an HTTP answer from the Bot API; None for a success."""
    if 200 <= status < 300:
        return None
    if status >= 500:
        return "server"
    return {429: "rate_limited", 401: "unauthorized", 404: "unauthorized", 403: "forbidden",
            400: "bad_request", 409: "conflict"}.get(status, "other")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class TelegramHealth:
    """How this process's Bot API calls are going; see the module's docstring."""

    def __init__(self, clock: Clock, *, degraded_after: float = 60.0) -> None:
        self.clock = clock
        self.degraded_after = degraded_after
        self.started_at = clock.now()
        self.last_success: datetime | None = None
        self.failing_since: datetime | None = None
        self.consecutive_failures = 0
        self.last_kind = ""
        self.last_method = ""
        self.errors: Counter[str] = Counter()
        self.last_updates_at: datetime | None = None  # getUpdates answered (polling)
        self.pending_updates: int | None = None  # Telegram's count for the webhook (probe)
        self.pending_since: datetime | None = None  # ... above 0 since
        self._said = False  # the current outage was logged (so its end is too)

    # ----------------------------------------------------------- what the HTTP layer says

    def answered(self, method: str, status: int) -> None:
        """Telegram answered ``method`` with this HTTP status."""
        kind = status_kind(status)
        if kind is not None:
            self.errors[kind] += 1
        if kind in FAILING:
            self._failing(method, kind or "other")
            return
        now = self.clock.now()
        if method == "getUpdates":
            self.last_updates_at = now
        self._reachable(now)

    def failed(self, method: str, kind: str) -> None:
        """``method`` got no answer: ``timeout`` or ``network``."""
        self.errors[kind] += 1
        self._failing(method, kind)

    def _failing(self, method: str, kind: str) -> None:
        self.consecutive_failures += 1
        self.last_kind, self.last_method = kind, method
        if self.failing_since is None:
            self.failing_since = self.clock.now()
            # Before Telegram ever answered, start-up stops with its own one line instead.
            self._said = self.last_success is not None
            (log.warning if self._said else log.debug)(
                "Telegram unreachable: %s on %s (carebot keeps trying; one line when it "
                "answers again)", kind, method)

    def _reachable(self, now: datetime) -> None:
        if self.failing_since is not None and self._said:
            out = (now - self.failing_since).total_seconds()
            log.warning("Telegram reachable again after %s (%d failed calls, last: %s)",
                        _duration(out), self.consecutive_failures, self.last_kind)
        self.failing_since = None
        self.consecutive_failures = 0
        self.last_success = now

    def webhook_pending(self, count: int) -> None:
        """Telegram's ``pending_update_count`` for the webhook, read by the probe."""
        self.pending_updates = count
        if count <= 0:
            self.pending_since = None
        elif self.pending_since is None:
            self.pending_since = self.clock.now()

    # ----------------------------------------------------------- what /healthz, /metrics read

    @property
    def up(self) -> bool:
        """False while the latest calls have all failed."""
        return self.failing_since is None

    def down_seconds(self, now: datetime) -> float:
        if self.failing_since is None:
            return 0.0
        return max(0.0, (now - self.failing_since).total_seconds())

    def degraded_reason(self, now: datetime) -> str | None:
        """Why ``/healthz`` says degraded: the Bot API failing for longer than allowed."""
        down = self.down_seconds(now)
        if self.failing_since is None or down < self.degraded_after:
            return None
        return (f"Telegram Bot API unreachable for {_duration(down)} "
                f"({self.consecutive_failures} failed calls, last: {self.last_kind})")

    def last_success_age(self, now: datetime) -> float:
        """Seconds since Telegram last answered (since start-up when it never has)."""
        since = self.last_success or self.started_at
        return max(0.0, (now - since).total_seconds())

    def updates_lag(self, now: datetime, *, webhook: bool) -> float:
        """How far behind receiving updates this process may be: polling, seconds since
        ``getUpdates`` last answered (a long poll answers within 30 s when all is well);
        webhook, seconds Telegram has held undelivered updates (0 when it holds none)."""
        if webhook:
            since = self.pending_since
            return 0.0 if since is None else max(0.0, (now - since).total_seconds())
        since = self.last_updates_at or self.started_at
        return max(0.0, (now - since).total_seconds())
