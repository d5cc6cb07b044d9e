"""``campaign``: create, schedule and launch a campaign (audience count by reason + bulk
insert), beside the same audience query then one Touchpoint.create per owner."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Databases, Figure, check_ids, seed, vin
from bot.clock import SystemClock
from bot.config import Settings

CAMPAIGN_OWNERS = 100_000
CAMPAIGN_SAMPLE = 2_000  # owners the one-at-a-time baseline is timed on


async def _seed_campaign(owners: int, now: datetime) -> int:
    """``owners`` consenting, linked owners of a 星辰 S7 (2 % already at the weekly cap) and
    a tenth more who are not eligible (no consent, not linked, unreachable). Returns how
    many owners are in the audience."""
    from bot.campaigns.policy import KIND, PRIORITY
    from db.models import Customer, Touchpoint, Vehicle

    extra = max(3, owners // 10)
    total = owners + extra

    def customers() -> Iterable[list[Any]]:
        for i in range(total):
            why = -1 if i < owners else i % 3
            chat = None if why == 1 else 1_000_000_000 + i
            consent = why != 0
            yield [f"车主{i}", f"+86136{i:08d}", f"cmp{i}", chat, chat, consent,
                   now - timedelta(days=30) if consent else None, "import" if consent else "",
                   now - timedelta(days=3) if why == 2 else None, "en" if i % 7 == 0 else "zh_CN"]

    await seed(Customer, ("name", "phone", "link_token", "telegram_user_id",
                          "telegram_chat_id", "marketing_consent", "marketing_consent_at",
                          "marketing_consent_source", "unreachable_at", "language"),
               customers(), now)
    await check_ids(Customer, total)
    await seed(Vehicle, ("vin", "customer_id", "model", "delivered_at"), (
        [vin(i), i + 1, "星辰 S7", now - timedelta(days=30 + i % 900)] for i in range(total)),
        now)
    sent = now - timedelta(days=2)
    await seed(Touchpoint, ("customer_id", "kind", "occasion_key", "priority", "due_at",
                            "status", "sent_at"), (
        [i + 1, KIND, f"campaign:{900_000 + n}", PRIORITY, sent, "sent", sent]
        for i in range(0, owners, 50) for n in range(2)), now)
    return total


async def _launch(settings: Settings, now: datetime) -> tuple[Any, float, list[int]]:
    """Ours: create, schedule and launch; (the campaign, seconds, launched)."""
    from bot.campaigns.policy import campaign_rules
    from bot.campaigns.promotions import create_campaign, launch_due, schedule_campaign
    from bot.delivery.dispatcher import dealer_context

    rules = campaign_rules(settings)
    started = time.perf_counter()
    campaign = await create_campaign(
        name="双十二保养季", messages={"zh_CN": "{{ customer.name }}您好！保养八折。",
                                     "en": "Hello {{ customer.name }}: 20% off."},
        now=now, dealer=dealer_context(settings), buttons=["interested", "book"],
        audience={"models": ["星辰 S7"]})
    await schedule_campaign(campaign, send_at=now, now=now, rules=rules)
    launched = await launch_due(now=now, rules=rules)
    return campaign, time.perf_counter() - started, launched


async def _one_by_one(settings: Settings, campaign: Any, now: datetime, sample: int
                      ) -> tuple[list[int], float, float, int]:
    """The baseline: the audience query, then Touchpoint.create per owner on ``sample``;
    (audience ids, query seconds, seconds per row, rows timed)."""
    from bot.campaigns.audiences import classify, parse_audience
    from bot.campaigns.policy import KIND, PRIORITY, campaign_rules
    from bot.campaigns.promotions import due_time, expiry
    from db.models import Touchpoint

    rules = campaign_rules(settings)
    started = time.perf_counter()
    due = due_time(now, now, rules)
    eligible, _ = await classify(parse_audience(campaign.audience), now=now, due=due,
                                 rules=rules, campaign_id=None)
    ids: list[int] = await eligible.values_list("id", flat=True)  # type: ignore[assignment]
    audience_seconds = time.perf_counter() - started
    expires = expiry(due, None, rules)
    part = ids[:sample]
    started = time.perf_counter()
    for cid in part:
        await Touchpoint.create(customer_id=cid, kind=KIND, occasion_key="campaign:0",
                                priority=PRIORITY, due_at=due, expires_at=expires,
                                payload={"campaign_id": 0})
    per_row = (time.perf_counter() - started) / max(1, len(part))
    return ids, audience_seconds, per_row, len(part)


async def bench_campaign(settings: Settings, *, owners: int, sample: int) -> list[Figure]:
    """Create, schedule and launch (audience count by reason + bulk insert) a campaign to
    ``owners`` owners; baseline: the same audience query, then one Touchpoint.create per
    owner, timed on ``sample`` owners and extrapolated."""
    from db.models import Campaign, Touchpoint
    from db.setup import close_database, open_database

    now = SystemClock().now()
    with tempfile.TemporaryDirectory() as tmp:
        await open_database(await Databases(Path(tmp)).fresh("campaign"),
                            apply_migrations=False)
        try:
            audience_size = await _seed_campaign(owners, now)
            campaign, seconds, launched = await _launch(settings, now)
            campaign = await Campaign.get(id=campaign.id)
            queued = int(campaign.launch.get("queued", 0))
            stored = await Touchpoint.filter(occasion_key=f"campaign:{campaign.id}").count()
            ids, audience_seconds, per_row, timed = await _one_by_one(settings, campaign, now,
                                                                      sample)
        finally:
            await close_database()
    base = audience_seconds + per_row * len(ids)
    check = "" if launched and stored == queued == len(ids) else \
        f"; CHECK: launched {launched}, {stored:,} stored, {queued:,} queued, {len(ids):,} eligible"
    return [Figure(f"campaign: audience + launch to {queued:,} owners", seconds, "s", "≤ 10 s",
                   seconds <= 10, base,
                   f"audience of {audience_size:,} counted by exclusion reason; baseline: the "
                   f"same audience query ({audience_seconds:.1f} s), then Touchpoint.create per "
                   f"owner timed on {timed:,} and extrapolated ({per_row * 1000:.2f} "
                   f"ms/row){check}")]
