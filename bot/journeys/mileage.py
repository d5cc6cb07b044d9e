"""Service due by time or mileage, whichever comes first (000 篇三 §1-2, 003 §3.2): pure rules.

A car's daily distance is estimated from its odometer readings (workshop visits, what the
owner told the bot, 0 km at delivery); the next service is due at the interval of its model
(months and km, a dealership setting) after its last routine service, on the date or on the
day the estimated odometer reaches the km, whichever is earlier. No I/O, no clock reads:
callers pass dates (``bot/journeys/forecasts.py`` stores the result, the occasions scan sends
the reminder). Tested on tables in tests/test_mileage.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.journeys.timing import add_months

BY_DATE = "date"
BY_KM = "km"
# Readings closer together than this say little about how far the car goes in a day (a
# visit and a comeback two days later): the estimate reaches back to an older reading.
MIN_SPAN_DAYS = 14
MAX_KM_PER_DAY = 1500.0  # more than this is a typo, not driving
MAX_ODOMETER = 2_000_000


@dataclass(frozen=True)
class Interval:
    """The service interval of a model: whichever of ``months`` and ``km`` comes first
    (0 = that measure not used)."""

    months: int
    km: int


@dataclass(frozen=True)
class Reading:
    """An odometer reading: ``km`` on local day ``on``."""

    on: date
    km: int


@dataclass(frozen=True)
class Forecast:
    """When the next service is due, and which measure reaches it first."""

    due_on: date
    by: str  # BY_DATE or BY_KM
    due_km: int | None  # the odometer at which it is due, when km is used
    km_per_day: float | None


def parse_intervals(value: str) -> dict[str, Interval]:
    """``"逸动:12:10000, CS75:6:5000"`` -> {model: Interval}: a model name (as in the
    deliveries import), months, km; separated by commas, semicolons or lines."""
    out: dict[str, Interval] = {}
    for item in re.split(r"[,;\n]+", value):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        name, _, rest = item.rpartition(":")
        model, _, months = name.rpartition(":")
        if not model.strip() or not months.strip().isdigit() or not rest.strip().isdigit():
            raise ValueError(f"{item!r}: write a model's interval as MODEL:MONTHS:KM, "
                             "e.g. CS75:6:5000")
        m, km = int(months), int(rest)
        if m > 60 or km > 100_000 or (m == 0 and km == 0):
            raise ValueError(f"{item!r}: months 0-60, km 0-100000, not both 0")
        out[model.strip().casefold()] = Interval(m, km)
    return out


def interval_for(model: str, intervals: dict[str, Interval], default: Interval) -> Interval:
    return intervals.get(model.strip().casefold(), default)


def daily_km(readings: Sequence[Reading]) -> float | None:
    """Kilometres a day, from the newest reading and the newest one at least
    ``MIN_SPAN_DAYS`` before it (so the estimate follows how the car is driven now), else the
    oldest one; None without two readings on different days or when the odometer went
    backwards (a typo, a new instrument cluster): then the date alone decides."""
    ordered = sorted(readings, key=lambda r: (r.on, r.km))
    if len(ordered) < 2:
        return None
    last = ordered[-1]
    earlier = next((r for r in reversed(ordered[:-1]) if (last.on - r.on).days >= MIN_SPAN_DAYS),
                   ordered[0])
    span = (last.on - earlier.on).days
    if span < 1 or last.km < earlier.km:
        return None
    rate = (last.km - earlier.km) / span
    return rate if rate <= MAX_KM_PER_DAY else None


def forecast(
    *, last_service_on: date, last_service_km: int | None, interval: Interval,
    readings: Sequence[Reading], due_by_date: date | None = None, due_km: int | None = None,
) -> Forecast | None:
    """The next service after the one on ``last_service_on`` (at ``last_service_km``).

    By date: ``interval.months`` after it (or ``due_by_date``, the workshop's own). By km:
    the day the odometer, going on at the estimated daily distance from the newest reading,
    reaches ``last_service_km + interval.km`` (or ``due_km``). The earlier wins; a tie is
    reported as by date (the owner knows the date). None when neither can be worked out."""
    by_date = due_by_date
    if by_date is None and interval.months:
        by_date = add_months(last_service_on, interval.months)
    if due_km is None and interval.km and last_service_km is not None:
        due_km = last_service_km + interval.km
    by_km: date | None = None
    rate = daily_km(readings)
    newest = max(readings, key=lambda r: (r.on, r.km), default=None)
    if due_km is not None and newest is not None:
        if newest.km >= due_km:
            by_km = newest.on  # already past the km: due now
        elif rate:
            by_km = newest.on + timedelta(days=math.ceil((due_km - newest.km) / rate))
    if by_km is not None and (by_date is None or by_km < by_date):
        return Forecast(due_on=by_km, by=BY_KM, due_km=due_km, km_per_day=rate)
    if by_date is not None:
        return Forecast(due_on=by_date, by=BY_DATE, due_km=due_km, km_per_day=rate)
    return None


def reminder_day(due_on: date, lead_days: int) -> date:
    return due_on - timedelta(days=lead_days)


def check_reported(km_text: str, newest: Reading | None, today: date) -> int | str:
    """An owner's typed odometer reading: the number, or the reason it is refused (a key of
    the mileage labels: ``km_not_a_number``, ``km_below_last``, ``km_too_far``)."""
    digits = re.sub(r"[\s,，_]|km|公里", "", km_text.strip().lower())
    if not digits.isdigit() or not 0 < int(digits) <= MAX_ODOMETER:
        return "km_not_a_number"
    km = int(digits)
    if newest is not None:
        if km < newest.km:
            return "km_below_last"
        days = max((today - newest.on).days, 1)
        if km - newest.km > MAX_KM_PER_DAY * days:
            return "km_too_far"
    return km
