"""Marketing campaigns: audiences in SQL, the lifecycle, launch into the outbox, results.

A campaign is a row (:class:`db.models.Campaign`); launching it writes one touchpoint per
targeted owner (kind ``campaign``, occasion ``campaign:<id>``, marketing priority) in bulk, and
the dispatcher does the rest: service rows first, quiet hours, pacing, consent at send time.
Everything here takes plain values and ``now``; nothing knows Telegram.

Lifecycle: draft -> scheduled -> sending -> done, with pause/resume (pending rows are held)
and cancel (every row not yet sent is skipped). See docs/campaigns.md.
"""


from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise import Tortoise
from tortoise.expressions import Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from bot.campaigns.audiences import AudienceCount, as_date, classify, parse_audience
from bot.campaigns.content import check_messages, compose_campaign, latest_vehicle, parse_buttons
from bot.campaigns.policy import KIND, LIVE, PRIORITY, CampaignError, CampaignRules, occasion_key
from bot.config import Settings
from bot.delivery.dispatcher import MARKETING_PRIORITY_FROM
from bot.journeys.timing import end_of_local_day, local_date
from bot.schedule import shift_out_of_quiet_hours
from bot.templating import (
    render_off_loop,
)
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, Scripts
from db.models import (
    Booking,
    Campaign,
    CampaignPress,
    CampaignStatus,
    ConsentRecord,
    Customer,
    CustomerTag,
    Touchpoint,
    TouchpointStatus,
)

log = logging.getLogger(__name__)

async def create_campaign(*, name: str, messages: Any, now: datetime,
                          dealer: Mapping[str, str], buttons: Any = None,
                          audience: Mapping[str, Any] | None = None, marketer: str = "",
                          event_date: date | str | None = None) -> Campaign:
    """A new draft. The message must exist in zh_CN (the fallback) and render."""
    name = (name or "").strip()
    if not name:
        raise CampaignError("a campaign needs a name")
    if messages is None:
        messages = {}
    if not isinstance(messages, Mapping):
        raise CampaignError("messages: give an object of language -> text, "
                            "e.g. {\"zh_CN\": \"…\"}")
    not_text = sorted(str(k) for k, v in messages.items() if not isinstance(v, str))
    if not_text:
        raise CampaignError(f"messages: {not_text} must be texts")
    texts = {str(k): str(v) for k, v in messages.items() if str(v).strip()}
    bad_lang = sorted(set(texts) - set(LANGUAGES))
    if bad_lang:
        raise CampaignError(f"messages: language(s) {bad_lang} not served; use {LANGUAGES}")
    if DEFAULT_LANGUAGE not in texts:
        raise CampaignError("messages: a zh_CN text is required (the fallback language)")
    problems = await render_off_loop(check_messages, texts, dealer)
    if problems:
        lang, problem = next(iter(problems.items()))
        raise CampaignError(f"messages.{lang}: {problem}")
    parsed_audience = parse_audience(audience)
    event = as_date("event_date", event_date) if event_date not in (None, "") else None
    return await Campaign.create(
        name=name[:200], marketer=marketer[:100], messages=texts,
        buttons=parse_buttons(buttons), audience=parsed_audience.to_dict(),
        event_date=event, created_at=now,
    )


async def get_campaign(campaign_id: int) -> Campaign:
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id}")
    return campaign


def event_deadline(event_date: date, lead_days: int) -> date:
    """The last local day a notice for the event may go out (DOMAIN: 2 weeks before)."""
    return event_date - timedelta(days=lead_days)


async def schedule_campaign(campaign: Campaign, *, send_at: datetime, now: datetime,
                            rules: CampaignRules, force_reason: str = "") -> Campaign:
    """draft -> scheduled at a local send time. With an event date, a send time later than
    ``event_lead_days`` before it is refused unless forced with a reason (kept)."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}; only a draft or a "
                            "scheduled campaign can be (re)scheduled")
    if send_at.tzinfo is None:
        raise ValueError("send_at must be timezone-aware")
    send_at = max(send_at, now).astimezone(UTC)  # SQLite compares text
    force_reason = force_reason.strip()
    if campaign.event_date is not None:
        send_day = local_date(send_at, rules.tz)
        if campaign.event_date < send_day:
            raise CampaignError(f"the event ({campaign.event_date}) is before the send time")
        deadline = event_deadline(campaign.event_date, rules.event_lead_days)
        if send_day > deadline and not force_reason:
            raise CampaignError(
                f"the event is on {campaign.event_date}: the notice must go out by {deadline} "
                f"({rules.event_lead_days} days before); send earlier, or force it with a reason"
            )
        if send_day > deadline:
            campaign.force_reason = force_reason
    campaign.send_at = send_at
    campaign.scheduled_at = now
    campaign.status = CampaignStatus.SCHEDULED
    await campaign.save()
    return campaign


def due_time(send_at: datetime, now: datetime, rules: CampaignRules) -> datetime:
    return shift_out_of_quiet_hours(max(send_at, now), rules.tz, rules.quiet)


def expiry(due: datetime, event_date: date | None, rules: CampaignRules) -> datetime:
    """Unsent messages expire after ``valid_days``, and never outlive the event."""
    end = due + timedelta(days=rules.valid_days)
    if event_date is not None:
        end = min(end, end_of_local_day(event_date - timedelta(days=1), rules.tz))
    return max(end, due)


async def _queue(owners: QuerySet[Customer], *, now: datetime, values: Mapping[str, Any]) -> int:
    """One touchpoint per owner of ``owners`` in a single ``INSERT … SELECT`` (no row passes
    through Python); ``values`` are the touchpoint's fields, the same for every row, and the
    other columns get the model's defaults. A row that exists already (the unique key) is
    left as it is. Returns how many rows were written."""
    conn = Tortoise.get_connection("default")
    meta = Touchpoint._meta
    columns = [meta.fields_db_projection["customer_id"]]
    params: list[Any] = []
    for name, column in meta.fields_db_projection.items():
        f = meta.fields_map[name]
        if name in ("id", "customer_id") or f.generated or f.has_db_default():
            continue
        if name in values:
            value = values[name]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now
        elif f.default is not None:
            value = f.default() if callable(f.default) else f.default
        elif f.null:
            continue
        else:
            raise RuntimeError(f"Touchpoint.{name} has no default; give it in values")
        columns.append(column)
        # datetimes go as they are (both drivers take an aware datetime, as the ORM does)
        params.append(value if isinstance(value, datetime) else f.to_db_value(value, Touchpoint))
    ids = owners.values("id")
    ids.sql()  # builds ids.query
    select, select_params = ids.query.get_parameterized_sql()
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.capabilities.dialect == "postgres":  # $1..$n are the SELECT's, ours come after
        marks = [f"${len(select_params) + i}" for i in range(1, len(params) + 1)]
        args = [*select_params, *params]
    else:  # "?" are numbered by position: ours come first in the text
        marks = ["?"] * len(params)
        args = [*params, *select_params]
    # "WHERE 1 = 1" keeps SQLite from reading ON CONFLICT as a join's ON
    sql = (f'INSERT INTO "{meta.db_table}" ({names}) '
           f'SELECT "owners"."id", {", ".join(marks)} FROM ({select}) AS "owners" '
           f'WHERE 1 = 1 ORDER BY "owners"."id" ON CONFLICT DO NOTHING')
    written, _ = await conn.execute_query(sql, args)
    return int(written)


async def launch(campaign: Campaign, *, now: datetime, rules: CampaignRules) -> AudienceCount:
    """Write the campaign's touchpoints in bulk (one INSERT … SELECT from the audience) and
    keep what launching decided."""
    assert campaign.send_at is not None
    due = due_time(campaign.send_at, now, rules)
    eligible, count = await classify(parse_audience(campaign.audience), now=now, due=due,
                                     rules=rules, campaign_id=campaign.id)
    key = occasion_key(campaign.id)
    await _queue(eligible, now=now, values={
        "kind": KIND, "occasion_key": key, "priority": PRIORITY, "due_at": due,
        "expires_at": expiry(due, campaign.event_date, rules),
        "payload": {"campaign_id": campaign.id},
    })
    campaign.launch = {**count.to_dict(), "queued": count.eligible, "due_at": due.isoformat()}
    campaign.launched_at = now
    await campaign.save(update_fields=["launch", "launched_at", "updated_at"])
    # Paused or cancelled while the rows were being written: those calls found no rows yet.
    status = (await Campaign.get(id=campaign.id)).status
    if status == CampaignStatus.CANCELLED:
        await Touchpoint.filter(
            kind=KIND, occasion_key=key,
            status__in=[TouchpointStatus.PENDING, TouchpointStatus.HELD],
        ).update(status=TouchpointStatus.SKIPPED, status_reason="campaign cancelled")
    elif status == CampaignStatus.PAUSED:
        await Touchpoint.filter(
            kind=KIND, occasion_key=key, status=TouchpointStatus.PENDING,
        ).update(status=TouchpointStatus.HELD, status_reason="campaign paused")
    log.info("campaign %s launched: %s", campaign.id, campaign.launch)
    return count


async def launch_due(*, now: datetime, rules: CampaignRules) -> list[int]:
    """Launch every scheduled campaign whose send time has come; each is claimed first, so
    two instances never launch one twice."""
    launched: list[int] = []
    due_ids: list[int] = await Campaign.filter(  # type: ignore[assignment]
        status=CampaignStatus.SCHEDULED, send_at__lte=now).values_list("id", flat=True)
    for cid in due_ids:
        claimed = await Campaign.filter(id=cid, status=CampaignStatus.SCHEDULED).update(
            status=CampaignStatus.SENDING)
        if not claimed:
            continue
        campaign = await Campaign.get(id=cid)
        try:
            await launch(campaign, now=now, rules=rules)
        except Exception:
            log.exception("campaign %s failed to launch; back to scheduled", cid)
            # only if still ours: a pause or cancel meanwhile must not be undone
            await Campaign.filter(id=cid, status=CampaignStatus.SENDING).update(
                status=CampaignStatus.SCHEDULED)
            continue
        launched.append(cid)
    return launched


async def finish_done(*, now: datetime) -> int:
    """A sending campaign with nothing left to send is done."""
    n = 0
    for campaign in await Campaign.filter(status=CampaignStatus.SENDING,
                                          launched_at__isnull=False):
        live = await Touchpoint.filter(kind=KIND, occasion_key=occasion_key(campaign.id),
                                       status__in=list(LIVE)).exists()
        if not live:
            n += await Campaign.filter(id=campaign.id, status=CampaignStatus.SENDING).update(
                status=CampaignStatus.DONE, finished_at=now)
    return n


async def pause(campaign: Campaign, *, now: datetime) -> int:
    """Hold every row not yet claimed; returns how many were held."""
    if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}; only a scheduled "
                            "or sending campaign can be paused")
    async with in_transaction():
        held = await Touchpoint.filter(
            kind=KIND, occasion_key=occasion_key(campaign.id), status=TouchpointStatus.PENDING,
        ).update(status=TouchpointStatus.HELD, status_reason="campaign paused")
        campaign.status = CampaignStatus.PAUSED
        await campaign.save(update_fields=["status", "updated_at"])
    return held


async def resume(campaign: Campaign, *, now: datetime) -> int:
    """Held rows go back to the queue (still subject to their expiry)."""
    if campaign.status != CampaignStatus.PAUSED:
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}, not paused")
    async with in_transaction():
        back = await Touchpoint.filter(
            kind=KIND, occasion_key=occasion_key(campaign.id), status=TouchpointStatus.HELD,
        ).update(status=TouchpointStatus.PENDING, status_reason="")
        campaign.status = CampaignStatus.SENDING if campaign.launched_at else \
            CampaignStatus.SCHEDULED
        await campaign.save(update_fields=["status", "updated_at"])
    return back


async def cancel(campaign: Campaign, *, now: datetime) -> int:
    """Every message not yet sent is skipped ("campaign cancelled"); returns how many."""
    if campaign.status in (CampaignStatus.DONE, CampaignStatus.CANCELLED):
        raise CampaignError(f"campaign {campaign.id} is already {campaign.status}")
    async with in_transaction():
        stopped = await Touchpoint.filter(
            kind=KIND, occasion_key=occasion_key(campaign.id),
            status__in=[TouchpointStatus.PENDING, TouchpointStatus.HELD],
        ).update(status=TouchpointStatus.SKIPPED, status_reason="campaign cancelled")
        campaign.status = CampaignStatus.CANCELLED
        campaign.finished_at = now
        await campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return stopped


def _rows_of_campaigns(status: CampaignStatus) -> str:
    """SQL: the occasion keys of every campaign in ``status`` (SQLite and PostgreSQL)."""
    return (f"SELECT 'campaign:' || CAST(\"id\" AS TEXT) FROM \"campaign\" "
            f"WHERE \"status\" = '{status.value}'")


async def stop_cancelled_and_paused(now: datetime) -> int:
    """Each tick: a row that came back to pending after a cancel or pause (a 429 or network
    retry, a reclaimed lease, a launch racing the click) is skipped ("campaign cancelled")
    or held again ("campaign paused"). Two set-based UPDATEs; returns how many rows."""
    conn = Tortoise.get_connection("default")
    n = 0
    for status, new, reason, from_states in (
        (CampaignStatus.CANCELLED, TouchpointStatus.SKIPPED, "campaign cancelled",
         (TouchpointStatus.PENDING, TouchpointStatus.HELD)),
        (CampaignStatus.PAUSED, TouchpointStatus.HELD, "campaign paused",
         (TouchpointStatus.PENDING,)),
    ):
        states = ", ".join(f"'{s.value}'" for s in from_states)
        count, _ = await conn.execute_query(
            f"UPDATE \"touchpoint\" SET \"status\" = '{new.value}', "
            f"\"status_reason\" = '{reason}' "
            f"WHERE \"kind\" = '{KIND}' AND \"status\" IN ({states}) "
            f"AND \"occasion_key\" IN ({_rows_of_campaigns(status)})"
        )
        n += count
    return n


async def skip_capped(now: datetime, cap: int) -> int:
    """At send time: a due marketing row for an owner who already got ``cap`` marketing
    messages in the last 7 days is skipped (launch checks too; this catches overlaps)."""
    capped = Touchpoint.filter(
        status=TouchpointStatus.SENT, sent_at__gt=now - timedelta(days=7),
        priority__gte=MARKETING_PRIORITY_FROM,
    ).annotate(n=Count("id")).group_by("customer_id").filter(n__gte=cap).values("customer_id")
    return await Touchpoint.filter(
        status=TouchpointStatus.PENDING, due_at__lte=now, priority__gte=MARKETING_PRIORITY_FROM,
        customer_id__in=Subquery(capped),
    ).update(status=TouchpointStatus.SKIPPED, status_reason="weekly marketing cap")


# --------------------------------------------------------------------------- results


async def record_press(campaign_id: int, customer_id: int, button: str, now: datetime) -> bool:
    """Keep a press; True the first time this owner pressed this button of this campaign."""
    if not await Campaign.filter(id=campaign_id).exists():
        return False
    _, created = await CampaignPress.get_or_create(
        campaign_id=campaign_id, customer_id=customer_id, button=button,
        defaults={"created_at": now},
    )
    return created


async def stats(campaign: Campaign) -> dict[str, Any]:
    """Targeted, excluded by reason, sent, failed, unreachable, presses, unsubscribed after;
    every number one SQL aggregate."""
    key = occasion_key(campaign.id)
    rows = await Touchpoint.filter(kind=KIND, occasion_key=key).annotate(
        n=Count("id")).group_by("status", "status_reason").values("status", "status_reason", "n")
    by_status: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for row in rows:
        status = str(row["status"])
        by_status[status] = by_status.get(status, 0) + int(row["n"])
        if status in (TouchpointStatus.SKIPPED, TouchpointStatus.EXPIRED):
            reason = row["status_reason"] or status
            skipped[reason] = skipped.get(reason, 0) + int(row["n"])
    presses = {str(r["button"]): int(r["n"]) for r in await CampaignPress.filter(
        campaign_id=campaign.id).annotate(n=Count("id")).group_by("button").values("button", "n")}
    # Book through the booking flow: owners who booked from this campaign's message.
    booked = await Booking.filter(source_touchpoint_id__in=Subquery(Touchpoint.filter(
        kind=KIND, occasion_key=key).values("id"))).count()
    unsubscribed = 0
    if campaign.launched_at is not None:
        recipients = Subquery(Touchpoint.filter(
            kind=KIND, occasion_key=key, status=TouchpointStatus.SENT).values("customer_id"))
        unsubscribed = await Customer.filter(id__in=Subquery(ConsentRecord.filter(
            granted=False, created_at__gte=campaign.launched_at, customer_id__in=recipients,
        ).values("customer_id"))).count()
    launch_info = campaign.launch or {}
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": str(campaign.status),
        "targeted": launch_info.get("targeted", 0),
        "excluded": launch_info.get("excluded", {}),
        "queued": launch_info.get("queued", 0),
        "sent": by_status.get(TouchpointStatus.SENT, 0),
        "failed": by_status.get(TouchpointStatus.FAILED, 0),
        "unreachable": by_status.get(TouchpointStatus.UNREACHABLE, 0),
        "pending": by_status.get(TouchpointStatus.PENDING, 0)
        + by_status.get(TouchpointStatus.SENDING, 0),
        "held": by_status.get(TouchpointStatus.HELD, 0),
        "not_sent": skipped,
        "pressed": {b: presses.get(b, 0) for b in ("interested", "book", "unsubscribe")},
        "booked": booked,
        "unsubscribed_after": unsubscribed,
    }


def describe(campaign: Campaign) -> dict[str, Any]:
    """A campaign as the API and the CLI show it."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "marketer": campaign.marketer,
        "status": str(campaign.status),
        "messages": campaign.messages,
        "buttons": campaign.buttons,
        "audience": campaign.audience,
        "send_at": campaign.send_at.astimezone(UTC).isoformat()
        if campaign.send_at else None,
        "event_date": campaign.event_date.isoformat() if campaign.event_date else None,
        "force_reason": campaign.force_reason,
        "launch": campaign.launch,
        "created_at": campaign.created_at.isoformat(),
        "launched_at": campaign.launched_at.isoformat() if campaign.launched_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


async def add_tag(phone: str, tag: str, *, now: datetime) -> bool:
    """Tag an owner (by E.164 phone); False if already tagged. Raises for an unknown phone."""
    tag = tag.strip()
    if not tag or len(tag) > 50:
        raise CampaignError("a tag is 1-50 characters")
    customer = await Customer.get_or_none(phone=phone)
    if customer is None:
        raise CampaignError(f"no owner with phone {phone}")
    _, created = await CustomerTag.get_or_create(customer_id=customer.id, tag=tag,
                                                 defaults={"created_at": now})
    return created


async def remove_tag(phone: str, tag: str) -> bool:
    customer = await Customer.get_or_none(phone=phone)
    if customer is None:
        raise CampaignError(f"no owner with phone {phone}")
    return bool(await CustomerTag.filter(customer_id=customer.id, tag=tag.strip()).delete())


async def preview(campaign: Campaign, *, now: datetime, rules: CampaignRules, scripts: Scripts,
                  settings: Settings, limit: int = 3) -> dict[str, Any]:
    """The audience counted (excluded by reason) and the message rendered for up to three
    real owners who would receive it."""
    due = due_time(campaign.send_at or now, now, rules)
    eligible, count = await classify(parse_audience(campaign.audience), now=now, due=due,
                                     rules=rules, campaign_id=campaign.id)
    samples = []
    for customer in await eligible.order_by("id").limit(limit):
        vehicle = await latest_vehicle(customer.id)
        out = await render_off_loop(compose_campaign, campaign, customer, vehicle, scripts,
                                    settings)
        samples.append({"customer_id": customer.id, "name": customer.name,
                        "language": customer.language, "text": out.text,
                        "buttons": [label for row in out.buttons for label, _ in row]})
    return {**count.to_dict(), "due_at": due.isoformat(), "samples": samples}
