"""Reports that arrive by themselves (日结周报; issue 17, point 5): the daily digest and the
weekly and monthly reports, owed as notice rows to the staff group (the CSV attached) and
to each advisor in a private chat.

Once per period, across restarts and instances: the rows' keys name the report and its
period (``report:weekly:2026-W45:group``), so writing them again writes nothing. A tick
(every minute) looks at the latest scheduled time of each report at or before ``now``; if
that period's rows are missing it works the figures out and writes them, in one
transaction; the notices' sender posts them (``bot/delivery/notices.py``). A process down
at the scheduled time owes the report when it starts, until the next one is due.
Domain code: plain values in, rows out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from bot.config import Settings
from bot.delivery import notices
from bot.journeys.timing import add_months, at_local, end_of_local_day, local_date, parse_hhmm
from bot.kpi import Kpis, compute
from bot.kpi_review import Review, figures_of, review
from bot.kpi_targets import AT_LEAST, Verdict, is_rate, judge
from bot.periods import Period, month_period, week_period
from bot.review_text import review_csv
from bot.texts import DEFAULT_LANGUAGE, Scripts
from bot.workshop_kpi import WorkshopKpis, WorkshopRules
from db.models import (
    Booking,
    BookingStatus,
    CallStatus,
    Notice,
    NoticeStatus,
    PhoneCall,
    Staff,
    StaffRole,
)

log = logging.getLogger(__name__)

DAILY, WEEKLY, MONTHLY = "daily", "weekly", "monthly"
ARROWS = {"up": "↑", "down": "↓", "same": "→"}


@dataclass(frozen=True)
class ReportTimes:
    """When each report is due (local); None: not sent."""

    daily: time | None
    weekly_day: int  # ISO weekday; 0 = no weekly report
    weekly: time
    monthly_day: int  # day of the month; 0 = no monthly report
    monthly: time


def report_times(settings: Settings) -> ReportTimes:
    daily = settings.report_daily_time.strip()
    return ReportTimes(
        daily=parse_hhmm(daily) if daily else None,
        weekly_day=settings.report_weekly_day, weekly=parse_hhmm(settings.report_weekly_time),
        monthly_day=settings.report_monthly_day,
        monthly=parse_hhmm(settings.report_monthly_time))


def due_periods(now: datetime, times: ReportTimes, tz: ZoneInfo) -> list[tuple[str, Period]]:
    """Each report whose latest scheduled time is at or before ``now``, with the period it
    covers: the day before (daily), the ISO week before (weekly), the month before
    (monthly)."""
    today = local_date(now, tz)
    out: list[tuple[str, Period]] = []
    if times.daily is not None:
        day = today if at_local(today, times.daily, tz) <= now else today - timedelta(days=1)
        yesterday = day - timedelta(days=1)
        out.append((DAILY, Period(yesterday, day, yesterday.isoformat())))
    if times.weekly_day:
        back = (today.isoweekday() - times.weekly_day) % 7
        day = today - timedelta(days=back)
        if at_local(day, times.weekly, tz) > now:
            day -= timedelta(days=7)
        monday = day - timedelta(days=day.isoweekday() - 1)
        year, week, _ = (monday - timedelta(days=7)).isocalendar()
        out.append((WEEKLY, week_period(f"{year}-W{week:02d}")))
    if times.monthly_day:
        first = today.replace(day=1)
        day = first.replace(day=min(times.monthly_day, 28))
        if day > today or at_local(day, times.monthly, tz) > now:
            first = add_months(first, -1)
        before = add_months(first, -1)
        out.append((MONTHLY, month_period(f"{before:%Y-%m}")))
    return out


def report_key(kind: str, period: Period, to: str) -> str:
    return f"report:{kind}:{period.label}:{to}"


async def owe_reports(now: datetime, settings: Settings, scripts: Scripts,
                      rules: WorkshopRules) -> list[str]:
    """Write the rows of every report due and not yet owed; the keys of those written."""
    group = settings.report_chat_id or settings.staff_chat_id
    written: list[str] = []
    for kind, period in due_periods(now, report_times(settings), settings.tz):
        key = report_key(kind, period, "owed")
        if await Notice.exists(key=key):
            continue
        if kind == DAILY:
            rows = await _daily_rows(period, now, settings, scripts)
        else:
            rows = await _period_rows(kind, period, settings, scripts, rules)
        async with in_transaction():
            for to, text, document in rows:
                chats = [group] if to.startswith("group") and group is not None else []
                if to.startswith("advisor:"):
                    chats = [int(to.partition(":")[2].split(":")[0])]
                if chats:
                    await notices.owe(report_key(kind, period, to), chats, text, now=now,
                                      document=document)
            # the period's reports are owed: a row sent by nobody, so no tick writes them again
            await Notice.bulk_create([Notice(
                key=key, chats=[], text="", status=NoticeStatus.SENT, next_try_at=now,
                created_at=now, sent_at=now)], ignore_conflicts=True)
        log.info("%s report %s owed (%d messages)", kind, period.label, len(rows))
        written.append(key)
    return written


Row = tuple[str, str, tuple[str, str] | None]  # (to, text, (file name, CSV) or None)


def _title(kind: str, period: Period, scripts: Scripts, lang: str) -> str:
    last = period.end - timedelta(days=1)
    return scripts.label(f"rpt_{kind}_title", lang, period=period.label, first=period.start,
                         last=last)


def value_text(name: str, value: float | None, scripts: Scripts, lang: str) -> str:
    if value is None:
        return scripts.label("rpt_no_value", lang)
    return f"{value * 100:.1f}%" if is_rate(name) else f"{value:,.0f}"


def verdict_line(v: Verdict, got: Review, scripts: Scripts, lang: str) -> str:
    """One figure: its value, its target met or missed, the trend against the period before."""
    value = value_text(v.name, v.value, scripts, lang)
    if v.value is None and v.name == "renewal_rate":
        value = scripts.label("rpt_renewal_none", lang)
    target = ""
    if v.target is not None and v.met is not None:
        target = scripts.label(
            "rpt_target", lang, sign="≥" if v.target.direction == AT_LEAST else "≤",
            target=value_text(v.name, v.target.value, scripts, lang),
            verdict=scripts.label("rpt_met" if v.met else "rpt_missed", lang))
    trend = ""
    if v.trend:
        trend = scripts.label("rpt_trend", lang, arrow=ARROWS[v.trend],
                              previous=value_text(v.name, v.previous, scripts, lang))
    return scripts.label("rpt_line", lang, name=scripts.label(f"rpt_fig_{v.name}", lang),
                         value=value, target=target, trend=trend)


async def _period_rows(kind: str, period: Period, settings: Settings,
                       scripts: Scripts, rules: WorkshopRules) -> list[Row]:
    """The staff group's summary, its CSV, and each advisor's own figures in private."""
    got = await review(period, settings, rules, by_advisor=True)
    lang = DEFAULT_LANGUAGE
    title = _title(kind, period, scripts, lang)
    lines = [title, *(verdict_line(v, got, scripts, lang) for v in got.verdicts)]
    name = f"carebot-{kind}-{period.label}.csv"
    rows: list[Row] = [
        ("group", "\n".join(lines), None),
        ("group:csv", scripts.label("rpt_csv_caption", lang, title=title),
         (name, review_csv(got))),
    ]
    if settings.report_to_advisors:
        rows += await _advisor_rows(kind, period, got, scripts)
    return rows


async def _advisor_rows(kind: str, period: Period, got: Review, scripts: Scripts) -> list[Row]:
    """Each active advisor on Telegram whose name has figures: their own, in private (no
    targets: those are the dealership's)."""
    kpis = {k.scope: k for k in got.kpis.advisors}
    rows: list[Row] = []
    for staff_id, tg, name, lang in await Staff.filter(
        role=StaffRole.ADVISOR, active=True, telegram_id__isnull=False
    ).values_list("id", "telegram_id", "name", "language"):
        k, w = kpis.get(name), got.workshop.advisors.get(name)
        if k is None and w is None:
            continue
        mine = figures_of(k or Kpis(name), w or WorkshopKpis(name))
        verdicts = judge(mine, {}, {})
        title = scripts.label("rpt_advisor_title", lang, name=name, period=period.label,
                              kind=scripts.label(f"rpt_kind_{kind}", lang))
        lines = [title, *(verdict_line(v, got, scripts, lang) for v in verdicts)]
        csv_text = review_csv(got, scope=name)
        to = f"advisor:{tg}:{staff_id}"
        rows.append((to, "\n".join(lines), None))
        rows.append((f"{to}:csv", scripts.label("rpt_csv_caption", lang, title=title),
                     (f"carebot-{kind}-{period.label}-{staff_id}.csv", csv_text)))
    return rows


async def _daily_rows(period: Period, now: datetime, settings: Settings,
                      scripts: Scripts) -> list[Row]:
    """Yesterday's follow-ups, scores, complaints and bookings; today's bookings and calls."""
    lang, tz = DEFAULT_LANGUAGE, settings.tz
    day = period.start
    k = (await compute(period, tz, low_threshold=settings.survey_low_threshold)).dealership
    start, end = period.utc_bounds(tz)
    made = await Booking.filter(created_at__gte=start, created_at__lt=end).count()
    cancelled = await Booking.filter(cancelled_at__gte=start, cancelled_at__lt=end).count()
    today = day + timedelta(days=1)
    slots: dict[str, int] = {}
    for (slot,) in await Booking.filter(day=today, status=BookingStatus.BOOKED).values_list(
            "slot"):
        slots[str(slot)] = slots.get(str(slot), 0) + 1
    slot_text = (" (" + ", ".join(f"{s} {n}" for s, n in sorted(slots.items())) + ")"
                 if slots else "")
    average = "-" if k.average is None else f"{k.average:.1f}"
    lines = [
        scripts.label("rpt_daily_title", lang, day=day.isoformat()),
        scripts.label("rpt_daily_followups", lang, due=k.followups_due,
                      reached=k.followups_reached, responses=k.responses),
        scripts.label("rpt_daily_scores", lang, scores=k.scores, average=average,
                      low=settings.survey_low_threshold, low_scores=k.low_scores),
        scripts.label("rpt_daily_complaints", lang, tickets=k.tickets_opened),
        scripts.label("rpt_daily_bookings", lang, made=made, cancelled=cancelled),
        scripts.label("rpt_daily_today", lang, today=sum(slots.values()), slots=slot_text),
        await _calls_line(today, tz, scripts, lang),
    ]
    return [("group", "\n".join(lines), None)]


async def _calls_line(today: date, tz: ZoneInfo, scripts: Scripts, lang: str) -> str:
    """The calls due by the end of today on the call list (issue 16, ``bot/calls.py``): the
    open calls whose next attempt is due by then."""
    calls = await PhoneCall.filter(status=CallStatus.OPEN,
                                   due_at__lt=end_of_local_day(today, tz)).count()
    return scripts.label("rpt_daily_calls", lang, calls=calls)
