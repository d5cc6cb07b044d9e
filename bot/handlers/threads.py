"""The staff side of conversations: one topic per conversation in the staff group.

Everything here sends what :mod:`bot.threads` recorded as owed, so it can run again after a
failure or a crash and do only what is left: a conversation's topic and card (created once,
edited when the conversation changed, closed when it is done), the owner's messages (texts
batched when the group's minute is busy, media copied as media), staff answers to the owner
(retried like a ticket's, in order, shown to staff when they cannot be delivered) and what
was done on the console (answers and notes, mirrored in the topic). Only the instance doing
the staff side sends to the group (:meth:`StaffSide.holder`): one topic per conversation and
one relay per message whatever the number of instances.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.constants import ParseMode
from tortoise.expressions import F, Q

from bot import owners
from bot.delivery.limits import Lane
from bot.handlers import answers
from bot.keyboards import keyboard
from db.models import (
    Customer,
    Direction,
    Staff,
    Thread,
    ThreadMessage,
    ThreadState,
    Vehicle,
)

if TYPE_CHECKING:
    from bot.handlers.ticket_side import StaffSide

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "th"
TEXT_CHUNK = 3800
RESERVE = 5  # group sends kept back for ticket cards and escalations
COMFORT = 10  # above this many free group sends an owner's message is relayed at once


def owed_answers() -> Q:
    return Q(direction="out", relayed_at__isnull=True, failed_at__isnull=True)


class ThreadSide:
    """Conversations in the staff group, on top of the tickets' :class:`StaffSide` (one
    group, one budget, one holder)."""

    def __init__(self, staff_side: StaffSide) -> None:
        self.side = staff_side
        self.svc = staff_side.svc

    @property
    def chat_id(self) -> int | None:
        return self.side.chat_id

    def label(self, key: str, **fmt: Any) -> str:
        return self.side.label(key, **fmt)

    # ------------------------------------------------------------ the whole job

    async def after_change(self, thread_id: int, *, immediate: bool = True) -> None:
        """Something was recorded on this conversation: do what it owes now, on the instance
        doing the staff side (elsewhere its job does it within seconds)."""
        if not await self.side.holder():
            return
        await self.deliver(thread_id=thread_id)
        await self.sync(thread_id=thread_id)
        await self.relay(thread_id=thread_id, immediate=immediate)
        await self.mirror(thread_id=thread_id)

    async def tick(self) -> None:
        """The staff side's job: whatever any conversation still owes."""
        await self.deliver()
        await self.sync()
        await self.relay()
        await self.mirror()
        await self.watch_deadlines()

    # ------------------------------------------------------------ first-answer deadline

    async def watch_deadlines(self, limit: int = 50) -> int:
        """Before a conversation's first answer is due its person is reminded in its topic;
        at the due, the supervisors are told. Each once (marked only when it was posted)."""
        if self.chat_id is None:
            return 0
        now = self.svc.clock.now()
        ahead = timedelta(minutes=self.svc.settings.conversation_remind_minutes)
        waiting = Thread.filter(state=ThreadState.OPEN, first_answered_at__isnull=True,
                                card_message_id__isnull=False, breached_at__isnull=True)
        told = 0
        for thread in await waiting.filter(first_answer_due__lte=now).order_by("id") \
                .limit(limit):
            if await self.post(thread, await self._alert(thread, "th_breach"), as_html=True):
                await Thread.filter(id=thread.id).update(breached_at=now)
                told += 1
        for thread in await waiting.filter(reminded_at__isnull=True,
                                           first_answer_due__lte=now + ahead) \
                .order_by("id").limit(limit):
            if await self.post(thread, await self._alert(thread, "th_reminder"), as_html=True):
                await Thread.filter(id=thread.id).update(reminded_at=now)
                told += 1
        return told

    async def _alert(self, thread: Thread, key: str) -> str:
        """A reminder (to the person or their queue) or a breach (to the supervisors), in
        HTML with mentions by Telegram id; every inserted text escaped."""
        customer = await Customer.get(id=thread.customer_id)
        assignee = await Staff.get_or_none(id=thread.assignee_id) if thread.assignee_id \
            else None
        if assignee is not None and assignee.telegram_id:
            person = f'<a href="tg://user?id={assignee.telegram_id}">' \
                     f"{html.escape(assignee.name)}</a>"
        elif assignee is not None:
            person = html.escape(assignee.name)
        else:
            person = await self.side.mentions(thread.queue)
        due = thread.first_answer_due.astimezone(self.svc.settings.tz).strftime("%H:%M") \
            if thread.first_answer_due else "-"
        return self.label(key, mention=person, name=html.escape(customer.name), due=due,
                          assignee=person if assignee else html.escape(
                              self.label("th_unassigned", queue=thread.queue)),
                          mentions=await self.side.mentions("supervisor"))

    # ------------------------------------------------------------ topic and card

    def topic_name(self, thread: Thread, customer: Customer, vehicle: Vehicle | None) -> str:
        car = (vehicle.plate or vehicle.model) if vehicle else "-"
        return f"{self.label(f'th_kind_{thread.kind}')} · {customer.name} · {car}"[:128]

    def buttons(self, thread: Thread) -> InlineKeyboardMarkup | None:
        if thread.state != ThreadState.OPEN:
            return None
        return keyboard([[(self.label(f"th_{action}_button"),
                           f"{CALLBACK_PREFIX}:{action}:{thread.id}")
                          for action in ("take", "done", "ticket")]])

    async def card_text(self, thread: Thread) -> str:
        customer = await Customer.get(id=thread.customer_id)
        vehicle = await Vehicle.get_or_none(id=thread.vehicle_id) if thread.vehicle_id else None
        assignee = await Staff.get_or_none(id=thread.assignee_id) if thread.assignee_id \
            else None
        tz = self.svc.settings.tz
        due = thread.first_answer_due.astimezone(tz).strftime("%m-%d %H:%M") \
            if thread.first_answer_due and thread.first_answered_at is None else "-"
        return self.label(
            "th_card", kind=self.label(f"th_kind_{thread.kind}"), name=customer.name,
            phone=customer.phone, car=" ".join(p for p in (
                vehicle.model if vehicle else "", vehicle.plate if vehicle else "") if p) or "-",
            advisor=customer.advisor or "-",
            assignee=assignee.name if assignee else self.label(
                "th_unassigned", queue=self.label(f"level_{thread.queue}")
                if thread.queue in ("agent", "advisor", "supervisor", "manager")
                else thread.queue),
            due=due, state=self.label(f"th_state_{thread.state}"))

    async def sync(self, *, thread_id: int | None = None, limit: int = 20) -> int:
        """Topics and cards that do not show their conversation as it is yet."""
        if self.chat_id is None:
            return 0
        query = Thread.filter(synced_version__lt=F("version"))
        if thread_id is not None:
            query = query.filter(id=thread_id)
        done = 0
        for thread in await query.order_by("id").limit(limit):
            done += await self._sync_one(thread)
        return done

    async def _sync_one(self, thread: Thread) -> bool:
        chat_id = self.chat_id
        assert chat_id is not None
        seen = thread.version
        if thread.card_message_id is None:
            if not await self._publish(thread):
                return False
        else:
            await self.side.sender.edit_text(
                chat_id, thread.card_message_id, await self.card_text(thread), lane=Lane.STAFF,
                reply_markup=self.buttons(thread))
        closed = thread.state != ThreadState.OPEN
        if thread.topic_thread_id and closed != thread.topic_closed:
            change = self.side.sender.close_topic if closed \
                else self.side.sender.reopen_topic
            await change(chat_id, thread.topic_thread_id)
            thread.topic_closed = closed
        # synced up to the change it showed: a change made meanwhile is still owed
        await Thread.filter(id=thread.id).update(topic_closed=thread.topic_closed,
                                                 synced_version=seen)
        return True

    async def _publish(self, thread: Thread) -> bool:
        """The conversation's topic (in a forum group) and its card, once."""
        chat_id = self.chat_id
        assert chat_id is not None
        if thread.topic_thread_id is None and await self.side.is_forum():
            customer = await Customer.get(id=thread.customer_id)
            vehicle = await Vehicle.get_or_none(id=thread.vehicle_id) if thread.vehicle_id \
                else None
            topic = await self.side.sender.open_topic(
                chat_id, self.topic_name(thread, customer, vehicle))
            if topic is None:
                return False
            thread.topic_thread_id = topic.message_thread_id
            await Thread.filter(id=thread.id).update(topic_thread_id=thread.topic_thread_id)
        msg = await self.side.send(None, await self.card_text(thread),
                                   markup=self.buttons(thread),
                                   thread_id=thread.topic_thread_id)
        if msg is None:
            return False
        thread.card_message_id = msg.message_id
        await Thread.filter(id=thread.id).update(card_message_id=msg.message_id)
        return True

    def where(self, thread: Thread) -> dict[str, Any]:
        """Where a post about this conversation goes: its topic, or a reply to its card."""
        if thread.topic_thread_id:
            return {"message_thread_id": thread.topic_thread_id}
        if thread.card_message_id:
            return {"reply_parameters": ReplyParameters(thread.card_message_id,
                                                        allow_sending_without_reply=True)}
        return {}

    async def post(self, thread: Thread, text: str, *, as_html: bool = False) -> bool:
        if self.chat_id is None:
            return False
        sent = await self.side.sender.text(
            self.chat_id, text if as_html else text[:4096], lane=Lane.STAFF,
            parse_mode=ParseMode.HTML if as_html else None, **self.where(thread))
        if sent is not None:
            self.side._sent.append(self.svc.clock.now())
        return sent is not None

    # ------------------------------------------------------------ owner -> staff

    async def relay(self, *, thread_id: int | None = None, immediate: bool = False) -> int:
        """Owners' messages into their topics, oldest first; how many were shown."""
        if self.chat_id is None:
            return 0
        query = ThreadMessage.filter(direction="in", relayed_at__isnull=True)
        if thread_id is not None:
            query = query.filter(thread_id=thread_id)
        pending = await query.order_by("id").limit(500)
        by_thread: dict[int, list[ThreadMessage]] = {}
        for m in pending:
            by_thread.setdefault(m.thread_id, []).append(m)
        relayed = 0
        for tid, messages in by_thread.items():
            thread = await Thread.get(id=tid)
            if thread.card_message_id is None and not await self._publish(thread):
                continue
            free = self.side.budget(self.svc.clock.now())
            if free <= RESERVE or (immediate and free <= COMFORT):
                break
            relayed += await self._relay_thread(thread, messages)
        return relayed

    async def _relay_thread(self, thread: Thread, messages: list[ThreadMessage]) -> int:
        customer = await Customer.get(id=thread.customer_id)
        relayed = 0
        texts: list[ThreadMessage] = []
        for m in messages:
            if m.media_kind:
                relayed += await self._relay_texts(thread, customer, texts)
                texts = []
                if not await self._relay_media(thread, customer, m):
                    return relayed
                relayed += 1
            else:
                texts.append(m)
        return relayed + await self._relay_texts(thread, customer, texts)

    async def _relay_texts(self, thread: Thread, customer: Customer,
                           messages: list[ThreadMessage]) -> int:
        """One post for as many texts as fit (the group's 20 a minute)."""
        done = 0
        while messages:
            part: list[ThreadMessage] = []
            size = 0
            for m in messages:
                if part and size + len(m.text) + 8 > TEXT_CHUNK:
                    break
                part.append(m)
                size += len(m.text) + 8
            header = self.label("th_owner_header", name=customer.name)
            tz = self.svc.settings.tz
            lines = [m.text[:TEXT_CHUNK] for m in part] if len(part) == 1 else [
                f"{m.created_at.astimezone(tz):%H:%M} {m.text[:TEXT_CHUNK]}" for m in part]
            if not await self.post(thread, "\n".join([header, *lines])):
                return done
            await ThreadMessage.filter(id__in=[m.id for m in part]) \
                .update(relayed_at=self.svc.clock.now())
            done += len(part)
            messages = messages[len(part):]
        return done

    async def _relay_media(self, thread: Thread, customer: Customer, m: ThreadMessage) -> bool:
        chat_id = self.chat_id
        if chat_id is None or customer.telegram_chat_id is None \
                or m.telegram_message_id is None:
            return False
        copied = await self.side.sender.copy(
            chat_id, customer.telegram_chat_id, m.telegram_message_id, lane=Lane.STAFF,
            **self.where(thread))
        if copied is None:
            return False
        self.side._sent.append(self.svc.clock.now())
        await ThreadMessage.filter(id=m.id).update(relayed_at=self.svc.clock.now())
        return True

    # ------------------------------------------------------------ staff -> owner

    async def deliver(self, *, thread_id: int | None = None, limit: int = 200) -> int:
        """Staff answers owed to owners, in order per conversation (retried like tickets')."""
        now = self.svc.clock.now()
        query = ThreadMessage.filter(owed_answers())
        if thread_id is not None:
            query = query.filter(thread_id=thread_id)
        held: set[int] = set()
        sent = 0
        for m in await query.order_by("id").limit(limit):
            if m.thread_id in held:
                continue
            due = Q(next_try_at__isnull=True) | Q(next_try_at__lte=now)
            if not await ThreadMessage.filter(owed_answers(), due, id=m.id).update(
                    next_try_at=now + answers.LEASE):
                held.add(m.thread_id)
                continue
            if await self._deliver_one(m, now):
                sent += 1
            else:
                held.add(m.thread_id)
        return sent

    async def _deliver_one(self, m: ThreadMessage, now: datetime) -> bool:
        thread = await Thread.get(id=m.thread_id)
        customer = await Customer.get(id=thread.customer_id)
        chat = customer.telegram_chat_id
        if chat is None or customer.unreachable_at is not None:
            return await self._give_up(thread, customer, m, answers.UNREACHABLE, m.attempts)
        staff = await Staff.get_or_none(id=m.staff_id) if m.staff_id else None
        text = answers.signed(self.svc, customer, staff, m.text)
        if m.media_kind == "photo" and m.telegram_message_id is None:  # from the console
            photo: str | InputFile = m.media or InputFile(m.upload or b"", filename="photo.jpg")
            sent = await self.side.sender.photo(chat, photo, caption=text[:1024])
            if sent is not None and sent.photo:
                m.media = sent.photo[-1].file_id  # Telegram has it now: the bytes may go
                await ThreadMessage.filter(id=m.id).update(media=m.media, upload=None)
        elif m.media_kind and m.telegram_message_id is not None and self.chat_id is not None:
            caption = text[:1024] if m.media_kind not in ("sticker", "location", "video_note") \
                else None
            extra: dict[str, Any] = {"caption": caption} if caption else {}
            sent = await self.side.sender.copy(
                chat, self.chat_id, m.telegram_message_id, **extra)
            if sent is not None and caption is None:  # no caption there: signed below it
                sent = await self.side.sender.text(chat, text)
        else:
            sent = await self.side.sender.text(chat, text[:4096])
        attempts = m.attempts + 1
        if sent is not None:
            await ThreadMessage.filter(id=m.id).update(
                relayed_at=now, attempts=attempts, next_try_at=None, last_error="")
            await owners.log_message(direction=Direction.OUT, chat_id=chat, text=text, now=now,
                                     kind="conversation", customer_id=customer.id,
                                     telegram_message_id=getattr(sent, "message_id", None))
            return True
        if await Customer.filter(id=customer.id, unreachable_at__isnull=False).exists():
            return await self._give_up(thread, customer, m, answers.UNREACHABLE, attempts)
        if attempts > len(answers.RETRY_AFTER):
            return await self._give_up(thread, customer, m, answers.REFUSED, attempts)
        await ThreadMessage.filter(id=m.id).update(
            attempts=attempts, next_try_at=now + answers.RETRY_AFTER[attempts - 1],
            last_error="not delivered yet (see the failed sends)")
        return False

    async def _give_up(self, thread: Thread, customer: Customer, m: ThreadMessage, why: str,
                       attempts: int) -> bool:
        now = self.svc.clock.now()
        if not await ThreadMessage.filter(owed_answers(), id=m.id).update(
                failed_at=now, attempts=attempts, last_error=why[:200]):
            return False
        log.error("conversation %s: answer %s not delivered: %s", thread.id, m.id, why)
        key = "tk_owner_unreachable" if why == answers.UNREACHABLE else "tk_answer_undelivered"
        await self.post(thread, self.label(key, phone=customer.phone, tries=attempts))
        return False

    # ------------------------------------------------------------ console -> topic

    async def _post_mirror(self, thread: Thread, m: ThreadMessage, text: str) -> bool:
        """A console answer or note in the topic; a photo as the photo, captioned."""
        if m.media_kind != "photo" or self.chat_id is None:
            return await self.post(thread, text)
        sent = await self.side.sender.photo(self.chat_id, m.media, lane=Lane.STAFF,
                                                 caption=text[:1024], **self.where(thread))
        if sent is not None:
            self.side._sent.append(self.svc.clock.now())
        return sent is not None

    async def mirror(self, *, thread_id: int | None = None, limit: int = 50) -> int:
        """Answers and notes written on the console, shown in the topic too."""
        if self.chat_id is None:
            return 0
        query = ThreadMessage.filter(mirrored_at__isnull=True, direction__in=("out", "note"))
        if thread_id is not None:
            query = query.filter(thread_id=thread_id)
        done = 0
        for m in await query.order_by("id").limit(limit):
            thread = await Thread.get(id=m.thread_id)
            if thread.card_message_id is None:
                continue  # its card first (sync)
            if self.side.budget(self.svc.clock.now()) <= RESERVE:
                break
            staff = await Staff.get_or_none(id=m.staff_id) if m.staff_id else None
            key = "th_mirror_answer" if m.direction == "out" else "th_mirror_note"
            text = self.label(key, staff=staff.name if staff else "-",
                              text=m.text or f"[{m.media_kind}]")
            if m.media_kind == "photo" and not m.media:
                continue  # shown once Telegram has the photo (it is being delivered)
            if await self._post_mirror(thread, m, text):
                await ThreadMessage.filter(id=m.id).update(mirrored_at=self.svc.clock.now())
                done += 1
        return done
