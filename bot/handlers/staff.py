"""The staff side of complaint tickets: the staff supergroup (``CAREBOT_STAFF_CHAT_ID``).

Each ticket is one forum topic (``T-0042 · 张伟 · 粤A12345 · 质量``) whose first message is
the ticket card with Claim / Escalate / Major / Resolve; in a group without topics the card
is a plain message and the ticket lives in its reply thread. Owner messages are queued in
``TicketMessage`` and relayed here within Telegram's 20 messages per minute per group
(batched when the budget runs low, never dropped); staff messages in a topic go to the
owner as plain text (nothing to inject) signed with the staff member's registered name.
``/note`` stays internal. Staff identity is the Telegram user id an admin registered.

:class:`StaffSide` is also the tickets' *effects* (``services.extensions["tickets"]``):
after every change in :mod:`bot.tickets` it updates the card, posts escalations with
mentions of the next level, and tells the owner where the complaint stands.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import locks, owners, tickets
from bot.delivery import notices
from bot.delivery.dispatcher import dealer_context
from bot.delivery.limits import Lane
from bot.delivery.sender import Sender
from bot.handlers import answers, buttons, thread_chat
from bot.services import Services, services_of
from bot.texts import DEFAULT_LANGUAGE
from bot.tickets import EventKind, Outcome
from db import models
from db.models import (
    Conversation,
    Customer,
    Direction,
    Staff,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketState,
    Vehicle,
    Visit,
)

log = logging.getLogger(__name__)

GROUP_PER_MINUTE = 20  # Telegram: about 20 messages per minute to one group
RESERVE = 5  # kept back for cards and escalations, which must never wait
COMFORT = 10  # above this many free slots owner messages go one by one, else batched
TEXT_CHUNK = 3800  # a batch message stays under Telegram's 4096 characters
RESOLUTION_STATE = "tkstaff:resolution"
IMPROVEMENT_STATE = "tkstaff:improvement"
CALLBACK_PREFIX = "tk"


def _local(when: datetime | None, svc: Services) -> str:
    return when.astimezone(svc.settings.tz).strftime("%Y-%m-%d %H:%M") if when else ""


async def _unreachable(customer_id: int) -> bool:
    return await Customer.filter(id=customer_id, unreachable_at__isnull=False).exists()


def _cut(text: str, limit: int, parse_mode: str | None) -> str:
    """Plain text may be cut to Telegram's limit; HTML never is (it could split an entity or
    a tag): its inputs are shortened before rendering instead."""
    return text if parse_mode else text[:limit]


class StaffSide:
    """Everything the bot writes in the staff chat, and the owner notices of tickets."""

    def __init__(self, services: Services) -> None:
        self.svc = services
        self.chat_id = services.settings.staff_chat_id
        self.lang = DEFAULT_LANGUAGE
        self._sent: deque[datetime] = deque()
        self._forum: bool | None = None
        self._relay_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._carrying: set[int] = set()  # event ids whose effects are being carried out

    @property
    def sender(self) -> Sender:
        return self.svc.sender

    @property
    def bot(self) -> Bot:
        """The raw bot, for what sends nothing (get_chat); everything else: :attr:`sender`."""
        return self.svc.sender.bot

    def label(self, key: str, **fmt: Any) -> str:
        return self.svc.scripts.label(key, self.lang, **fmt)

    # ------------------------------------------------------------ group budget

    def budget(self, now: datetime) -> int:
        """Free sends to the staff group in the minute ending now."""
        while self._sent and self._sent[0] <= now - timedelta(minutes=1):
            self._sent.popleft()
        return GROUP_PER_MINUTE - len(self._sent)

    def _thread_kwargs(self, ticket: Ticket | None) -> dict[str, Any]:
        if ticket is None:
            return {}
        if ticket.topic_thread_id:
            return {"message_thread_id": ticket.topic_thread_id}
        if ticket.card_message_id:
            return {"reply_parameters": ReplyParameters(ticket.card_message_id,
                                                        allow_sending_without_reply=True)}
        return {}

    async def send(self, ticket: Ticket | None, text: str, *, as_html: bool = False,
                   markup: InlineKeyboardMarkup | None = None, photo: str = "",
                   thread_id: int | None = None) -> Message | None:
        """Post in the staff chat (in the ticket's topic or thread); None if it could not be
        (the sender retried until its deadline and recorded the failure)."""
        if self.chat_id is None:
            return None
        kwargs = self._thread_kwargs(ticket)
        if thread_id is not None and not kwargs:
            kwargs["message_thread_id"] = thread_id
        parse_mode = ParseMode.HTML if as_html else None
        if photo:
            msg = await self.sender.send_photo(
                self.chat_id, photo, lane=Lane.STAFF, caption=_cut(text, 1024, parse_mode) or None,
                parse_mode=parse_mode, reply_markup=markup, **kwargs)
        else:
            msg = await self.sender.send_message(
                self.chat_id, _cut(text, 4096, parse_mode), lane=Lane.STAFF,
                parse_mode=parse_mode, reply_markup=markup, **kwargs)
        if msg is None:
            log.error("staff chat: could not post%s", f"; ticket {ticket.number}" if ticket else "")
            return None
        self._sent.append(self.svc.clock.now())
        return msg

    async def notice(self, ticket: Ticket, text: str, *, as_html: bool = False) -> bool:
        """A staff-chat notice (escalation mentions, breach alerts...): not delivered is logged
        and recorded on the ticket, never silently lost."""
        if self.chat_id is None:
            return False
        if await self.send(ticket, text, as_html=as_html) is not None:
            return True
        await self.undelivered(ticket, "staff chat", text)
        return False

    async def undelivered(self, ticket: Ticket, where: str, text: str) -> None:
        log.warning("ticket %s: notice not delivered to the %s", ticket.number, where)
        try:
            now = self.svc.clock.now()
            await TicketEvent.create(ticket_id=ticket.id, kind=EventKind.UNDELIVERED,
                                     text=f"notice not delivered ({where})",
                                     reason=text[:200], created_at=now, effects_done_at=now)
        except Exception:  # noqa: BLE001 - recording must not break the caller
            log.exception("ticket %s: could not record the undelivered notice", ticket.number)

    async def is_forum(self) -> bool:
        if self._forum is None and self.chat_id is not None:
            try:
                chat = await self.bot.get_chat(self.chat_id)
            except TelegramError as exc:
                log.error("staff chat %s unreachable: %s", self.chat_id, exc)
                return False
            self._forum = bool(chat.is_forum)
        return bool(self._forum)

    # ------------------------------------------------------------ the card

    def _cat(self, category: str, lang: str | None = None, short: bool = False) -> str:
        key = f"cat_short_{category}" if short else f"cat_{category}"
        return self.svc.scripts.label(key, lang or self.lang)

    def _level(self, level: str, lang: str | None = None) -> str:
        return self.svc.scripts.label(f"level_{level}", lang or self.lang)

    def topic_name(self, ticket: Ticket, customer: Customer, vehicle: Vehicle | None) -> str:
        car = (vehicle.plate or vehicle.model or vehicle.vin[-6:]) if vehicle else "-"
        name = f"{ticket.number} · {customer.name} · {car} · {self._cat(ticket.category, short=True)}"
        return name[:128]

    def buttons(self, ticket: Ticket) -> InlineKeyboardMarkup | None:
        if ticket.state not in tickets.ACTIVE_STATES:
            return None
        row = [
            InlineKeyboardButton(self.label(f"tk_{action}_button"),
                                 callback_data=f"{CALLBACK_PREFIX}:{action}:{ticket.id}")
            for action in ("claim", "escalate", "major", "resolve")
        ]
        return InlineKeyboardMarkup([row[:2], row[2:]])

    async def card_text(self, ticket: Ticket) -> str:
        """The card's HTML, long texts shortened (never the HTML) until it fits a message."""
        text = ""
        for limit in tickets.SHORTER_LIMITS:
            text = await self._card_text(ticket, limit)
            if len(text) <= tickets.MESSAGE_LIMIT:
                break
        return text

    async def _card_text(self, ticket: Ticket, limit: int) -> str:
        svc = self.svc
        short = tickets.shorten
        customer = await Customer.get(id=ticket.customer_id)
        vehicles = await Vehicle.filter(customer_id=customer.id).order_by("-delivered_at", "id")
        vehicle_ids = [v.id for v in vehicles]
        visits = await Visit.filter(vehicle_id__in=vehicle_ids).order_by("-left_at").limit(3) \
            if vehicle_ids else []
        plates = {v.id: v.plate or v.model for v in vehicles}
        earlier = await Ticket.filter(customer_id=customer.id).exclude(id=ticket.id) \
            .order_by("-created_at").limit(5)
        handler = await Staff.get_or_none(id=ticket.handler_id) if ticket.handler_id else None
        scores: list[str] = []
        score_model = getattr(models, "Score", None)  # the satisfaction feature's scores
        if score_model is not None:
            try:
                rows = await score_model.filter(customer_id=customer.id) \
                    .order_by("-created_at").limit(3)
                for s in rows:
                    cat = getattr(s, "category", None)
                    scores.append(f"{s.score}/10 {_local(s.created_at, svc)[:10]}"
                                  + (f" {self._cat(cat)}" if cat in tickets.CATEGORIES else ""))
            except Exception:  # noqa: BLE001 - the card must not depend on another feature
                log.exception("card: recent scores unavailable")
        return svc.scripts.render(
            "staff_ticket_card", self.lang,
            t={
                "number": ticket.number, "category": self._cat(ticket.category),
                "level": self._level(ticket.level), "major": ticket.major,
                "state": self.label(f"state_{ticket.state}"),
                "channel": self.label(f"channel_{ticket.channel}"),
                "created": _local(ticket.created_at, svc),
                "description": short(ticket.description, limit),
                "first_due": _local(ticket.first_answer_due, svc),
                "first_answered": _local(ticket.first_answered_at, svc),
                "handler_due": _local(ticket.handler_answer_due, svc),
                "due": _local(ticket.due_at, svc),
                "handler": f"{handler.name}（{self._level(handler.role) if handler.role in tickets.LEVELS else handler.role}）" if handler else "",
                "resolution": short(ticket.resolution, limit),
                "improvement": short(ticket.improvement, limit),
                "score": ticket.handling_score,
            },
            c={"name": customer.name, "phone": customer.phone,
               "linked": customer.telegram_chat_id is not None},
            vehicles=[{"model": v.model, "plate": v.plate, "vin": v.vin,
                       "delivered": _local(v.delivered_at, svc)[:10]} for v in vehicles],
            visits=[f"{_local(v.left_at, svc)[:10]} {v.kind} {plates.get(v.vehicle_id, '')} "
                    f"{v.advisor}".strip() for v in visits],
            scores=scores,
            earlier=[f"{e.number} {self._cat(e.category)} {self.label(f'state_{e.state}')}"
                     for e in earlier],
        )

    async def publish(self, ticket: Ticket) -> Ticket:
        """Create the ticket's topic (forum) and post its card, once."""
        if self.chat_id is None:
            return ticket
        async with self._publish_lock:
            ticket = await Ticket.get(id=ticket.id)
            if ticket.card_message_id is not None:
                return ticket
            if ticket.topic_thread_id is None and await self.is_forum():
                customer = await Customer.get(id=ticket.customer_id)
                vehicle = await Vehicle.get_or_none(id=ticket.vehicle_id) \
                    if ticket.vehicle_id else None
                topic = await self.sender.create_forum_topic(
                    self.chat_id, self.topic_name(ticket, customer, vehicle))
                if topic is None:
                    log.error("ticket %s: could not create its topic", ticket.number)
                    return ticket
                ticket.topic_thread_id = topic.message_thread_id
                await ticket.save(update_fields=["topic_thread_id", "updated_at"])
            msg = await self.send(ticket, await self.card_text(ticket), as_html=True,
                                  markup=self.buttons(ticket))
            if msg is not None:
                ticket.card_message_id = msg.message_id
                await ticket.save(update_fields=["card_message_id", "updated_at"])
            return ticket

    async def refresh_card(self, ticket: Ticket) -> None:
        if self.chat_id is None or ticket.card_message_id is None:
            return
        # not modified: nothing to do; any other failure the sender logs and records
        await self.sender.edit_message_text(
            self.chat_id, ticket.card_message_id, await self.card_text(ticket), lane=Lane.STAFF,
            parse_mode=ParseMode.HTML, reply_markup=self.buttons(ticket))

    async def publish_pending(self, limit: int = 20) -> int:
        """Tickets recorded without effects (a CLI, a failed send) get their topic now."""
        if self.chat_id is None:
            return 0
        rows = await Ticket.filter(card_message_id__isnull=True,
                                   state__in=tickets.ACTIVE_STATES).order_by("id").limit(limit)
        done = 0
        for ticket in rows:
            if (await self.publish(ticket)).card_message_id is not None:
                done += 1
        return done

    # ------------------------------------------------------------ mentions

    async def mentions(self, level: str) -> str:
        """HTML mentions of the active staff of a level, by Telegram id (not display name)."""
        staff = await Staff.filter(role=level, active=True, telegram_id__isnull=False) \
            .order_by("id")
        if not staff:
            return html.escape(self.label("tk_nobody", level=self._level(level)))
        return "、".join(
            f'<a href="tg://user?id={s.telegram_id}">{html.escape(s.name)}</a>' for s in staff)

    # ------------------------------------------------------------ effects

    async def holder(self) -> bool:
        """Whether this instance does the staff side: one instance at a time (the
        ``ticket_relay`` lock, kept for as long as it lives; always, on SQLite), so the
        group's 20 a minute hold across instances and a ticket gets one topic, a message
        one relay."""
        return await locks.locks_of(self.svc).keep(locks.TICKET_RELAY)

    async def on_event(self, ticket: Ticket, event: TicketEvent) -> None:
        """A change was recorded: carry out its effects now, on the instance that does the
        staff side; elsewhere they stay owed and that instance's job does them in seconds."""
        if await self.holder():
            await self.carry_out(event, ticket)

    async def carry_out(self, event: TicketEvent, ticket: Ticket | None = None) -> bool:
        """One event's effects, then marked done; a failure leaves them owed (tried again)."""
        if event.id in self._carrying:
            return False
        self._carrying.add(event.id)
        try:
            if not await TicketEvent.filter(id=event.id, effects_done_at__isnull=True).exists():
                return False  # done meanwhile (a sweep's older copy of the list)
            ticket = ticket or await Ticket.get(id=event.ticket_id)
            await self.react(ticket, event)
            await TicketEvent.filter(id=event.id, effects_done_at__isnull=True).update(
                effects_done_at=self.svc.clock.now())
            return True
        except Exception:  # noqa: BLE001 - still owed: the next sweep tries again
            log.exception("ticket event %s: effects failed; tried again later", event.id)
            return False
        finally:
            self._carrying.discard(event.id)

    async def carry_out_owed(self, limit: int = 100) -> int:
        """Effects still owed (recorded on another instance, a CLI, or before a crash), oldest
        first; how many were carried out."""
        owed = await TicketEvent.filter(effects_done_at__isnull=True).order_by("id").limit(limit)
        done = 0
        for event in owed:
            done += await self.carry_out(event)
        return done

    async def react(self, ticket: Ticket, event: TicketEvent) -> None:
        """React to a ticket change: staff topic and the owner's notice."""
        kind = event.kind
        if kind == EventKind.OPENED:
            ticket = await self.publish(ticket)
            await self.notify_owner(ticket, "ticket_opened")
            await self.flush()
            return
        if kind == EventKind.NOTE or kind == EventKind.RATED:
            return
        if self.chat_id is not None and ticket.card_message_id is None:
            ticket = await self.publish(ticket)
        else:
            await self.refresh_card(ticket)
        if kind == EventKind.ANSWERED:
            await answers.deliver_owed(self, ticket_id=ticket.id)
            await self.mirror(ticket_id=ticket.id)
        esc = html.escape
        if kind == EventKind.CLAIMED:
            handler = await Staff.get_or_none(id=ticket.handler_id) if ticket.handler_id else None
            name = handler.name if handler else ""
            await self.notice(ticket, self.label("tk_claimed_notice", number=ticket.number,
                                               name=name, due=_local(ticket.due_at, self.svc)))
            await self.notify_owner(ticket, "ticket_claimed", staff=name)
        elif kind == EventKind.ESCALATED:
            before, _, _ = event.text.partition(" -> ")
            text = self.label(
                "tk_escalation", number=esc(ticket.number),
                from_level=esc(self._level(before) if before in tickets.LEVELS else before),
                to_level=esc(self._level(ticket.level)), reason=esc(event.reason),
                mentions=await self.mentions(ticket.level),
                due=esc(_local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
            await self.notify_owner(ticket, "ticket_escalated")
        elif kind == EventKind.BREACH:
            text = self.label("tk_breach", number=esc(ticket.number), reason=esc(event.reason),
                              mentions=await self.mentions(ticket.level),
                              due=esc(_local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
        elif kind == EventKind.RESOLVED:
            handler = await Staff.get_or_none(id=event.actor_id) if event.actor_id else None
            await self.notice(ticket, self.label(
                "tk_resolved_notice", number=ticket.number, name=handler.name if handler else "",
                days=f"{self.svc.settings.ticket_followup_days:g}"))
            await self.notify_owner(ticket, "ticket_resolved")
        elif kind == EventKind.REOPENED:
            await self._topic_closed(ticket, closed=False)
            text = self.label("tk_reopened", number=esc(ticket.number),
                              score=esc(str(ticket.handling_score)),
                              to_level=esc(self._level(ticket.level)),
                              mentions=await self.mentions(ticket.level),
                              due=esc(_local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
            await self.notify_owner(ticket, "ticket_reopened")
        elif kind == EventKind.CLOSED:
            await self.notice(ticket, self.label("tk_closed_notice", number=ticket.number,
                                               score=ticket.handling_score))
            await self.notify_owner(ticket, "ticket_closed")
            await self._topic_closed(ticket, closed=True)

    async def _topic_closed(self, ticket: Ticket, *, closed: bool) -> None:
        if self.chat_id is None or not ticket.topic_thread_id:
            return
        if closed:
            await self.sender.close_forum_topic(self.chat_id, ticket.topic_thread_id)
        else:
            await self.sender.reopen_forum_topic(self.chat_id, ticket.topic_thread_id)

    # ------------------------------------------------------------ the owner

    async def notify_owner(self, ticket: Ticket, key: str, *, staff: str = "") -> bool:
        """Tell the owner where their complaint stands (an HTML script by key)."""
        customer = await Customer.get(id=ticket.customer_id)
        if customer.telegram_chat_id is None or customer.unreachable_at is not None:
            return False
        vehicle = await Vehicle.get_or_none(id=ticket.vehicle_id) if ticket.vehicle_id else None
        lang = customer.language
        business = tickets.sla_rules(self.svc.settings).calendar is not None
        text = ""
        for limit in tickets.SHORTER_LIMITS:  # shorten the inputs, never the rendered HTML
            text = self.svc.scripts.render(
                key, lang, customer=customer, vehicle=vehicle,
                dealer=dealer_context(self.svc.settings), staff=staff,
                ticket={"number": ticket.number, "category": self._cat(ticket.category, lang),
                        "level": self._level(ticket.level, lang),
                        "resolution": tickets.shorten(ticket.resolution, limit),
                        "due": _local(ticket.due_at, self.svc),
                        "first_hours": f"{self.svc.settings.ticket_first_answer_hours:g}",
                        "business": business},
            )
            if len(text) <= tickets.MESSAGE_LIMIT:
                break
        now = self.svc.clock.now()
        sent = await self.to_owner(customer, text, parse_mode=ParseMode.HTML)
        if sent is None:  # blocked (the sender marked them unreachable), or a failed send
            log.error("owner %s: ticket %s notice %s not sent", customer.id, ticket.number, key)
            if not await _unreachable(customer.id):
                await self.undelivered(ticket, "owner", text)
            return False
        await owners.log_message(direction=Direction.OUT, chat_id=customer.telegram_chat_id,
                                 text=text, now=now, kind=key, customer_id=customer.id,
                                 telegram_message_id=sent)
        return True

    async def to_owner(self, customer: Customer, text: str, *, parse_mode: str | None = None,
                       photo: str = "") -> int | None:
        """Send to the owner (the reply lane: they are waiting); Telegram's message id, or
        None when the sender could not (it retried, then recorded why)."""
        chat_id = customer.telegram_chat_id
        if chat_id is None or customer.unreachable_at is not None:
            return None
        if photo:
            msg = await self.sender.send_photo(chat_id, photo,
                                               caption=_cut(text, 1024, parse_mode) or None,
                                               parse_mode=parse_mode)
        else:
            msg = await self.sender.send_message(chat_id, _cut(text, 4096, parse_mode),
                                                 parse_mode=parse_mode)
        return msg.message_id if msg is not None else None

    async def mirror(self, *, ticket_id: int | None = None, limit: int = 50) -> int:
        """Answers and notes written on the console, shown in the ticket's topic too."""
        if self.chat_id is None:
            return 0
        query = TicketMessage.filter(mirrored_at__isnull=True, direction__in=("out", "note"))
        if ticket_id is not None:
            query = query.filter(ticket_id=ticket_id)
        done = 0
        for m in await query.order_by("id").limit(limit):
            ticket = await Ticket.get(id=m.ticket_id)
            if ticket.card_message_id is None or self.budget(self.svc.clock.now()) <= RESERVE:
                continue
            staff = await Staff.get_or_none(id=m.staff_id) if m.staff_id else None
            key = "th_mirror_answer" if m.direction == "out" else "th_mirror_note"
            text = self.label(key, staff=staff.name if staff else "-", text=m.text or "[photo]")
            if await self.send(ticket, text) is not None:
                await TicketMessage.filter(id=m.id).update(mirrored_at=self.svc.clock.now())
                done += 1
        return done

    # ------------------------------------------------------------ relay owner -> staff

    async def flush(self, *, immediate: bool = False) -> int:
        """Relay queued owner messages into their topics; returns how many were relayed.

        ``immediate`` (right after the owner wrote) sends only while the group's minute has
        room to spare; the relay job sends the rest batched, one message per ticket, keeping
        a reserve for cards and escalations. Nothing is marked relayed unless Telegram took it.
        Only on the instance that does the staff side (one relay per message).
        """
        if self.chat_id is None or not await self.holder():
            return 0
        async with self._relay_lock:
            pending = await TicketMessage.filter(direction="in", relayed_at__isnull=True) \
                .order_by("id").limit(2000)
            if not pending:
                return 0
            groups: dict[int, list[TicketMessage]] = {}
            for m in pending:
                groups.setdefault(m.ticket_id, []).append(m)
            relayed = 0
            for ticket_id, msgs in groups.items():
                ticket = await Ticket.get(id=ticket_id)
                if ticket.card_message_id is None:
                    ticket = await self.publish(ticket)
                    if ticket.card_message_id is None:
                        continue
                now = self.svc.clock.now()
                free = self.budget(now)
                if free <= RESERVE or (immediate and free <= COMFORT):
                    break
                customer = await Customer.get(id=ticket.customer_id)
                if free > COMFORT and len(msgs) == 1:
                    relayed += await self._relay_one(ticket, customer, msgs[0])
                else:
                    relayed += await self._relay_batch(ticket, customer, msgs)
            return relayed

    def _header(self, ticket: Ticket, customer: Customer, count: int = 1) -> str:
        if count > 1:
            return self.label("tk_owner_batch_header", number=ticket.number, name=customer.name,
                              count=count)
        return self.label("tk_owner_header", number=ticket.number, name=customer.name)

    async def _relay_one(self, ticket: Ticket, customer: Customer, m: TicketMessage) -> int:
        text = f"{self._header(ticket, customer)}\n{m.text}".rstrip()
        if await self.send(ticket, text, photo=m.photo_file_id) is None:
            return 0
        await TicketMessage.filter(id=m.id).update(relayed_at=self.svc.clock.now())
        return 1

    async def _relay_batch(self, ticket: Ticket, customer: Customer,
                           msgs: list[TicketMessage]) -> int:
        """Owner texts in as few messages as fit; photos one by one while the budget lasts."""
        texts = [m for m in msgs if not m.photo_file_id]
        photos = [m for m in msgs if m.photo_file_id]
        relayed = 0
        chunk: list[TicketMessage] = []
        size = 0

        async def send_chunk(part: list[TicketMessage]) -> int:
            if not part:
                return 0
            if self.budget(self.svc.clock.now()) <= RESERVE:
                return 0
            lines = [self._header(ticket, customer, len(part))]
            lines += [f"{m.created_at.astimezone(self.svc.settings.tz):%H:%M} {m.text}"
                      for m in part]
            if await self.send(ticket, "\n".join(lines)) is None:
                return 0
            await TicketMessage.filter(id__in=[m.id for m in part]) \
                .update(relayed_at=self.svc.clock.now())
            return len(part)

        for m in texts:
            line = len(m.text) + 8
            if chunk and size + line > TEXT_CHUNK:
                sent = await send_chunk(chunk)
                relayed += sent
                if not sent:
                    return relayed
                chunk, size = [], 0
            if line > TEXT_CHUNK:  # one very long message: alone, cut to fit
                m.text = m.text[:TEXT_CHUNK - 8]
            chunk.append(m)
            size += line
        relayed += await send_chunk(chunk)
        for m in photos:
            if self.budget(self.svc.clock.now()) <= RESERVE:
                break
            relayed += await self._relay_one(ticket, customer, m)
        return relayed

    # ------------------------------------------------------------ reading staff messages

    async def ticket_of_message(self, msg: Message) -> Ticket | None:
        """The ticket a staff-chat message belongs to: its topic, or the thread it replies in."""
        if msg.is_topic_message and msg.message_thread_id:
            ticket = await Ticket.get_or_none(topic_thread_id=msg.message_thread_id)
            if ticket is not None:
                return ticket
        reply = msg.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.is_bot:
            number = tickets.parse_number(reply.text or reply.caption or "")
            if number is not None:
                return await Ticket.get_or_none(id=number)
        return None


def side_of(svc: Services) -> StaffSide:
    side: StaffSide = svc.extensions[tickets.EFFECTS_KEY]
    return side


# --------------------------------------------------------------------------- handlers


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Claim / Escalate / Major / Resolve on a ticket card; only registered staff may."""
    svc = services_of(context)
    side = side_of(svc)
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, rest = query.data.partition(":")
    action, _, raw_id = rest.partition(":")
    staff = await tickets.staff_for(query.from_user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        log.warning("ticket button %r pressed by unregistered user %s", query.data,
                    query.from_user.id)
        await buttons.answer(svc, query, side.label("tk_not_staff"), show_alert=True)
        return
    if not raw_id.isdigit():
        await buttons.answer(svc, query, side.label("tk_unknown"), show_alert=True)
        return
    ticket_id = int(raw_id)
    now = svc.clock.now()
    outcome: Outcome
    ticket: Ticket | None
    if action == "claim":
        outcome, ticket = await tickets.claim(ticket_id, staff, now=now, services=svc)
        done_text = side.label("tk_claimed_toast", number=ticket.number) if ticket else ""
    elif action in ("escalate", "major"):
        major = action == "major"
        reason = f"{'marked major' if major else 'escalated'} by {staff.name}"
        outcome, ticket = await tickets.escalate(ticket_id, now=now, services=svc, actor=staff,
                                                 reason=reason, major=major)
        done_text = side.label("tk_escalated_toast",
                               level=side._level(ticket.level)) if ticket else ""
    elif action == "resolve":
        outcome, ticket = await _start_resolve(side, ticket_id, staff, query.from_user.id)
        done_text = ""
    else:
        await buttons.answer(svc, query, side.label("tk_unknown"), show_alert=True)
        return
    if outcome is Outcome.DONE:
        await buttons.answer(svc, query, done_text or None)
        return
    level = side._level(ticket.level) if ticket else ""
    messages = {
        Outcome.NOT_STAFF: side.label("tk_not_staff"),
        Outcome.NOT_ALLOWED: side.label("tk_not_allowed", level=level),
        Outcome.NOT_ACTIVE: side.label("tk_not_active") if ticket else side.label("tk_unknown"),
        Outcome.ALREADY: side.label("tk_already"),
        Outcome.TOP: side.label("tk_top"),
    }
    await buttons.answer(svc, query, messages[outcome], show_alert=True)


async def _start_resolve(side: StaffSide, ticket_id: int, staff: Staff,
                         user_id: int) -> tuple[Outcome, Ticket | None]:
    """Resolve asks the resolver for the resolution, then the improvement measure."""
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None or ticket.state not in tickets.ACTIVE_STATES:
        return Outcome.NOT_ACTIVE, ticket
    if not tickets.can_act(staff.role, ticket.level):
        return Outcome.NOT_ALLOWED, ticket
    await owners.set_conversation(user_id, RESOLUTION_STATE, {"ticket_id": ticket.id})
    await side.send(ticket, side.label("tk_resolve_ask_resolution", name=staff.name))
    return Outcome.DONE, ticket


async def _resolve_step(side: StaffSide, conv: Conversation, ticket: Ticket, staff: Staff,
                        text: str, user_id: int) -> None:
    svc = side.svc
    if not text.strip():
        return
    if conv.state == RESOLUTION_STATE:
        await owners.set_conversation(user_id, IMPROVEMENT_STATE,
                                      {"ticket_id": ticket.id, "resolution": text})
        await side.send(ticket, side.label("tk_resolve_ask_improvement"))
        return
    await Conversation.filter(telegram_user_id=user_id).delete()
    outcome, _ = await tickets.resolve(ticket.id, staff, resolution=str(conv.data.get(
        "resolution", "")), improvement=text, now=svc.clock.now(), services=svc)
    if outcome is not Outcome.DONE:
        await side.send(ticket, side.label("tk_not_active" if outcome is Outcome.NOT_ACTIVE
                                           else "tk_not_allowed",
                                           level=side._level(ticket.level)))


async def on_staff_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in a ticket's topic: the resolve dialogue, or a reply relayed to the owner."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or user.is_bot:
        return
    ticket = await side.ticket_of_message(msg)
    if ticket is None:  # a conversation's topic, or staff talking among themselves
        await thread_chat.on_topic_message(update, context)
        return
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        log.warning("message in %s topic from unregistered user %s: not relayed",
                    ticket.number, user.id)
        await side.send(ticket, side.label("tk_not_registered"))
        return
    text = msg.text or msg.caption or ""
    conv = await owners.get_conversation(user.id)
    if conv is not None and conv.state in (RESOLUTION_STATE, IMPROVEMENT_STATE) \
            and conv.data.get("ticket_id") == ticket.id:
        await _resolve_step(side, conv, ticket, staff, text, user.id)
        return
    if ticket.state == TicketState.CLOSED:
        await side.send(ticket, side.label("tk_not_active"))
        return
    photo = msg.photo[-1].file_id if msg.photo else ""
    if not text and not photo:
        return
    customer = await Customer.get(id=ticket.customer_id)
    if customer.telegram_chat_id is None or customer.unreachable_at is not None:
        await side.send(ticket, side.label("tk_owner_unreachable", phone=customer.phone))
        return
    # recorded, then owed to the owner until Telegram takes it (the answer's effect sends
    # it); answering an unclaimed ticket takes it, so the owner hears who handles it first
    await tickets.record_staff_answer(ticket, staff, text, now=svc.clock.now(), services=svc,
                                      photo_file_id=photo,
                                      source=f"{msg.chat_id}:{msg.message_id}")


async def note_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/note text in a ticket's topic: kept on the ticket, never sent to the owner."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    staff = await tickets.staff_for(user.id)
    if staff is None:
        return
    ticket = await side.ticket_of_message(msg)
    text = " ".join(context.args or [])
    if ticket is None and await thread_chat.topic_note(update, context, text):
        return
    if ticket is None or not text:
        await side.send(ticket, side.label("tk_note_usage"),
                        thread_id=msg.message_thread_id if msg.is_topic_message else None)
        return
    await tickets.add_note(ticket, staff, text, now=svc.clock.now(), in_topic=True)


async def ticket_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket <phone|plate|VIN> <text>: open a ticket for an owner who phoned or came in."""
    svc = services_of(context)
    side = side_of(svc)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    thread = msg.message_thread_id if msg.is_topic_message else None
    staff = await tickets.staff_for(user.id)
    if staff is None or not tickets.is_ticket_staff(staff.role):
        await side.send(None, side.label("tk_not_staff"), thread_id=thread)
        return
    args = context.args or []
    if not args and await thread_chat.topic_command(update, context, "ticket"):
        return  # /ticket in a conversation's topic: it becomes a complaint
    if len(args) < 2:
        await side.send(None, side.label("tk_ticket_usage"), thread_id=thread)
        return
    customer, vehicle = await tickets.find_customer(args[0])
    if customer is None:
        await side.send(None, side.label("tk_ticket_not_found", query=args[0]), thread_id=thread)
        return
    ticket = await tickets.open_ticket(
        customer_id=customer.id, vehicle_id=vehicle.id if vehicle else None, channel="staff",
        category="other", description=" ".join(args[1:]), now=svc.clock.now(), services=svc,
        actor_id=staff.id)
    await side.send(None, side.label("tk_ticket_opened", name=customer.name,
                                     number=ticket.number), thread_id=thread)


async def done_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/done in a conversation's topic: the conversation is done."""
    await thread_chat.topic_command(update, context, "done")


# --------------------------------------------------------------------------- wiring


async def deadline_tick(services: Services) -> None:
    """The minute job: escalate missed deadlines; also catch up on unpublished tickets.
    One instance at a time (the ``ticket_deadlines`` advisory lock); others skip."""
    async with locks.locks_of(services).singleton(locks.TICKET_DEADLINES) as mine:
        if not mine:
            return
        try:
            await tickets.check_deadlines(services.clock.now(), services)
        except Exception:  # a failed tick must not kill the scheduler
            log.exception("ticket deadline check failed; the next tick retries")


async def relay_tick(services: Services) -> None:
    """The staff side's job, on the one instance that does it (``StaffSide.holder``):
    effects still owed, tickets not shown yet, owner messages still queued (batched)."""
    side = side_of(services)
    try:
        if not await side.holder():
            return
        await side.carry_out_owed()
        await side.publish_pending()
        await side.flush()
        await answers.deliver_owed(side)
        await side.mirror()
        await thread_chat.thread_side_of(services).tick()
        await notices.send_owed(services.sender, services.clock.now())
    except Exception:  # a failed tick must not kill the scheduler
        log.exception("staff side tick failed; the next tick retries")


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    tickets.sla_rules(services.settings)  # a wrong calendar stops start-up, naming the variable
    services.extensions[tickets.EFFECTS_KEY] = StaffSide(services)
    application.add_handler(CallbackQueryHandler(on_button, pattern=rf"^{CALLBACK_PREFIX}:"))
    chat_id = services.settings.staff_chat_id
    if chat_id is None:
        log.warning("CAREBOT_STAFF_CHAT_ID is not set: tickets are recorded but no staff "
                    "chat shows them")
        return
    staff_chat = filters.Chat(chat_id=chat_id)
    application.add_handler(CommandHandler("note", note_command, filters=staff_chat))
    application.add_handler(CommandHandler("ticket", ticket_command, filters=staff_chat))
    application.add_handler(CommandHandler("done", done_command, filters=staff_chat))
    application.add_handler(MessageHandler(
        staff_chat & thread_chat.MESSAGES & ~filters.COMMAND, on_staff_message))


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(deadline_tick, "interval", minutes=1, args=[services],
                      id="ticket_deadlines", max_instances=1, coalesce=True)
    scheduler.add_job(relay_tick, "interval", seconds=3, args=[services], id="ticket_relay",
                      max_instances=1, coalesce=True)
