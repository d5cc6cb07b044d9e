"""A campaign's audience: filters parsed from the marketer's form or the API, turned into one
SQL query, and counted with the owners left out by reason (opted out, no consent, not
linked, unreachable, capped)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Case, Q, Subquery, When
from tortoise.functions import Count, Max
from tortoise.queryset import QuerySet

from bot.campaigns.policy import LIVE, OPEN_TICKET, CampaignError, CampaignRules, occasion_key
from bot.delivery.dispatcher import MARKETING_PRIORITY_FROM
from bot.journeys.timing import add_months, at_local, end_of_local_day, local_date
from bot.texts import LANGUAGES
from db.models import (
    Customer,
    CustomerTag,
    Score,
    Ticket,
    Touchpoint,
    TouchpointStatus,
    Vehicle,
    Visit,
)

log = logging.getLogger(__name__)

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


def as_date(name: str, value: Any) -> date:
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
            values[name] = as_date(name, raw)
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
        with_open = Subquery(Ticket.filter(state__in=OPEN_TICKET).values("customer_id"))
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
        | Q(status__in=list(LIVE), due_at__gt=due - window, due_at__lt=due + window),
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
