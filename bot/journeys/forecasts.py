"""Each car's service forecast, kept up to date when a reading arrives (issue 17, point 2).

A visit import or an owner's mileage calls :func:`refresh_forecasts` for the cars it
touched: their readings are read, the pure rules of ``bot/journeys/mileage.py`` work out
when the next service is due (by date or by km, whichever first), and the result is one
``service_forecast`` row per car. The daily occasions scan then writes the reminders whose
day came with one ``INSERT … SELECT`` over that table's index: the prediction costs
nothing per car per day. A reminder for a forecast that moved (a new service, the owner's
mileage) is dropped while unsent and the new one goes out on its own day; a reminder whose
day already came is written at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from bot.journeys.mileage import Forecast, Interval, Reading, forecast, interval_for
from bot.journeys.plans import (
    ROUTINE_VISITS,
    SERVICE_DUE,
    JourneyRules,
    TouchpointPlan,
    write_touchpoints,
)
from bot.journeys.timing import local_date
from db.models import (
    MileageReading,
    ServiceForecast,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    VehicleStatus,
    Visit,
)

log = logging.getLogger(__name__)

FORECAST_MOVED = "the service forecast moved (a new visit or mileage)"
CHUNK = 500


@dataclass(frozen=True)
class CarHistory:
    """What a car's forecast is computed from, as plain values."""

    vehicle_id: int
    customer_id: int
    model: str
    delivered_on: date | None
    visits: tuple[tuple[int, date, str, int | None, date | None, int | None], ...]
    owner_readings: tuple[Reading, ...]


@dataclass(frozen=True)
class CarForecast:
    vehicle_id: int
    customer_id: int
    last_service_on: date
    forecast: Forecast
    interval_km: int
    cycle: str


def car_forecast(car: CarHistory, rules: JourneyRules) -> CarForecast | None:
    """The forecast after the car's latest routine service (first service or maintenance, or
    any visit for which the workshop wrote the next service); None before its first one
    (the first-service reminder covers new cars).

    The workshop's own next-service date and km on that visit win over the model's interval.
    Readings: every visit's odometer, the owner's, and 0 km on the delivery day."""
    routine = [v for v in car.visits
               if v[2] in ROUTINE_VISITS or v[4] is not None or v[5] is not None]
    if not routine:
        return None
    visit_id, on, _, km, next_on, next_km = max(routine, key=lambda v: (v[1], v[0]))
    default = Interval(rules.service_interval_months, rules.service_interval_km)
    interval = interval_for(car.model, rules.service_intervals, default)
    readings = [Reading(d, m) for _, d, _, m, _, _ in car.visits if m is not None]
    readings += car.owner_readings
    if car.delivered_on is not None:
        readings.append(Reading(car.delivered_on, 0))
    if next_on is not None or next_km is not None:
        interval = Interval(0, 0)
    found = forecast(last_service_on=on, last_service_km=km, interval=interval,
                     readings=readings, due_by_date=next_on, due_km=next_km)
    if found is None:
        return None
    return CarForecast(
        vehicle_id=car.vehicle_id, customer_id=car.customer_id, last_service_on=on,
        forecast=found, interval_km=(next_km - km) if next_km and km is not None else interval.km,
        cycle=f"{visit_id}:{found.due_on:%Y%m%d}",
    )


def occasion_key(cycle: str) -> str:
    return f"{SERVICE_DUE}:{cycle}"


def reminder_payload(fc: CarForecast) -> dict[str, object]:
    """What the service-due script says: the date, which measure comes first and the km."""
    f = fc.forecast
    return {
        "next_service_on": f.due_on.isoformat(), "next_service_km": f.due_km, "by": f.by,
        "interval_km": fc.interval_km or None, "last_service_on": fc.last_service_on.isoformat(),
    }


async def _histories(vehicle_ids: Sequence[int], tz: ZoneInfo) -> list[CarHistory]:
    cars = await Vehicle.filter(id__in=vehicle_ids, status=VehicleStatus.ACTIVE).values_list(
        "id", "customer_id", "model", "delivered_at")
    visits: dict[int, list[tuple[int, date, str, int | None, date | None, int | None]]]
    visits = defaultdict(list)
    for vid_, veh, left_at, kind, km, n_on, n_km in await Visit.filter(
        vehicle_id__in=vehicle_ids
    ).values_list("id", "vehicle_id", "left_at", "kind", "mileage", "next_service_on",
                  "next_service_km"):
        visits[veh].append((vid_, local_date(left_at, tz), str(kind), km, n_on, n_km))
    owner: dict[int, list[Reading]] = defaultdict(list)
    for veh, on, km in await MileageReading.filter(vehicle_id__in=vehicle_ids).values_list(
        "vehicle_id", "read_on", "km"
    ):
        owner[veh].append(Reading(on, km))
    return [
        CarHistory(vehicle_id=vid, customer_id=cid, model=model or "",
                   delivered_on=local_date(at, tz) if at else None,
                   visits=tuple(visits[vid]), owner_readings=tuple(owner[vid]))
        for vid, cid, model, at in cars
    ]


async def refresh_forecasts(
    vehicle_ids: Iterable[int], *, now: datetime, rules: JourneyRules
) -> list[CarForecast]:
    """Recompute the forecasts of these cars, drop unsent reminders of a moved forecast and
    write the reminder at once when its day has already come."""
    ids = sorted(set(vehicle_ids))
    today = local_date(now, rules.tz)
    out: list[CarForecast] = []
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first:first + CHUNK]
        found = [f for f in (car_forecast(c, rules) for c in await _histories(chunk, rules.tz))
                 if f is not None]
        await _store(chunk, found, now=now, today=today, rules=rules)
        out += found
    return out


async def _store(chunk: list[int], found: list[CarForecast], *, now: datetime, today: date,
                 rules: JourneyRules) -> None:
    async with in_transaction():
        await ServiceForecast.filter(vehicle_id__in=chunk).delete()
        await ServiceForecast.bulk_create([
            ServiceForecast(
                vehicle_id=f.vehicle_id, customer_id=f.customer_id,
                last_service_on=f.last_service_on, due_on=f.forecast.due_on,
                remind_on=f.forecast.due_on - timedelta(days=rules.service_due_lead_days),
                by=f.forecast.by, due_km=f.forecast.due_km, interval_km=f.interval_km,
                km_per_day=f.forecast.km_per_day, cycle=f.cycle, updated_at=now)
            for f in found
        ])
        keep = [occasion_key(f.cycle) for f in found]
        await Touchpoint.filter(
            kind=SERVICE_DUE, status=TouchpointStatus.PENDING, vehicle_id__in=chunk
        ).exclude(occasion_key__in=keep).update(
            status=TouchpointStatus.SKIPPED, status_reason=FORECAST_MOVED, updated_at=now)
        plans = [due_now(f, today, rules) for f in found]
        await write_touchpoints([p for p in plans if p is not None])


def due_now(fc: CarForecast, today: date, rules: JourneyRules) -> TouchpointPlan | None:
    """The reminder of a forecast whose reminder day has come and whose grace has not run
    out, written at once rather than at the next scan."""
    remind_on = fc.forecast.due_on - timedelta(days=rules.service_due_lead_days)
    last = fc.forecast.due_on + timedelta(days=rules.service_due_grace_days)
    if remind_on > today or last < today:
        return None
    due, expires = rules.window(today, 0, rules.service_due_time, (last - today).days)
    return TouchpointPlan(
        customer_id=fc.customer_id,
        vehicle_id=fc.vehicle_id,
        kind=SERVICE_DUE,
        occasion_key=occasion_key(fc.cycle),
        due_at=due,
        expires_at=expires,
        payload=reminder_payload(fc),
    )


async def newest_reading(vehicle_id: int, tz: ZoneInfo) -> Reading | None:
    """The car's newest odometer reading on file (a visit's or the owner's)."""
    readings = [Reading(local_date(at, tz), km) for at, km in await Visit.filter(
        vehicle_id=vehicle_id, mileage__isnull=False).values_list("left_at", "mileage")]
    readings += [Reading(on, km) for on, km in await MileageReading.filter(
        vehicle_id=vehicle_id).values_list("read_on", "km")]
    return max(readings, key=lambda r: (r.on, r.km), default=None)


async def record_owner_mileage(
    vehicle_id: int, km: int, *, now: datetime, rules: JourneyRules
) -> CarForecast | None:
    """Keep what the owner told us (checked by ``mileage.check_reported``), raise the car's
    mileage on file, and move its forecast (and so its reminder)."""
    today = local_date(now, rules.tz)
    await MileageReading.create(vehicle_id=vehicle_id, read_on=today, km=km, source="owner",
                                created_at=now)
    await Vehicle.filter(id=vehicle_id, mileage__lt=km).update(mileage=km, updated_at=now)
    await Vehicle.filter(id=vehicle_id, mileage__isnull=True).update(mileage=km, updated_at=now)
    found = await refresh_forecasts([vehicle_id], now=now, rules=rules)
    return found[0] if found else None
