"""Pure time rules: quiet hours and local-time arithmetic. No I/O, no clock reads.

All inputs and outputs are aware datetimes. Callers pass ``now`` and the dealership's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import QuietHours


def in_quiet_hours(when: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> bool:
    """True when ``when`` falls in the local quiet window [start, end)."""
    if quiet is None:
        return False
    local = when.astimezone(tz).time()
    if quiet.start < quiet.end:  # e.g. 12:00-14:00, same day
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # wraps midnight, e.g. 21:00-09:00


def _at_local(day: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The instant when the local wall clock on ``day``'s date shows ``at``.

    A wall time skipped by a DST jump resolves forward (fold=0 then normalised by UTC).
    """
    naive = datetime.combine(day.date(), at)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def quiet_hours_end(when: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """The first instant at or after ``when`` at which quiet hours are over."""
    local = when.astimezone(tz)
    end_today = _at_local(local, quiet.end, tz)
    if end_today > when:
        return end_today
    return _at_local(local + timedelta(days=1), quiet.end, tz)


def shift_out_of_quiet_hours(when: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """Move a due time that falls in quiet hours to the moment they end; else unchanged."""
    if not in_quiet_hours(when, tz, quiet):
        return when.astimezone(UTC)
    assert quiet is not None
    return quiet_hours_end(when, tz, quiet)


def local_at(day_of: datetime, days: int, at: time, tz: ZoneInfo) -> datetime:
    """``days`` local calendar days after ``day_of``, at local wall time ``at`` (in UTC)."""
    local = day_of.astimezone(tz) + timedelta(days=days)
    return _at_local(local, at, tz)
