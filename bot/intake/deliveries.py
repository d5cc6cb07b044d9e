"""Deliveries stored: owners merged by phone, cars by VIN, their touchpoints planned.

Rows are stored in chunks with one ``__in`` query per table, bulk inserts for new rows and
updates only for changed ones; a chunk is one transaction, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from bot.consent import apply_import
from bot.intake.bulk import Bulk, as_date, as_datetime
from bot.intake.columns import DELIVERIES
from bot.intake.files import file_records
from bot.intake.results import DeliveryRow, ImportResult, RowError, Stored
from bot.intake.validation import api_candidates, validate_values
from bot.journeys.plans import (
    JourneyRules,
    TouchpointPlan,
    delivery_key,
    plan_delivery,
    write_touchpoints,
)
from bot.journeys.timing import birthday_key
from db.models import Customer, Touchpoint, TouchpointStatus, Vehicle

log = logging.getLogger(__name__)


CHUNK_SIZE = 1000
DEFAULT_LANGUAGE = "zh_CN"


@dataclass
class _Owner:
    """An owner's file as the whole import describes it (later rows win, blanks never erase)."""

    phone: str
    name: str
    row: int
    birthday: date | None = None
    licence_expiry: date | None = None
    language: str | None = None
    advisor: str | None = None
    birthday_lunar: bool | None = None
    title: str | None = None


def _prepare(
    candidates: Sequence[tuple[int, Mapping[str, Any]]], tz: tzinfo, now: datetime
) -> tuple[list[DeliveryRow], dict[str, _Owner], ImportResult]:
    """Validate every row, drop repeated VINs (the later row wins), merge owners by phone."""
    result = ImportResult()
    valid: list[DeliveryRow] = []
    for number, values in candidates:
        result.total += 1
        delivery, errors, warnings = validate_values(values, row=number, tz=tz, now=now)
        result.errors += errors
        result.warnings += warnings
        if delivery is not None:
            valid.append(delivery)
    winners = _latest_by_vin(valid, result)
    return winners, _merge_owners(winners, result), result


def _latest_by_vin(valid: Sequence[DeliveryRow], result: ImportResult) -> list[DeliveryRow]:
    """One row per VIN, the latest; the earlier ones are counted and warned as superseded."""
    latest: dict[str, DeliveryRow] = {}
    for delivery in valid:
        earlier = latest.get(delivery.vin)
        if earlier is not None:
            result.superseded += 1
            result.warnings.append(
                RowError(
                    earlier.row,
                    "vin",
                    f"{delivery.vin} appears again on row {delivery.row}; that row is used",
                )
            )
        latest[delivery.vin] = delivery
    return sorted(latest.values(), key=lambda d: d.row)


def _merge_owners(winners: Sequence[DeliveryRow], result: ImportResult) -> dict[str, _Owner]:
    """Owners by phone: later rows win, blanks never erase, the first advisor stays."""
    owners: dict[str, _Owner] = {}
    for d in winners:
        owner = owners.get(d.phone)
        if owner is None:
            owners[d.phone] = _Owner(
                phone=d.phone,
                name=d.owner_name,
                row=d.row,
                birthday=d.birthday,
                licence_expiry=d.licence_expiry,
                language=d.language,
                advisor=d.sales_advisor,
                title=d.title,
                birthday_lunar=d.birthday_lunar,
            )
            continue
        if owner.name != d.owner_name:
            result.warnings.append(
                RowError(
                    d.row,
                    "owner_name",
                    f"{d.phone} is {owner.name!r} on row {owner.row}; "
                    f"the owner's name is set to {d.owner_name!r} from this later row",
                )
            )
        owner.name, owner.row = d.owner_name, d.row
        owner.birthday = d.birthday or owner.birthday
        owner.licence_expiry = d.licence_expiry or owner.licence_expiry
        owner.language = d.language or owner.language
        owner.title = d.title or owner.title
        if d.birthday_lunar is not None:
            owner.birthday_lunar = d.birthday_lunar
        owner.advisor = owner.advisor or d.sales_advisor
    return owners


_STALE_REASON = "delivery corrected by import"
_CUSTOMER_NEW = (
    "name", "phone", "birthday", "licence_expiry", "language", "advisor", "birthday_lunar",
    "birthday_md", "title", "link_token",
)
_CUSTOMER_SET = (
    "name", "birthday", "licence_expiry", "language", "advisor", "birthday_lunar", "birthday_md",
    "title",
)
_VEHICLE_SET = (
    "plate",
    "model",
    "insurance_expiry",
    "sales_advisor",
    "delivered_at",
    "customer_id",
)
_VEHICLE_NEW = ("vin", *_VEHICLE_SET)


async def _store_chunk(
    rows: Sequence[DeliveryRow], owners: Mapping[str, _Owner], rules: JourneyRules, now: datetime
) -> Stored:
    """Upsert owners, cars and check-ins for ``rows`` in one transaction.

    One query reads the chunk's owners by phone and one its cars by VIN; new ones are bulk
    inserted, changed ones updated, unchanged ones not written at all.
    """
    out = Stored()
    async with in_transaction() as conn:
        bulk = Bulk(conn, now)
        customer_ids, touched = await _store_owners(bulk, rows, owners)
        cars = _Cars(tz=rules.tz, out=out)
        vehicle_ids = await cars.store(bulk, rows, customer_ids, touched)
        await _warn_moved(bulk, rows, cars.moved, out)
        plans: list[TouchpointPlan] = []
        for d in rows:
            plans += plan_delivery(
                customer_id=customer_ids[d.phone],
                vehicle_id=vehicle_ids[d.vin],
                vin=d.vin,
                delivered_at=d.delivered_at,
                rules=rules,
            )
        plans = await _not_sent_before(conn, plans, cars.corrected)
        await write_touchpoints(plans, batch_size=CHUNK_SIZE, now=now, conn=conn)

    for kind in cars.status.values():
        if kind == "created":
            out.created += 1
        elif kind == "updated":
            out.updated += 1
        else:
            out.unchanged += 1
    return out


async def _store_owners(
    bulk: Bulk, rows: Sequence[DeliveryRow], owners: Mapping[str, _Owner]
) -> tuple[dict[str, int], set[str]]:
    """The chunk's owners updated or inserted: their ids by phone, and the phones whose file
    was created or changed here."""
    phones = list(dict.fromkeys(d.phone for d in rows))
    customer_ids: dict[str, int] = {}
    touched: set[str] = set()
    changed: list[list[Any]] = []
    found = await bulk.select(Customer, ("id", "phone", *_CUSTOMER_SET), "phone", phones)
    for cid, phone, name, raw_birthday, raw_licence, language, advisor, raw_lunar, md, title \
            in found:
        customer_ids[phone] = cid
        o = owners[phone]
        birthday, licence = as_date(raw_birthday), as_date(raw_licence)
        lunar = bool(raw_lunar)
        current = [name, birthday, licence, language, advisor, lunar, md, title]
        new_birthday = o.birthday or birthday
        new_lunar = lunar if o.birthday_lunar is None else o.birthday_lunar
        target = [
            o.name,
            new_birthday,
            o.licence_expiry or licence,
            o.language or language,
            advisor or o.advisor or "",
            new_lunar,
            birthday_key(new_birthday, new_lunar),
            o.title or title,
        ]
        if target != current:
            changed.append([*target, cid])
            touched.add(phone)
    await bulk.update(Customer, _CUSTOMER_SET, changed)
    new_owners = [owners[p] for p in phones if p not in customer_ids]
    if new_owners:
        await bulk.insert(Customer, _CUSTOMER_NEW, [_new_owner(o) for o in new_owners])
        new_phones = [o.phone for o in new_owners]
        customer_ids.update(await bulk.select(Customer, ("phone", "id"), "phone", new_phones))
        touched.update(new_phones)
    return customer_ids, touched


def _new_owner(o: _Owner) -> list[Any]:
    """A new owner's values, in ``_CUSTOMER_NEW``'s order."""
    return [
        o.name,
        o.phone,
        o.birthday,
        o.licence_expiry,
        o.language or DEFAULT_LANGUAGE,
        o.advisor or "",
        bool(o.birthday_lunar),
        birthday_key(o.birthday, bool(o.birthday_lunar)),
        o.title or "",
        secrets.token_urlsafe(24),
    ]


@dataclass
class _Cars:
    """What storing a chunk's cars decided, row by row."""

    tz: tzinfo
    out: Stored
    new: list[list[Any]] = field(default_factory=list)
    changed: list[list[Any]] = field(default_factory=list)
    moved: dict[int, int] = field(default_factory=dict)  # row -> previous owner's id
    stale: list[list[Any]] = field(default_factory=list)  # pending, of a superseded delivery
    corrected: list[tuple[int, str]] = field(default_factory=list)  # (customer, old key)
    status: dict[int, str] = field(default_factory=dict)

    async def store(
        self, bulk: Bulk, rows: Sequence[DeliveryRow], customer_ids: Mapping[str, int],
        touched: set[str],
    ) -> dict[str, int]:
        """Compare, update and insert the chunk's cars; their ids by VIN."""
        vehicles: dict[str, list[Any]] = {
            vin: [vid, plate, model, as_date(insurance), advisor, as_datetime(at), owner]
            for vid, vin, plate, model, insurance, advisor, at, owner in await bulk.select(
                Vehicle, ("id", "vin", *_VEHICLE_SET), "vin", [d.vin for d in rows]
            )
        }
        vehicle_ids = {vin: v[0] for vin, v in vehicles.items()}
        for d in rows:
            found = vehicles.get(d.vin)
            if found is None:
                self.new.append([d.vin, d.plate or "", d.model or "", d.insurance_expiry,
                                 d.sales_advisor or "", d.delivered_at, customer_ids[d.phone]])
                self.status[d.row] = "created"
            else:
                self._compare(d, found, customer_ids[d.phone], d.phone in touched)
        await bulk.update(Vehicle, _VEHICLE_SET, self.changed)
        await bulk.cancel_pending(self.stale)
        if self.new:
            await bulk.insert(Vehicle, _VEHICLE_NEW, self.new)
            new_vins = [v[0] for v in self.new]
            vehicle_ids.update(await bulk.select(Vehicle, ("vin", "id"), "vin", new_vins))
        return vehicle_ids

    def _compare(self, d: DeliveryRow, found: list[Any], customer_id: int, touched: bool) -> None:
        vid, plate, model, insurance, advisor, delivered_at, owner_id = found
        current = [plate, model, insurance, advisor, delivered_at, owner_id]
        target = [
            plate if d.plate is None else d.plate,
            model if d.model is None else d.model,
            d.insurance_expiry or insurance,
            advisor if d.sales_advisor is None else d.sales_advisor,
            d.delivered_at,
            customer_id,
        ]
        if target != current:
            self.changed.append([*target, vid])
        if owner_id != customer_id:
            self.moved[d.row] = owner_id
        if delivered_at is not None:
            self._supersede(d, delivered_at, owner_id, customer_id)
        self.status[d.row] = "updated" if target != current or touched else "unchanged"

    def _supersede(
        self, d: DeliveryRow, delivered_at: datetime, owner_id: int, customer_id: int
    ) -> None:
        """A corrected delivery time or owner: what was planned for the old one must not go
        out (it would greet the wrong person, or greet twice). Compared at the key's
        resolution (minutes): an export with seconds changes nothing."""
        old_key = delivery_key(d.vin, delivered_at)
        if (owner_id, old_key) == (customer_id, delivery_key(d.vin, d.delivered_at)):
            return
        self.stale.append([_STALE_REASON, owner_id, old_key])
        if owner_id == customer_id:
            self.corrected.append((customer_id, old_key))
        if delivered_at != d.delivered_at:
            self.out.warnings.append(
                RowError(
                    d.row,
                    "delivered_at",
                    f"changed from {delivered_at.astimezone(self.tz):%Y-%m-%d %H:%M} "
                    f"to {d.delivered_at.astimezone(self.tz):%Y-%m-%d %H:%M}; "
                    "messages not yet sent for the old delivery are cancelled",
                )
            )


async def _warn_moved(
    bulk: Bulk, rows: Sequence[DeliveryRow], moved: Mapping[int, int], out: Stored
) -> None:
    """A warning for each car that changed owner, naming the previous one."""
    if not moved:
        return
    old_ids = list(set(moved.values()))
    previous = {
        cid: (name, phone)
        for cid, name, phone in await bulk.select(Customer, ("id", "name", "phone"), "id", old_ids)
    }
    for d in rows:
        if d.row in moved:
            name, phone = previous.get(moved[d.row], ("?", "?"))
            out.warnings.append(
                RowError(
                    d.row,
                    "vin",
                    f"ownership changed: {d.vin} was on the file of {name} ({phone}) "
                    f"and now belongs to {d.owner_name} ({d.phone})",
                )
            )


async def _not_sent_before(
    conn: BaseDBAsyncClient, plans: list[TouchpointPlan], corrected: Sequence[tuple[int, str]]
) -> list[TouchpointPlan]:
    """Same owner, corrected time: what already went out for the old time is not sent again
    for the new one (each touchpoint is sent once)."""
    if not corrected:
        return plans
    already: set[tuple[int, str]] = set()
    for cid, key in corrected:
        sent = await Touchpoint.filter(
            customer_id=cid, occasion_key=key, status=TouchpointStatus.SENT
        ).using_db(conn).values_list("kind", flat=True)
        already.update((cid, str(kind)) for kind in sent)
    return [p for p in plans if (p.customer_id, p.kind) not in already]


async def _store(
    rows: Sequence[DeliveryRow], owners: Mapping[str, _Owner], rules: JourneyRules, now: datetime
) -> Stored:
    """Store a chunk; on a conflict (another import storing the same owner or car at the same
    moment) retry, then fall back to one row at a time so only the culprit row fails."""
    attempts = 3 if len(rows) > 1 else 2
    failure: IntegrityError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await _store_chunk(rows, owners, rules, now)
        except IntegrityError as exc:
            log.warning(
                "storing rows %d-%d failed (attempt %d): %s",
                rows[0].row,
                rows[-1].row,
                attempt,
                exc,
            )
            failure = exc
    if len(rows) == 1:
        return Stored(errors=[RowError(rows[0].row, "row", f"not stored: {failure}")])
    out = Stored()
    for d in rows:
        out.add(await _store([d], owners, rules, now))
    return out


async def _import(
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
    # Validation is CPU work (about 40 µs a row); keep the event loop answering meanwhile.
    winners, owners, result = await asyncio.to_thread(_prepare, candidates, rules.tz, now)
    result.total += extra_rows
    result.errors += errors
    result.warnings += warnings
    for start in range(0, len(winners), CHUNK_SIZE):
        stored = await _store(winners[start : start + CHUNK_SIZE], owners, rules, now)
        result.created += stored.created
        result.updated += stored.updated
        result.unchanged += stored.unchanged
        result.errors += stored.errors
        result.warnings += stored.warnings
    failed_rows = {e.row for e in result.errors}
    consents = {d.phone: d.marketing_consent for d in winners
                if d.marketing_consent is not None and d.row not in failed_rows}
    if consents:  # each change of consent is kept on record (bot.consent, issue 6)
        await apply_import(consents, now=now)
    result.errors.sort(key=lambda e: e.row)
    result.warnings.sort(key=lambda w: w.row)
    log.info(
        "deliveries imported: %d rows, %d created, %d updated, %d unchanged, %d failed",
        result.total,
        result.created,
        result.updated,
        result.unchanged,
        result.failed,
    )
    return result


async def import_deliveries_file(path: Path, *, rules: JourneyRules, now: datetime) -> ImportResult:
    """Import a CSV (UTF-8/GB18030) or XLSX delivery export; see docs/import-format.md.

    Raises :class:`IntakeError` when the file as a whole cannot be used.
    """
    path = Path(path)
    records, warnings = await asyncio.to_thread(file_records, path, DELIVERIES)
    log.info("importing %d rows from %s", len(records), path.name)
    return await _import(records, rules=rules, now=now, warnings=warnings)


async def import_deliveries_records(
    records: Sequence[Any], *, rules: JourneyRules, now: datetime, first_row: int = 1
) -> ImportResult:
    """Import deliveries sent as JSON objects (the HTTP intake API).

    Keys are the English column names; row numbers count from ``first_row`` in array order.
    An item that is not an object is a row error; an empty object is skipped.
    """
    candidates, errors, warnings = await asyncio.to_thread(
        api_candidates, records, DELIVERIES, "delivery", first_row)
    return await _import(
        candidates, rules=rules, now=now, errors=errors, warnings=warnings, extra_rows=len(errors)
    )
