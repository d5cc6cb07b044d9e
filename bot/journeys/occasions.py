"""The daily occasions scan: birthdays, insurance and licence expiry, holiday greetings.

Once a day (``scan_time``, local) and at start-up the scan works out who is due and writes
their touchpoints with a handful of set-based ``INSERT … SELECT … ON CONFLICT DO NOTHING``
statements over indexed columns (``customer.birthday_md``, ``customer.licence_expiry``,
``vehicle.insurance_expiry``): no Python loop over owners, and memory does not grow with
their number. The unique key (customer, kind, occasion key) makes it idempotent: a re-run
writes nothing new.

Catch-up: the last local day scanned is kept in ``scan_state``; a scan covers every day
since, so an expiry reminder whose day passed while the process was down still goes out
while the policy or licence is valid. Birthdays and holidays are greeted on the day only,
never late. Rules: docs/touchpoints.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from bot.config import QuietHours, Settings
from bot.journeys.plans import (
    BIRTHDAY,
    GREETING_PRIORITY,
    HOLIDAY,
    INSURANCE,
    LICENCE,
    SERVICE_DUE,
    SERVICE_PRIORITY,
)
from bot.journeys.repairs import REPAIR_REMINDER
from bot.journeys.timing import (
    Holiday,
    at_local,
    birthday_keys_on,
    end_of_local_day,
    expiry_reminders_due,
    local_date,
    parse_day_list,
    parse_hhmm,
    parse_holidays,
    scan_days,
)
from bot.schedule import shift_out_of_quiet_hours
from db.models import ScanState, TouchpointStatus, VehicleStatus

log = logging.getLogger(__name__)

SCAN_NAME = "occasions"
REPAIR_VALID_DAYS = 7  # a recommended-repair reminder not sent within a week is dropped


@dataclass(frozen=True)
class OccasionRules:
    """What the scan needs from Settings, parsed once."""

    tz: ZoneInfo
    quiet: QuietHours | None
    scan_time: time = time(9, 30)
    insurance_leads: tuple[int, ...] = (30, 7)
    licence_leads: tuple[int, ...] = (30,)
    holidays: tuple[Holiday, ...] = ()
    catchup_days: int = 31
    service_due_grace_days: int = 14


def occasion_rules(settings: Settings) -> OccasionRules:
    holidays = parse_holidays(settings.holidays)
    if settings.holidays_file is not None:
        holidays += read_holidays_file(settings.holidays_file)
    return OccasionRules(
        tz=settings.tz,
        quiet=settings.quiet,
        scan_time=parse_hhmm(settings.scan_time),
        insurance_leads=parse_day_list(settings.insurance_lead_days),
        licence_leads=parse_day_list(settings.licence_lead_days),
        holidays=tuple(holidays),
        catchup_days=settings.scan_catchup_days,
        service_due_grace_days=settings.service_due_grace_days,
    )


def read_holidays_file(path: Path) -> list[Holiday]:
    """``MM-DD:name`` (or ``LMM-DD:name``) a line; ``#`` starts a comment. A missing or bad
    file is logged and adds nothing: greetings are optional, the scan must still run."""
    try:
        return parse_holidays(path.read_text(encoding="utf-8"))
    except OSError as exc:
        log.error("holidays file %s cannot be read: %s", path, exc)
    except ValueError as exc:
        log.error("holidays file %s: %s", path, exc)
    return []


@dataclass
class ScanReport:
    days: list[date] = field(default_factory=list)
    birthdays: int = 0
    insurance: int = 0
    licence: int = 0
    holidays: int = 0
    service_due: int = 0
    repairs: int = 0

    @property
    def written(self) -> int:
        return (self.birthdays + self.insurance + self.licence + self.holidays
                + self.service_due + self.repairs)


class _Inserter:
    """Builds ``INSERT INTO touchpoint … SELECT … ON CONFLICT DO NOTHING`` for one dialect.

    Values that are the same for every row (kind, times, payload) are parameters; the key
    prefix is a literal built from dates and numbers only. Counting: SQLite reports the rows
    changed; on PostgreSQL the insert runs in a CTE so its rows can be counted.
    """

    def __init__(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.pg = conn.capabilities.dialect == "postgres"

    async def insert(
        self, *, kind: str, priority: int, source: str, customer: str, vehicle: str,
        key_prefix: str, key_suffix: str, where: str, where_args: list[Any], due: datetime,
        expires: datetime | str, payload: dict[str, Any] | str,
    ) -> int:
        """``expires`` and ``payload`` are values for every row, or (a str) SQL expressions
        over the source's columns (per-row reminders such as the service forecasts')."""
        assert "'" not in key_prefix
        args: list[Any] = []

        def mark(value: Any, pg_type: str) -> str:
            args.append(value)
            return f"CAST(${len(args)} AS {pg_type})" if self.pg else "?"

        key = f"'{key_prefix}'" + (f" || CAST({key_suffix} AS TEXT)" if key_suffix else "")
        select = ", ".join([
            customer, vehicle, mark(kind, "TEXT"), key, mark(priority, "SMALLINT"),
            mark(due, "TIMESTAMPTZ"),
            expires if isinstance(expires, str) else mark(expires, "TIMESTAMPTZ"),
            mark(TouchpointStatus.PENDING.value, "TEXT"), "''", "0", "''",
            payload if isinstance(payload, str)
            else mark(json.dumps(payload, ensure_ascii=False), "JSONB"),
            mark(self.now, "TIMESTAMPTZ"), mark(self.now, "TIMESTAMPTZ"),
        ])
        for value in where_args:
            where = where.replace("{}", mark(value, _pg_type(value)), 1)
        sql = (
            'INSERT INTO "touchpoint" ("customer_id", "vehicle_id", "kind", "occasion_key", '
            '"priority", "due_at", "expires_at", "status", "status_reason", "attempts", '
            '"last_error", "payload", "created_at", "updated_at") '
            f"SELECT {select} FROM {source} WHERE {where} ON CONFLICT DO NOTHING"
        )
        if self.pg:
            _, rows = await self.conn.execute_query(
                f"WITH ins AS ({sql} RETURNING 1) SELECT COUNT(*) AS n FROM ins", args
            )
            return int(rows[0]["n"])
        count, _ = await self.conn.execute_query(sql, args)
        return count


def _pg_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, int):
        return "BIGINT"
    return "TEXT"


async def run_scan(now: datetime, rules: OccasionRules) -> ScanReport:
    """Write today's occasions (and what missed days still owe); safe to run any number of
    times a day."""
    today = local_date(now, rules.tz)
    state = await ScanState.get_or_none(name=SCAN_NAME)
    days = scan_days(state.last_day if state else None, today, rules.catchup_days)
    report = ScanReport(days=days)
    due = shift_out_of_quiet_hours(at_local(today, rules.scan_time, rules.tz), rules.tz,
                                   rules.quiet)
    end_today = end_of_local_day(today, rules.tz)
    stamp = f"{today:%Y%m%d}"
    async with in_transaction() as conn:
        ins = _Inserter(conn, now)
        keys = birthday_keys_on(today)
        report.birthdays = await ins.insert(
            kind=BIRTHDAY, priority=GREETING_PRIORITY, source='"customer" c',
            customer="c.id", vehicle="NULL", key_prefix=f"birthday:{stamp}", key_suffix="",
            where='c."birthday_md" IN ({})'.replace("{}", ", ".join(["{}"] * len(keys))),
            where_args=list(keys), due=due, expires=end_today, payload={"day": today.isoformat()},
        )
        for expiry, lead in expiry_reminders_due(days, today, rules.insurance_leads):
            report.insurance += await ins.insert(
                kind=INSURANCE, priority=SERVICE_PRIORITY, source='"vehicle" v',
                customer='v."customer_id"', vehicle="v.id",
                key_prefix=f"insurance:{expiry:%Y%m%d}:{lead}:", key_suffix="v.id",
                where='v."insurance_expiry" = {} AND v."status" = {}',
                where_args=[expiry, VehicleStatus.ACTIVE.value], due=due,
                expires=end_of_local_day(expiry, rules.tz),
                payload=_expiry_payload(expiry, lead, today),
            )
        for expiry, lead in expiry_reminders_due(days, today, rules.licence_leads):
            report.licence += await ins.insert(
                kind=LICENCE, priority=SERVICE_PRIORITY, source='"customer" c',
                customer="c.id", vehicle="NULL", key_prefix=f"licence:{expiry:%Y%m%d}:{lead}",
                key_suffix="", where='c."licence_expiry" = {}', where_args=[expiry], due=due,
                expires=end_of_local_day(expiry, rules.tz),
                payload=_expiry_payload(expiry, lead, today),
            )
        report.holidays = await _holidays(ins, today, due, rules)
        report.service_due = await _service_due(ins, days, today, due, rules)
        report.repairs = await _repairs(ins, days, today, due, rules)
        if state is None:
            await ScanState.create(name=SCAN_NAME, last_day=today, updated_at=now)
        elif state.last_day < today:
            await ScanState.filter(name=SCAN_NAME).update(last_day=today, updated_at=now)
    log.info(
        "occasions scan %s..%s: %d birthdays, %d insurance, %d licence, %d holiday greetings, "
        "%d service due, %d recommended repairs", days[0], days[-1], report.birthdays,
        report.insurance, report.licence, report.holidays, report.service_due, report.repairs,
    )
    return report


async def _holidays(ins: _Inserter, today: date, due: datetime, rules: OccasionRules) -> int:
    """Today's holiday greetings, one ``INSERT … SELECT`` per holiday falling on it."""
    count = 0
    for holiday in rules.holidays:
        if not holiday.falls_on(today):
            continue
        # Greetings go to owners who can and may receive them: no dead rows per owner.
        # The key names the holiday's own date spec ("L" = lunar): two holidays on one
        # day are two greetings.
        spec = f"{'L' if holiday.lunar else ''}{holiday.month:02d}-{holiday.day:02d}"
        count += await ins.insert(
            kind=HOLIDAY, priority=GREETING_PRIORITY, source='"customer" c',
            customer="c.id", vehicle="NULL", key_prefix=f"holiday:{today:%Y%m%d}:{spec}",
            key_suffix="",
            where='c."telegram_chat_id" IS NOT NULL AND c."unreachable_at" IS NULL '
                  'AND c."followups_refused" = {}',
            where_args=[False], due=due, expires=end_of_local_day(today, rules.tz),
            payload={"name": holiday.name, "day": today.isoformat()},
        )
    return count


def _expiry_payload(expiry: date, lead: int, today: date) -> dict[str, Any]:
    return {"expiry": expiry.isoformat(), "lead_days": lead, "days_left": (expiry - today).days}


async def _service_due(ins: _Inserter, days: list[date], today: date, due: datetime,
                       rules: OccasionRules) -> int:
    """Service-due reminders whose day came (issue 17, point 2): one ``INSERT … SELECT`` over
    the forecasts' ``remind_on`` index. The forecast was worked out when the car's last
    reading arrived (bot/journeys/forecasts.py); a missed day's reminder still goes while the
    service is not ``service_due_grace_days`` overdue. Valid until the end of that day."""
    grace = timedelta(days=rules.service_due_grace_days)
    if ins.pg:
        payload = ("jsonb_build_object('next_service_on', CAST(f.\"due_on\" AS TEXT), "
                   "'next_service_km', f.\"due_km\", 'by', f.\"by\", 'interval_km', "
                   "NULLIF(f.\"interval_km\", 0), 'last_service_on', "
                   "CAST(f.\"last_service_on\" AS TEXT))")
        expires = (f"CAST(f.\"due_on\" + {grace.days + 1} AS TIMESTAMP) "
                   f"AT TIME ZONE '{rules.tz.key}'")
    else:
        payload = ("json_object('next_service_on', f.\"due_on\", 'next_service_km', "
                   "f.\"due_km\", 'by', f.\"by\", 'interval_km', NULLIF(f.\"interval_km\", 0), "
                   "'last_service_on', f.\"last_service_on\")")
        # Tortoise keeps SQLite datetimes as ISO text with an offset: the end of the grace
        # day at local midnight, as UTC ("+00:00").
        offset = end_of_local_day(today, rules.tz) - datetime.combine(
            today + timedelta(days=1), time(0), tzinfo=UTC)
        expires = (f"strftime('%Y-%m-%d %H:%M:%S', f.\"due_on\", '+{grace.days + 1} days', "
                   f"'{int(offset.total_seconds())} seconds') || '+00:00'")
    return await ins.insert(
        kind=SERVICE_DUE, priority=SERVICE_PRIORITY,
        source='"service_forecast" f JOIN "vehicle" v ON v.id = f."vehicle_id"',
        customer='v."customer_id"', vehicle="v.id", key_prefix=f"{SERVICE_DUE}:",
        key_suffix='f."cycle"',
        where='f."remind_on" BETWEEN {} AND {} AND f."due_on" >= {} AND v."status" = {}',
        where_args=[days[0], today, today - grace, VehicleStatus.ACTIVE.value], due=due,
        expires=expires, payload=payload,
    )


async def _repairs(ins: _Inserter, days: list[date], today: date, due: datetime,
                   rules: OccasionRules) -> int:
    """Recommended repairs (建议维修项目) whose reminder day came and that no later visit
    did (issue 17, point 3; bot/journeys/repairs.py), valid for ``REPAIR_VALID_DAYS``."""
    build = "jsonb_build_object" if ins.pg else "json_object"
    payload = (f"{build}('item', r.\"item\", 'recommended_on', "
               "CAST(r.\"recommended_on\" AS TEXT))")
    return await ins.insert(
        kind=REPAIR_REMINDER, priority=SERVICE_PRIORITY,
        source='"recommended_repair" r JOIN "vehicle" v ON v.id = r."vehicle_id"',
        customer='v."customer_id"', vehicle="v.id", key_prefix="repair:", key_suffix="r.id",
        where='r."remind_on" BETWEEN {} AND {} AND r."done_on" IS NULL AND v."status" = {}',
        where_args=[days[0], today, VehicleStatus.ACTIVE.value], due=due,
        expires=end_of_local_day(today + timedelta(days=REPAIR_VALID_DAYS), rules.tz),
        payload=payload,
    )
