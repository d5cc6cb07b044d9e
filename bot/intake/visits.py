"""Workshop visits stored (issue 3): the car must be on file; follow-ups planned, older
reminders cancelled, repairs recorded and the car's service forecast moved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot.intake.columns import VISITS
from bot.intake.deliveries import CHUNK_SIZE
from bot.intake.files import file_records
from bot.intake.results import ImportResult, RowError, Stored, VisitRow
from bot.intake.validation import api_candidates, validate_visit_values
from bot.journeys.forecasts import refresh_forecasts
from bot.journeys.plans import (
    FIRST_SERVICE,
    JourneyRules,
    TouchpointPlan,
    plan_visit,
    write_touchpoints,
)
from bot.journeys.repairs import VisitRepairs, record_repairs
from db.models import Touchpoint, TouchpointStatus, Vehicle, Visit, VisitKind

log = logging.getLogger(__name__)


def _prepare_visits(
    candidates: Sequence[tuple[int, Mapping[str, Any]]], tz: tzinfo, now: datetime
) -> tuple[list[VisitRow], ImportResult]:
    """Validate every row; a visit repeated in the file (same car, kind, time): the later
    row wins."""
    result = ImportResult()
    latest: dict[tuple[str, datetime, str], VisitRow] = {}
    for number, values in candidates:
        result.total += 1
        visit, errors, warnings = validate_visit_values(values, row=number, tz=tz, now=now)
        result.errors += errors
        result.warnings += warnings
        if visit is None:
            continue
        earlier = latest.get(visit.key)
        if earlier is not None:
            result.superseded += 1
            result.warnings.append(
                RowError(earlier.row, "row", f"the same visit appears again on row {visit.row}; "
                         "that row is used")
            )
        latest[visit.key] = visit
    return sorted(latest.values(), key=lambda v: v.row), result


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


_VISIT_FIRST_SERVICE_DONE = "first service already done (workshop visit recorded)"


_Cars = dict[str, tuple[int, int, int | None, str]]  # VIN -> (vehicle, customer, mileage, model)
_VisitIds = dict[tuple[int, datetime, str], int]  # (vehicle id, left at, kind) -> visit id


async def _store_visits(rows: Sequence[VisitRow], rules: JourneyRules, now: datetime) -> Stored:
    """Store a chunk of visits and their follow-ups in one transaction.

    The car must be on file (its delivery imported first). A first-service visit cancels the
    car's pending first-service reminder; a newer visit cancels older service-due reminders.
    """
    out = Stored()
    async with in_transaction() as conn:
        cars, known = await _known_cars(rows, out)
        if not known:
            return out
        vids = list({cars[v.vin][0] for v in known})
        corrected_visits = await _upsert_visits(known, cars, vids, out)
        visits = await Visit.filter(vehicle_id__in=vids).values_list(
            "id", "vehicle_id", "left_at", "kind"
        )
        ids: _VisitIds = {(vid, _utc(at), str(kind)): vid_ for vid_, vid, at, kind in visits}
        await _raise_mileage(known, cars, now)
        plans: list[TouchpointPlan] = []
        for v in known:
            vid, cid, _, model = cars[v.vin]
            plans += plan_visit(
                visit_id=ids[(vid, v.left_at, v.kind.value)], customer_id=cid, vehicle_id=vid,
                kind=v.kind.value, left_at=v.left_at, major_repair=v.major_repair,
                mileage=v.mileage, next_on=v.next_service_on, next_km=v.next_service_km,
                advisor=v.advisor, rules=rules, model=model,
            )
        await _correct_pending(conn, plans, corrected_visits)
        await write_touchpoints(plans, batch_size=CHUNK_SIZE, now=now, conn=conn)
        first = [cars[v.vin][0] for v in known if v.kind is VisitKind.FIRST_SERVICE]
        if first:
            await Touchpoint.filter(
                kind=FIRST_SERVICE, status=TouchpointStatus.PENDING, vehicle_id__in=first
            ).update(status=TouchpointStatus.SKIPPED, status_reason=_VISIT_FIRST_SERVICE_DONE)
    await record_repairs([
        VisitRepairs(visit_id=ids[(cars[v.vin][0], v.left_at, v.kind.value)],
                     vehicle_id=cars[v.vin][0], customer_id=cars[v.vin][1],
                     left_on=v.left_at.astimezone(rules.tz).date(),
                     recommended=v.recommended_repairs, done=v.repairs_done)
        for v in known
    ], today=now.astimezone(rules.tz).date(), now=now, delay_days=rules.repair_reminder_days)
    # The cars' service forecasts (by date or mileage) follow their new readings; a moved
    # forecast drops its unsent reminder.
    await refresh_forecasts(vids, now=now, rules=rules)
    return out


async def _known_cars(rows: Sequence[VisitRow], out: Stored) -> tuple[_Cars, list[VisitRow]]:
    """The cars on file for these visits, and the visits of those cars; an error for each
    visit of a car not on file."""
    found = await Vehicle.filter(vin__in=list({v.vin for v in rows})).values_list(
        "vin", "id", "customer_id", "mileage", "model"
    )
    cars = {vin: (vid, cid, mileage, model or "") for vin, vid, cid, mileage, model in found}
    known: list[VisitRow] = []
    for v in rows:
        if v.vin in cars:
            known.append(v)
        else:
            out.errors.append(RowError(v.row, "vin", f"no car with VIN {v.vin} on file; "
                                       "import its delivery first"))
    return cars, known


async def _upsert_visits(
    known: Sequence[VisitRow], cars: _Cars, vids: Sequence[int], out: Stored
) -> set[int]:
    """New visits inserted, changed ones updated; the ids of the visits whose details the DMS
    corrected."""
    fields = ("id", "vehicle_id", "left_at", "kind", "advisor", "mileage", "major_repair",
              "next_service_on", "next_service_km")
    existing = {
        (r[1], _utc(r[2]), str(r[3])): r
        for r in await Visit.filter(vehicle_id__in=vids).values_list(*fields)
    }
    new: list[Visit] = []
    corrected_visits: set[int] = set()
    for v in known:
        vid = cars[v.vin][0]
        target = (v.advisor, v.mileage, v.major_repair, v.next_service_on, v.next_service_km)
        row = existing.get((vid, v.left_at, v.kind.value))
        if row is None:
            new.append(Visit(vehicle_id=vid, kind=v.kind, left_at=v.left_at, advisor=v.advisor,
                             mileage=v.mileage, major_repair=v.major_repair,
                             next_service_on=v.next_service_on,
                             next_service_km=v.next_service_km))
            out.created += 1
        elif tuple(row[4:]) != target:
            await Visit.filter(id=row[0]).update(
                advisor=v.advisor, mileage=v.mileage, major_repair=v.major_repair,
                next_service_on=v.next_service_on, next_service_km=v.next_service_km,
            )
            corrected_visits.add(row[0])
            out.updated += 1
        else:
            out.unchanged += 1
    if new:
        await Visit.bulk_create(new, ignore_conflicts=True)
    return corrected_visits


async def _raise_mileage(known: Sequence[VisitRow], cars: _Cars, now: datetime) -> None:
    """Each car's mileage moves up to the highest a visit read (never down)."""
    mileage: dict[int, int] = {}
    for v in known:
        vid, _, current, _ = cars[v.vin]
        if v.mileage is not None and (current is None or v.mileage > current):
            mileage[vid] = max(v.mileage, mileage.get(vid, 0))
    for vid, km in mileage.items():
        await Vehicle.filter(id=vid).update(mileage=km, updated_at=now)


async def _correct_pending(
    conn: BaseDBAsyncClient, plans: Sequence[TouchpointPlan], corrected_visits: set[int]
) -> None:
    """A corrected visit corrects what is still to be sent for it (major repair, next
    service date); what already went out stays as it was."""
    for plan in plans:
        if plan.payload.get("visit_id") in corrected_visits:
            await Touchpoint.filter(
                customer_id=plan.customer_id, kind=plan.kind,
                occasion_key=plan.occasion_key, status=TouchpointStatus.PENDING,
            ).using_db(conn).update(due_at=plan.due_at, expires_at=plan.expires_at,
                                    payload=plan.payload)


async def _import_visits(
    candidates: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    rules: JourneyRules,
    now: datetime,
    errors: Iterable[RowError] = (),
    warnings: Iterable[RowError] = (),
    extra_rows: int = 0,
) -> ImportResult:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    winners, result = await asyncio.to_thread(_prepare_visits, candidates, rules.tz, now)
    result.total += extra_rows
    result.errors += errors
    result.warnings += warnings
    for start in range(0, len(winners), CHUNK_SIZE):
        chunk = winners[start : start + CHUNK_SIZE]
        try:
            stored = await _store_visits(chunk, rules, now)
        except IntegrityError as exc:  # e.g. the car deleted meanwhile: report, go on
            log.warning("storing visit rows %d-%d failed: %s", chunk[0].row, chunk[-1].row, exc)
            stored = Stored(errors=[RowError(v.row, "row", f"not stored: {exc}") for v in chunk])
        result.created += stored.created
        result.updated += stored.updated
        result.unchanged += stored.unchanged
        result.errors += stored.errors
        result.warnings += stored.warnings
    result.errors.sort(key=lambda e: e.row)
    result.warnings.sort(key=lambda w: w.row)
    log.info("visits imported: %d rows, %d created, %d updated, %d unchanged, %d failed",
             result.total, result.created, result.updated, result.unchanged, result.failed)
    return result


async def import_visits_file(path: Path, *, rules: JourneyRules, now: datetime) -> ImportResult:
    """Import a CSV/XLSX export of workshop visits (docs/import-format.md, "Visits").

    Raises :class:`IntakeError` when the file as a whole cannot be used.
    """
    path = Path(path)
    records, warnings = await asyncio.to_thread(file_records, path, VISITS)
    log.info("importing %d visit rows from %s", len(records), path.name)
    return await _import_visits(records, rules=rules, now=now, warnings=warnings)


async def import_visits_records(
    records: Sequence[Any], *, rules: JourneyRules, now: datetime, first_row: int = 1
) -> ImportResult:
    """Import visits sent as JSON objects (``POST /api/v1/visits``); as for deliveries."""
    candidates, errors, warnings = await asyncio.to_thread(
        api_candidates, records, VISITS, "visit", first_row)
    return await _import_visits(
        candidates, rules=rules, now=now, errors=errors, warnings=warnings, extra_rows=len(errors)
    )
