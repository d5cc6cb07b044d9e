"""Notices owed to staff because something was recorded: rows, sent once, retried.

A booking, a low score handed to staff, a campaign button pressed: each is told to a person
(the owner's advisor in their own chat, else the staff group). The notice is a row with a
key naming its cause (unique: recording the cause again, or handling its update twice after
a crash, owes nothing more), sent by the sender at once on the instance that does the staff
side (so the group's 20 a minute hold across instances) and otherwise by that instance's
job within seconds. A notice no chat would take is tried again after 1, 5, 30 and 120
minutes, then kept as failed; each refusal is already a failed send staff see.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tortoise.transactions import in_transaction

from bot import locks, owners
from bot.delivery.limits import Lane
from bot.delivery.sender import Sender
from db.models import Customer, Direction, Notice, NoticeStatus

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

RETRY_AFTER = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
               timedelta(hours=2))
LEASE = timedelta(minutes=2)


async def owe(key: str, chats: list[int], text: str, *, now: datetime,
              lane: Lane = Lane.STAFF, parse_mode: str = "", customer_id: int | None = None,
              log_kind: str = "", document: tuple[str, str] | None = None) -> Notice | None:
    """Record a notice (nothing if one with this key exists); the row, when it is new.
    ``customer_id``: a notice to an owner, kept in their message log (as ``log_kind``).
    ``document``: (file name, text content) sent as a file with ``text`` as its caption."""
    if not chats:
        log.warning("notice %s: nobody to tell (no advisor on Telegram, no staff chat)", key)
        return None
    row = Notice(key=key[:120], chats=chats, text=text, lane=lane.name.lower(),
                 parse_mode=parse_mode, customer_id=customer_id, log_kind=log_kind[:32],
                 document_name=document[0][:100] if document else "",
                 document=document[1] if document else "",
                 status=NoticeStatus.PENDING, next_try_at=now, created_at=now)
    await Notice.bulk_create([row], ignore_conflicts=True)
    return await Notice.get_or_none(key=key[:120], created_at=now, status=NoticeStatus.PENDING)


async def claim(notice_id: int, now: datetime) -> bool:
    """Take one notice for sending; False when another worker has it or it is done."""
    return bool(await Notice.filter(id=notice_id, status=NoticeStatus.PENDING).update(
        status=NoticeStatus.SENDING, lease_until=now + LEASE))


async def deliver(notice: Notice, sender: Sender, now: datetime) -> bool:
    """Send a claimed notice to its first chat that takes it; record the outcome."""
    lane = Lane[notice.lane.upper()] if notice.lane.upper() in Lane.__members__ else Lane.STAFF
    for chat_id in notice.chats:
        if notice.document_name:  # UTF-8 with a BOM: Excel opens the Chinese right
            sent = await sender.document(chat_id, notice.document.encode("utf-8-sig"),
                                         notice.document_name, lane=lane,
                                         caption=notice.text[:1024])
        else:
            sent = await sender.text(chat_id, notice.text, lane=lane,
                                     parse_mode=notice.parse_mode or None)
        if sent is not None:
            await Notice.filter(id=notice.id).update(
                status=NoticeStatus.SENT, sent_at=now, lease_until=None)
            if notice.customer_id is not None:
                await owners.log_message(
                    direction=Direction.OUT, chat_id=chat_id, text=notice.text, now=now,
                    kind=notice.log_kind or "notice", customer_id=notice.customer_id,
                    telegram_message_id=sent.message_id)
            return True
    attempts = notice.attempts + 1
    if notice.customer_id is not None and await Customer.filter(
            id=notice.customer_id, unreachable_at__isnull=False).exists():
        await Notice.filter(id=notice.id).update(
            status=NoticeStatus.FAILED, attempts=attempts, lease_until=None,
            last_error="the owner blocked the bot")
        return False
    if attempts > len(RETRY_AFTER):
        log.error("notice %s: no chat took it after %d tries; kept as failed", notice.key,
                  attempts)
        await Notice.filter(id=notice.id).update(
            status=NoticeStatus.FAILED, attempts=attempts, lease_until=None,
            last_error="no chat took it (see the failed sends)")
        return False
    await Notice.filter(id=notice.id).update(
        status=NoticeStatus.PENDING, attempts=attempts, lease_until=None,
        next_try_at=now + RETRY_AFTER[attempts - 1], last_error="no chat took it")
    return False


async def send_now(notice: Notice, sender: Sender, now: datetime) -> bool:
    return await claim(notice.id, now) and await deliver(notice, sender, now)


async def send_owed(sender: Sender, now: datetime, *, limit: int = 50) -> int:
    """Notices due (new, to retry, or left by a worker that died); how many were sent."""
    await Notice.filter(status=NoticeStatus.SENDING, lease_until__lt=now).update(
        status=NoticeStatus.PENDING, lease_until=None)
    async with in_transaction():
        due = await (Notice.filter(status=NoticeStatus.PENDING, next_try_at__lte=now)
                     .order_by("id").limit(limit).select_for_update(skip_locked=True))
        ids = [n.id for n in due]
        if ids:
            await Notice.filter(id__in=ids).update(status=NoticeStatus.SENDING,
                                                  lease_until=now + LEASE)
    sent = 0
    for notice in due:
        sent += await deliver(notice, sender, now)
    return sent


async def tell(services: Services, key: str, chats: list[int], text: str) -> bool:
    """Owe a notice and send it now on the instance that does the staff side (elsewhere its
    job sends it within seconds); False when nobody could be told now."""
    now = services.clock.now()
    notice = await owe(key, chats, text, now=now)
    if notice is None:
        return False
    if not await locks.locks_of(services).keep(locks.TICKET_RELAY):
        return True
    return await send_now(notice, services.sender, now)
