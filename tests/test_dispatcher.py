"""Outbox rules that need no Telegram: concurrent claims, leases, expiry, consent; and one
run against the emulator's flood limits (real pacing, a fraction of a second)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telegram import Bot

from bot.clock import FakeClock, VirtualPace
from bot.delivery.dispatcher import (
    MARKETING_PRIORITY_FROM,
    Dispatcher,
    claim_due,
    expire_stale,
    reclaim_expired_leases,
    skip_excluded,
)
from bot.delivery.limits import Limits
from bot.delivery.sender import Sender
from bot.sandbox.emulator import TelegramEmulator
from bot.texts import Scripts
from db.models import Customer, Touchpoint, TouchpointStatus
from tests.conftest import make_settings

NOW = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def _owner(i: int, **fields: Any) -> Customer:
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


async def test_sending_keeps_the_emulators_flood_limits(db: str, clock: FakeClock,
                                                         tmp_path: Path) -> None:
    """The emulator enforces 4 messages a second and 0.2 s per chat (no burst); one owner is
    owed three messages, four others one each, all in one batch. Nothing is refused with a
    429 (on virtual pacing time shared by both sides: no real waiting)."""
    (tmp_path / "zh_CN").mkdir()
    (tmp_path / "zh_CN" / "k.html").write_text("{{ customer.name }}您好", encoding="utf-8")
    pace = VirtualPace()
    emu = TelegramEmulator(global_rate=4, per_chat_interval=0.2, per_chat_burst=1, pace=pace)
    await emu.start()
    try:
        owners = [await _owner(i) for i in range(5)]
        for owner in owners:
            emu.user(owner.telegram_chat_id)  # type: ignore[arg-type]
        await Touchpoint.bulk_create(
            [Touchpoint(customer_id=o.id, kind="k", occasion_key="a", due_at=clock.now())
             for o in owners]
            + [Touchpoint(customer_id=owners[0].id, kind="k", occasion_key=key,
                          due_at=clock.now()) for key in ("b", "c")])
        settings = make_settings(emu, database_url=db, send_rate=4.0, per_chat_interval=0.2,
                                 quiet_hours="off")
        async with Bot(emu.token, base_url=f"{emu.api_url}/bot") as bot:
            limits = Limits(4.0, per_chat_interval=0.2, per_chat_burst=1, pace=pace)
            dispatcher = Dispatcher(Sender(bot, limits), settings, clock, Scripts(tmp_path))
            report = await dispatcher.dispatch_due()
    finally:
        await emu.stop()
    assert (report.sent, report.retried, emu.stats["429"]) == (7, 0, 0)
    assert emu.max_sends_per_second() <= 4
    assert len(emu.send_times[owners[0].telegram_chat_id]) == 3  # type: ignore[index]
    assert (emu.min_send_gap(owners[0].telegram_chat_id) or 0.0) >= 0.2
