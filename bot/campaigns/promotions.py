"""Marketing campaigns: audiences in SQL, the lifecycle, launch into the outbox, results.

A campaign is a row (:class:`db.models.Campaign`); launching it writes one touchpoint per
targeted owner (kind ``campaign``, occasion ``campaign:<id>``, marketing priority) in bulk, and
the dispatcher does the rest: service rows first, quiet hours, pacing, consent at send time.
Everything here takes plain values and ``now``; nothing knows Telegram.

Lifecycle: draft -> scheduled -> sending -> done, with pause/resume (pending rows are held)
and cancel (every row not yet sent is skipped). See docs/campaigns.md.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Template, TemplateError
from tortoise import Tortoise
from tortoise.expressions import Case, Q, Subquery, When
from tortoise.functions import Count, Max
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from bot.config import QuietHours, Settings
from bot.delivery.dispatcher import MARKETING_PRIORITY_FROM, Outgoing, dealer_context
from bot.journeys.timing import add_months, at_local, end_of_local_day, local_date
from bot.sandbox.telegram_html import HtmlParseError, parse_html
from bot.schedule import shift_out_of_quiet_hours
from bot.templating import (
    OUTPUT_CAP,
    Fields,
    LimitedEnvironment,
    TemplateOverBudget,
    render,
    render_off_loop,
)
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, Scripts, car_fields, owner_fields
from db.models import (
    Booking,
    Campaign,
    CampaignPress,
    CampaignStatus,
    ConsentRecord,
    Customer,
    CustomerTag,
    Score,
    Ticket,
    TicketState,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
)

log = logging.getLogger(__name__)

KIND = "campaign"
PRIORITY = MARKETING_PRIORITY_FROM
BUTTON_KINDS = ("interested", "book", "url")
MAX_BUTTONS = 3
# Callback data: "mk:<campaign id>:<code>"; codes below (and "mk:c:y/n" for the question).
# ("cp:" as first planned is taken by complaints, issue 5.)
BUTTON_CODES = {"interested": "i", "book": "b", "unsubscribe": "u"}
CODE_BUTTONS = {v: k for k, v in BUTTON_CODES.items()}
EXCLUSION_REASONS = ("opted_out", "no_consent", "not_linked", "unreachable", "capped")
_OPEN_TICKET = [s for s in TicketState if s != TicketState.CLOSED]
_LIVE = (TouchpointStatus.PENDING, TouchpointStatus.SENDING, TouchpointStatus.HELD)
_URL = re.compile(r"^https?://[^\s/]+\S*$")


class CampaignError(Exception):
    """A request about a campaign that cannot be done; the message says why and what to do."""


def occasion_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


@dataclass(frozen=True)
class CampaignRules:
    """What launching and sending need from Settings."""

    tz: ZoneInfo
    quiet: QuietHours | None
    weekly_cap: int = 2
    valid_days: float = 3.0
    event_lead_days: int = 14


def campaign_rules(settings: Settings) -> CampaignRules:
    return CampaignRules(
        tz=settings.tz, quiet=settings.quiet, weekly_cap=settings.marketing_weekly_cap,
        valid_days=settings.campaign_valid_days,
        event_lead_days=settings.campaign_event_lead_days,
    )


# --------------------------------------------------------------------------- audiences


@dataclass(frozen=True)
class Audience:
    """Combinable filters (all must hold); empty means every owner."""

    models: tuple[str, ...] = ()
    delivered_from: date | None = None
    delivered_to: date | None = None
    last_visit_before: date | None = None
    last_visit_after: date | None = None
    min_visits: int | None = None
    no_visit_months: int | None = None
    insurance_within_days: int | None = None
    languages: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    open_ticket: bool | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in AUDIENCE_FIELDS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            out[name] = value.isoformat() if isinstance(value, date) else \
                list(value) if isinstance(value, tuple) else value
        return out


AUDIENCE_FIELDS = tuple(Audience.__dataclass_fields__)


def _as_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise CampaignError(f"audience {name}: give a list of texts")
    items = tuple(str(v).strip() for v in value if str(v).strip())
    if not items:
        raise CampaignError(f"audience {name}: the list is empty")
    return items


def _as_date(name: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise CampaignError(f"audience {name}: {value!r} is not a date; use YYYY-MM-DD") from None


def _as_int(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CampaignError(f"audience {name}: {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise CampaignError(f"audience {name}: {number} is outside {low}..{high}")
    return number


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "是"):
        return True
    if text in ("false", "no", "0", "否"):
        return False
    raise CampaignError(f"audience {name}: write true or false")


def parse_audience(data: Mapping[str, Any] | None) -> Audience:
    """Check an audience given as JSON/TOML; unknown keys and bad values are refused by name."""
    data = dict(data or {})
    unknown = sorted(set(data) - set(AUDIENCE_FIELDS))
    if unknown:
        raise CampaignError(f"audience: unknown filter(s) {', '.join(unknown)}; known: "
                            f"{', '.join(AUDIENCE_FIELDS)}")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if raw is None or raw == "" or raw == []:
            continue
        if name in ("models", "tags"):
            values[name] = _as_list(name, raw)
        elif name == "languages":
            langs = _as_list(name, raw)
            bad = [x for x in langs if x not in LANGUAGES]
            if bad:
                raise CampaignError(f"audience languages: {bad} not served; use {LANGUAGES}")
            values[name] = langs
        elif name in ("delivered_from", "delivered_to", "last_visit_before", "last_visit_after"):
            values[name] = _as_date(name, raw)
        elif name == "min_visits":
            values[name] = _as_int(name, raw, 1, 1000)
        elif name == "no_visit_months":
            values[name] = _as_int(name, raw, 1, 240)
        elif name == "insurance_within_days":
            values[name] = _as_int(name, raw, 0, 3660)
        elif name in ("score_min", "score_max"):
            values[name] = _as_int(name, raw, 1, 10)
        elif name == "open_ticket":
            values[name] = _as_bool(name, raw)
    audience = Audience(**values)
    if audience.score_min and audience.score_max and audience.score_min > audience.score_max:
        raise CampaignError("audience: score_min is above score_max")
    if audience.delivered_from and audience.delivered_to and \
            audience.delivered_from > audience.delivered_to:
        raise CampaignError("audience: delivered_from is after delivered_to")
    return audience


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return at_local(day, time(0, 0), tz)


def _visits_of_customers(**filters: Any) -> Subquery:
    return Subquery(Visit.filter(**filters).values("vehicle__customer_id"))


def audience_query(audience: Audience, *, now: datetime, tz: ZoneInfo) -> QuerySet[Customer]:
    """The owners matching every filter, as one SQL query (subqueries, no Python loops)."""
    q = Customer.all()
    if audience.models:
        q = q.filter(id__in=Subquery(
            Vehicle.filter(model__in=list(audience.models)).values("customer_id")))
    if audience.delivered_from or audience.delivered_to:
        vf: dict[str, Any] = {}
        if audience.delivered_from:
            vf["delivered_at__gte"] = _local_midnight(audience.delivered_from, tz)
        if audience.delivered_to:
            vf["delivered_at__lte"] = end_of_local_day(audience.delivered_to, tz)
        q = q.filter(id__in=Subquery(Vehicle.filter(**vf).values("customer_id")))
    if audience.last_visit_after:
        q = q.filter(id__in=_visits_of_customers(
            left_at__gte=_local_midnight(audience.last_visit_after, tz)))
    if audience.last_visit_before:
        since = _local_midnight(audience.last_visit_before, tz)
        # had a visit, and none since the date: the last one was before it
        q = q.filter(id__in=_visits_of_customers()).exclude(
            id__in=_visits_of_customers(left_at__gte=since))
    if audience.min_visits:
        loyal = Visit.all().annotate(n=Count("id")).group_by("vehicle__customer_id").filter(
            n__gte=audience.min_visits).values("vehicle__customer_id")
        q = q.filter(id__in=Subquery(loyal))
    if audience.no_visit_months:
        cutoff_day = add_months(local_date(now, tz), -audience.no_visit_months)
        cutoff = _local_midnight(cutoff_day, tz)
        # lost: a car delivered before the cutoff, and no visit since it
        q = q.filter(id__in=Subquery(
            Vehicle.filter(delivered_at__lt=cutoff).values("customer_id"))).exclude(
            id__in=_visits_of_customers(left_at__gte=cutoff))
    if audience.insurance_within_days is not None:
        today = local_date(now, tz)
        q = q.filter(id__in=Subquery(Vehicle.filter(
            insurance_expiry__gte=today,
            insurance_expiry__lte=today + timedelta(days=audience.insurance_within_days),
        ).values("customer_id")))
    if audience.languages:
        q = q.filter(language__in=list(audience.languages))
    if audience.score_min is not None or audience.score_max is not None:
        latest = Score.filter(superseded_at__isnull=True).annotate(
            m=Max("id")).group_by("customer_id").values("m")
        sf: dict[str, Any] = {"id__in": Subquery(latest)}
        if audience.score_min is not None:
            sf["score__gte"] = audience.score_min
        if audience.score_max is not None:
            sf["score__lte"] = audience.score_max
        q = q.filter(id__in=Subquery(Score.filter(**sf).values("customer_id")))
    if audience.open_ticket is not None:
        with_open = Subquery(Ticket.filter(state__in=_OPEN_TICKET).values("customer_id"))
        q = q.filter(id__in=with_open) if audience.open_ticket else q.exclude(id__in=with_open)
    if audience.tags:
        q = q.filter(id__in=Subquery(
            CustomerTag.filter(tag__in=list(audience.tags)).values("customer_id")))
    return q


def _recent_marketing(due: datetime, cap_days: int, campaign_id: int | None) -> Subquery:
    """Owners who already have ``cap`` marketing messages around ``due`` (sent in the 7 days
    before it, or queued within 7 days of it)."""
    window = timedelta(days=cap_days)
    rows = Touchpoint.filter(
        Q(status=TouchpointStatus.SENT, sent_at__gt=due - window)
        | Q(status__in=list(_LIVE), due_at__gt=due - window, due_at__lt=due + window),
        priority__gte=MARKETING_PRIORITY_FROM,
    )
    # NOTE: Tortoise turns exclude(a=.., b=..) into NOT a AND NOT b; the key alone is enough.
    if campaign_id is not None:
        rows = rows.exclude(occasion_key=occasion_key(campaign_id))  # one kwarg: see NOTE
    return rows  # type: ignore[return-value]


def _exclusions(due: datetime, cap: int, campaign_id: int | None) -> list[tuple[str, Q]]:
    """Why an owner of the audience gets nothing, in the order reasons are counted."""
    recent = _recent_marketing(due, 7, campaign_id)
    capped = recent.annotate(n=Count("id")).group_by("customer_id").filter(  # type: ignore[attr-defined]
        n__gte=cap).values("customer_id")
    return [
        ("opted_out", Q(followups_refused=True)
         | Q(marketing_consent=False, marketing_consent_at__isnull=False)),
        ("no_consent", Q(marketing_consent=False)),
        ("not_linked", Q(telegram_chat_id__isnull=True)),
        ("unreachable", Q(unreachable_at__isnull=False)),
        ("capped", Q(id__in=Subquery(capped))),
    ]


@dataclass
class AudienceCount:
    targeted: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    eligible: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"targeted": self.targeted, "excluded": dict(self.excluded),
                "eligible": self.eligible}


async def classify(audience: Audience, *, now: datetime, due: datetime, rules: CampaignRules,
                   campaign_id: int | None = None) -> tuple[QuerySet[Customer], AudienceCount]:
    """Count the audience and every excluded owner by (first) reason; return the rest.

    One pass: a CASE names each owner's first reason ("" for none) and one GROUP BY counts
    them, instead of a count per reason over an ever longer chain of exclusions."""
    targeted = audience_query(audience, now=now, tz=rules.tz)
    exclusions = _exclusions(due, rules.weekly_cap, campaign_id)
    first_reason = Case(*(When(condition, then=reason) for reason, condition in exclusions),
                        default="")
    rows = await targeted.annotate(reason=first_reason, n=Count("id")).group_by(
        "reason").values("reason", "n")
    by_reason = {str(row["reason"] or ""): int(row["n"]) for row in rows}
    count = AudienceCount(
        targeted=sum(by_reason.values()),
        excluded={reason: by_reason.get(reason, 0) for reason, _ in exclusions},
        eligible=by_reason.get("", 0),
    )
    remaining = targeted
    for _, condition in exclusions:
        remaining = remaining.exclude(condition)
    return remaining, count


async def count_audience(audience: Audience, *, now: datetime,
                         rules: CampaignRules) -> AudienceCount:
    _, count = await classify(audience, now=now, due=now, rules=rules)
    return count


# --------------------------------------------------------------------------- definition


_ENV = LimitedEnvironment()


@lru_cache(maxsize=64)
def _compiled(template: str) -> Template:
    """A campaign's text compiled once, not once per owner."""
    return _ENV.from_string(template)


def render_message(template: str, **context: Any) -> str:
    """The campaign's own text, rendered like the scripts (sandboxed, escaped, strict, within
    the step budget and Telegram's 4096 characters) from :func:`campaign_context`."""
    return render(_compiled(template), context, max_chars=OUTPUT_CAP)


def campaign_context(customer: Any, vehicle: Any, dealer: Mapping[str, str],
                     campaign: Mapping[str, Any]) -> dict[str, Any]:
    """All a campaign template sees: the owner's name and language, the car's model and
    plate, the dealer, the campaign. Never a phone, a link token, a birthday or a VIN."""
    return {"customer": owner_fields(customer), "vehicle": car_fields(vehicle),
            "dealer": Fields("dealer", dealer),
            "campaign": Fields("campaign", {"name": campaign.get("name", ""),
                                            "event_date": campaign.get("event_date")})}


@dataclass(frozen=True)
class _SampleOwner:
    name: str = "张伟"
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class _SampleCar:
    model: str = "星辰 S7"
    plate: str = "粤A12345"


def sample_context(dealer: Mapping[str, str], *, with_car: bool = True) -> dict[str, Any]:
    """What a campaign template may use, with sample values to check it when it is saved."""
    return campaign_context(_SampleOwner(), _SampleCar() if with_car else None, dealer,
                            {"name": "sample", "event_date": None})


@dataclass(frozen=True)
class MessageProblem:
    """Why a campaign text cannot be saved: ``kind`` is render, budget or html."""

    kind: str
    detail: str

    def __str__(self) -> str:
        lead = {"render": "the template does not render",
                "budget": "the template is refused",
                "html": "Telegram would refuse this message's HTML"}[self.kind]
        return f"{lead}: {self.detail}"


def check_message(text: str, dealer: Mapping[str, str]) -> MessageProblem | None:
    """None when a campaign text is fit to send: it renders for a sample owner within the
    budget and 4096 characters, and Telegram takes its HTML (also for an owner without a
    car, when it renders for one). Slow for a bad template: call it off the event loop."""
    try:
        bodies = [render_message(text, **sample_context(dealer))]
    except TemplateOverBudget as exc:
        return MessageProblem("budget", str(exc))
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return MessageProblem("render", str(exc) or exc.__class__.__name__)
    try:
        bodies.append(render_message(text, **sample_context(dealer, with_car=False)))
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
        pass  # a text about the car: its audience has cars (as when it was first saved)
    for body in bodies:
        try:
            parse_html(body)
        except HtmlParseError as exc:
            return MessageProblem("html", f"{exc}. Close every tag you open (<b>…</b>) and "
                                  "write a literal < as &lt;")
    return None


def check_messages(texts: Mapping[str, str],
                   dealer: Mapping[str, str]) -> dict[str, MessageProblem]:
    """:func:`check_message` for each language's text; the problems by language."""
    found = {lang: check_message(text, dealer) for lang, text in texts.items()}
    return {lang: problem for lang, problem in found.items() if problem is not None}


def parse_buttons(raw: Any) -> list[dict[str, Any]]:
    """Up to three of interested / book / url (url needs "url"); labels optional per language."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise CampaignError("buttons: give a list, e.g. [{\"kind\": \"interested\"}]")
    if len(raw) > MAX_BUTTONS:
        raise CampaignError(f"buttons: at most {MAX_BUTTONS} (the Unsubscribe button is added)")
    out: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, (str, Mapping)):
            raise CampaignError(f"buttons: {item!r} is neither a kind nor an object, e.g. "
                                "\"interested\" or {\"kind\": \"url\", \"url\": \"https://…\"}")
        spec = {"kind": item} if isinstance(item, str) else dict(item)
        kind = str(spec.get("kind", "")).strip()
        if kind not in BUTTON_KINDS:
            raise CampaignError(f"buttons: kind {kind!r} unknown; use {', '.join(BUTTON_KINDS)}")
        button: dict[str, Any] = {"kind": kind}
        label = spec.get("label")
        if isinstance(label, str) and label.strip():
            button["label"] = {DEFAULT_LANGUAGE: label.strip()}
        elif isinstance(label, Mapping):
            button["label"] = {str(k): str(v) for k, v in label.items() if str(v).strip()}
        if kind == "url":
            url = str(spec.get("url", "")).strip()
            if not _URL.match(url):
                raise CampaignError(f"buttons: url {url!r} must start with http:// or https://")
            button["url"] = url
        out.append(button)
    kinds = [b["kind"] for b in out if b["kind"] != "url"]
    if len(kinds) != len(set(kinds)):
        raise CampaignError("buttons: interested and book can each appear once")
    return out


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
    event = _as_date("event_date", event_date) if event_date not in (None, "") else None
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
                                       status__in=list(_LIVE)).exists()
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


# --------------------------------------------------------------------------- rendering


def button_label(button: Mapping[str, Any], lang: str, scripts: Scripts) -> str:
    labels = button.get("label") or {}
    return str(labels.get(lang) or labels.get(DEFAULT_LANGUAGE)
               or scripts.label(f"campaign_button_{button['kind']}", lang))


def compose_campaign(campaign: Campaign, customer: Customer, vehicle: Vehicle | None,
                     scripts: Scripts, settings: Settings,
                     touchpoint_id: int | None = None) -> Outgoing:
    """The campaign's text in the owner's language (zh_CN fallback), the how-to-stop footer,
    its buttons and the one-tap Unsubscribe. Book starts the booking flow (issue 3's
    ``bk:s:<touchpoint>``) when there is one, else it tells the advisor."""
    lang = customer.language if customer.language in campaign.messages else DEFAULT_LANGUAGE
    dealer = dealer_context(settings)
    body = render_message(campaign.messages[lang], **campaign_context(
        customer, vehicle, dealer, {"name": campaign.name, "event_date": campaign.event_date}))
    footer = scripts.render("campaign_footer", customer.language, dealer=dealer)
    rows: list[list[tuple[str, str]]] = []
    for button in campaign.buttons:
        label = button_label(button, customer.language, scripts)
        if button["kind"] == "url":
            rows.append([(label, "url:" + str(button["url"]))])
        elif button["kind"] == "book" and touchpoint_id is not None and booking_flow():
            rows.append([(label, f"bk:s:{touchpoint_id}")])
        else:
            rows.append([(label, f"mk:{campaign.id}:{BUTTON_CODES[button['kind']]}")])
    rows.append([(scripts.label("campaign_button_unsubscribe", customer.language),
                  f"mk:{campaign.id}:{BUTTON_CODES['unsubscribe']}")])
    return Outgoing(text=f"{body}\n\n{footer}", buttons=rows)


async def trial_message(campaign: Campaign, name: str, settings: Settings,
                        scripts: Scripts) -> Outgoing:
    """The test message a staff member sends themselves (``carebot campaign test``, the
    API's test send): the campaign as an owner called ``name`` gets it in Chinese, without a
    car, marked as a test. Rendered off the loop, as a slow template may be."""
    sample = Customer(name=name, language=DEFAULT_LANGUAGE)
    out = await render_off_loop(compose_campaign, campaign, sample, None, scripts, settings)
    return Outgoing(text=scripts.label("campaign_test_prefix", DEFAULT_LANGUAGE) + out.text,
                    buttons=out.buttons)


def booking_flow() -> bool:
    """Is the booking flow (bot.handlers.booking, issue 3) part of this build?"""
    return importlib.util.find_spec("bot.handlers.booking") is not None


async def latest_vehicle(customer_id: int) -> Vehicle | None:
    return await Vehicle.filter(customer_id=customer_id).order_by("-delivered_at", "-id").first()


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
