"""Outbox rules that need no Telegram: concurrent claims, leases, expiry, consent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from bot.campaigns.dispatcher import (
    MARKETING_PRIORITY_FROM,
    claim_due,
    expire_stale,
    reclaim_expired_leases,
    skip_excluded,
)
from bot.clock import FakeClock
from db.models import Customer, Touchpoint, TouchpointStatus

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=5)


async def _owner(i: int, **fields: object) -> Customer:
    return await Customer.create(name=f"车主{i}", phone=f"+8613900{i:06d}", link_token=f"t{i}",
                                 telegram_user_id=1000 + i, telegram_chat_id=1000 + i, **fields)


async def test_two_concurrent_claims_never_share_a_row(db: str, clock: FakeClock) -> None:
    owners = [await _owner(i) for i in range(40)]
    await Touchpoint.bulk_create([
        Touchpoint(customer_id=o.id, kind="k", occasion_key="x", due_at=NOW) for o in owners
    ])
    a, b = await asyncio.gather(
        claim_due(NOW, limit=30, lease=LEASE), claim_due(NOW, limit=30, lease=LEASE)
    )
    ids_a, ids_b = {t.id for t in a}, {t.id for t in b}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 40 or (len(ids_a | ids_b) == 30 and not (ids_a and ids_b))
    claimed = await Touchpoint.filter(status=TouchpointStatus.SENDING).count()
    assert claimed == len(ids_a | ids_b)


async def test_stale_row_left_sending_by_a_crash_expires_instead_of_sending(db: str) -> None:
    owner = await _owner(1)
    await Touchpoint.create(customer=owner, kind="k", occasion_key="x", due_at=NOW,
                            expires_at=NOW + timedelta(hours=12),
                            status=TouchpointStatus.SENDING, lease_until=NOW + LEASE)
    later = NOW + timedelta(days=2)  # the process came back two days later
    assert await reclaim_expired_leases(later) == 1
    assert await expire_stale(later) == 1
    assert await claim_due(later, limit=10, lease=LEASE) == []
    assert (await Touchpoint.get(kind="k")).status == TouchpointStatus.EXPIRED


async def test_claim_skips_rows_past_their_window(db: str) -> None:
    owner = await _owner(1)
    await Touchpoint.create(customer=owner, kind="k", occasion_key="x", due_at=NOW,
                            expires_at=NOW + timedelta(minutes=1))
    assert await claim_due(NOW + timedelta(minutes=2), limit=10, lease=LEASE) == []


async def test_marketing_needs_consent_but_service_does_not(db: str) -> None:
    consenting = await _owner(1, marketing_consent=True)
    declined = await _owner(2, marketing_consent=False)
    for owner in (consenting, declined):
        await Touchpoint.create(customer=owner, kind="promo", occasion_key="c1", due_at=NOW,
                                priority=MARKETING_PRIORITY_FROM)
        await Touchpoint.create(customer=owner, kind="service", occasion_key="s", due_at=NOW)
    assert await skip_excluded(NOW) == 1
    skipped = await Touchpoint.get(status=TouchpointStatus.SKIPPED)
    assert skipped.customer_id == declined.id and skipped.kind == "promo"
    assert skipped.status_reason == "no marketing consent"
    claimed = await claim_due(NOW, limit=10, lease=LEASE)
    assert sorted((t.customer_id, t.kind) for t in claimed) == sorted([
        (consenting.id, "service"), (declined.id, "service"), (consenting.id, "promo")])
    assert claimed[-1].kind == "promo"  # service before marketing


async def test_withdrawal_during_a_tick_is_honoured_at_claim(db: str) -> None:
    owner = await _owner(1, marketing_consent=True)
    await Touchpoint.create(customer=owner, kind="promo", occasion_key="c1", due_at=NOW,
                            priority=MARKETING_PRIORITY_FROM)
    await Touchpoint.create(customer=owner, kind="service", occasion_key="s", due_at=NOW)
    assert await skip_excluded(NOW) == 0  # the tick started while consent stood
    await Customer.filter(id=owner.id).update(marketing_consent=False, followups_refused=True)
    assert await claim_due(NOW, limit=10, lease=LEASE) == []
