"""The staff side of complaint tickets: what the bot writes in the staff supergroup
(``CAREBOT_STAFF_CHAT_ID``), and the owner notices of tickets.

Each ticket is one forum topic (``T-0042 · 张伟 · 粤A12345 · 质量``) whose first message is
the ticket card (:mod:`bot.handlers.ticket_card`); in a group without topics the card is a
plain message and the ticket lives in its reply thread. :class:`StaffSide` is the tickets'
*effects* (``services.ticket_effects``): after every change in :mod:`bot.tickets` it
updates the card, posts escalations with mentions of the next level, tells the owner where
the complaint stands and sends staff answers (:mod:`bot.handlers.answers`); owners' messages
are relayed by :mod:`bot.handlers.ticket_relay`. One instance does all of it at a time
(:meth:`StaffSide.holder`), so the group's 20 a minute hold across instances.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import locks, owners, ticket_reasons, tickets
from bot.delivery import notices
from bot.delivery.dispatcher import dealer_context
from bot.delivery.limits import Lane
from bot.delivery.sender import Sender
from bot.handlers import answers, ticket_card, ticket_progress, ticket_relay
from bot.services import Services
from bot.templating import render_off_loop
from bot.texts import DEFAULT_LANGUAGE
from bot.tickets import EventKind
from db.models import Customer, Staff, Ticket, TicketEvent, Vehicle

log = logging.getLogger(__name__)

GROUP_PER_MINUTE = 20  # Telegram: about 20 messages per minute to one group


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
            msg = await self.sender.photo(
                self.chat_id, photo, lane=Lane.STAFF, caption=_cut(text, 1024, parse_mode) or None,
                parse_mode=parse_mode, reply_markup=markup, **kwargs)
        else:
            msg = await self.sender.text(
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
        except Exception:  # recording must not break the caller
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
        return ticket_card.category(self.svc, category, lang, short)

    def reason(self, reason: str) -> str:
        """An event's recorded reason in the group's language (bot/ticket_reasons.py)."""
        reason, skipped = ticket_reasons.split_skipped(reason)
        if skipped:
            comma, semicolon = (", ", "; ") if self.lang == "en" else ("、", "；")
            note = self.label("tk_reason_skipped", levels=comma.join(
                self._level(lv) if lv in tickets.LEVELS else lv for lv in skipped))
            return f"{self.reason(reason)}{semicolon}{note}" if reason else note
        known = ticket_reasons.reason_key(reason)
        if known is None:
            return reason
        key, values = known
        if values.get("level") in tickets.LEVELS:
            values["level"] = self._level(values["level"])
        return self.label(f"tk_reason_{key}", **values)

    def _level(self, level: str, lang: str | None = None) -> str:
        return ticket_card.level_name(self.svc, level, lang)

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
                topic = await self.sender.open_topic(
                    self.chat_id, ticket_card.topic_name(self.svc, ticket, customer, vehicle))
                if topic is None:
                    log.error("ticket %s: could not create its topic", ticket.number)
                    return ticket
                ticket.topic_thread_id = topic.message_thread_id
                await ticket.save(update_fields=["topic_thread_id", "updated_at"])
            msg = await self.send(
                ticket,
                await ticket_card.card_text(self.svc, ticket),
                as_html=True,
                markup=ticket_card.buttons(self.svc, ticket),
            )
            if msg is not None:
                ticket.card_message_id = msg.message_id
                await ticket.save(update_fields=["card_message_id", "updated_at"])
            return ticket

    async def refresh_card(self, ticket: Ticket) -> None:
        if self.chat_id is None or ticket.card_message_id is None:
            return
        # not modified: nothing to do; any other failure the sender logs and records
        await self.sender.edit_text(
            self.chat_id,
            ticket.card_message_id,
            await ticket_card.card_text(self.svc, ticket),
            lane=Lane.STAFF,
            parse_mode=ParseMode.HTML,
            reply_markup=ticket_card.buttons(self.svc, ticket),
        )

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
        except Exception:  # still owed: the next sweep tries again
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
            await self.notify_owner(ticket, "ticket_opened", event_id=event.id)
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
            await self._claimed(ticket, event)
        elif kind == EventKind.ESCALATED:
            before, _, _ = event.text.partition(" -> ")
            text = self.label(
                "tk_escalation", number=esc(ticket.number),
                from_level=esc(self._level(before) if before in tickets.LEVELS else before),
                to_level=esc(self._level(ticket.level)), reason=esc(self.reason(event.reason)),
                mentions=await self.mentions(ticket.level),
                due=esc(ticket_card.local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
            await ticket_progress.tell_empty_levels(self, ticket, event)
            await ticket_progress.on_stage(self, ticket, event)
        elif kind == EventKind.BREACH:
            text = self.label("tk_breach", number=esc(ticket.number),
                              reason=esc(self.reason(event.reason)),
                              mentions=await self.mentions(ticket.level),
                              due=esc(ticket_card.local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
            await ticket_progress.on_breach(self, ticket, event)
        elif kind == EventKind.RESOLVED:
            handler = await Staff.get_or_none(id=event.actor_id) if event.actor_id else None
            await self.notice(ticket, self.label(
                "tk_resolved_notice", number=ticket.number, name=handler.name if handler else "",
                days=f"{self.svc.settings.ticket_followup_days:g}"))
            await self.notify_owner(ticket, "ticket_resolved", event_id=event.id)
        elif kind == EventKind.REOPENED:
            await self._topic_closed(ticket, closed=False)
            text = self.label("tk_reopened", number=esc(ticket.number),
                              score=esc(str(ticket.handling_score)),
                              to_level=esc(self._level(ticket.level)),
                              mentions=await self.mentions(ticket.level),
                              due=esc(ticket_card.local(ticket.due_at, self.svc)))
            await self.notice(ticket, text, as_html=True)
            await ticket_progress.on_stage(self, ticket, event)
        elif kind == EventKind.CLOSED:
            await self.notice(ticket, self.label("tk_closed_notice", number=ticket.number,
                                               score=ticket.handling_score))
            await self.notify_owner(ticket, "ticket_closed", event_id=event.id)
            await self._topic_closed(ticket, closed=True)

    async def _claimed(self, ticket: Ticket, event: TicketEvent) -> None:
        """Claimed: the staff topic says who handles it by when; the owner hears the name
        unless already told who follows this stage (:mod:`bot.handlers.ticket_progress`)."""
        handler = await Staff.get_or_none(id=ticket.handler_id) if ticket.handler_id else None
        name = handler.name if handler else ""
        await self.notice(
            ticket,
            self.label(
                "tk_claimed_notice",
                number=ticket.number,
                name=name,
                due=ticket_card.local(ticket.due_at, self.svc),
            ),
        )
        await ticket_progress.on_claim(self, ticket, event)

    async def _topic_closed(self, ticket: Ticket, *, closed: bool) -> None:
        if self.chat_id is None or not ticket.topic_thread_id:
            return
        if closed:
            await self.sender.close_topic(self.chat_id, ticket.topic_thread_id)
        else:
            await self.sender.reopen_topic(self.chat_id, ticket.topic_thread_id)

    # ------------------------------------------------------------ the owner

    async def notify_owner(self, ticket: Ticket, key: str, *, staff_person: Staff | None = None,
                           event_id: int | None = None, notice_key: str | None = None) -> bool:
        """Tell the owner where their complaint stands (an HTML script by key, naming
        ``staff_person`` in owner terms); False when it could not go now (it is retried: a
        notice row, keyed ``notice_key`` or by the event and script)."""
        customer = await Customer.get(id=ticket.customer_id)
        if customer.telegram_chat_id is None or customer.unreachable_at is not None:
            return False
        vehicle = await Vehicle.get_or_none(id=ticket.vehicle_id) if ticket.vehicle_id else None
        lang = customer.language
        staff = ticket_progress.owner_name(self, staff_person, lang) if staff_person else ""
        business = self.svc.rules.tickets.calendar is not None
        # greets only when this starts a new exchange (not after an answer an hour ago)
        greet = await owners.greeting_due(customer.id, self.svc.clock.now(),
                                          self.svc.settings.exchange_gap_hours)
        text = ""
        for limit in tickets.SHORTER_LIMITS:  # shorten the inputs, never the rendered HTML
            text = await render_off_loop(
                self.svc.scripts.render, key, lang, customer=customer, vehicle=vehicle,
                dealer=dealer_context(self.svc.settings), staff=staff, greet=greet,
                ticket={"number": ticket.number, "category": self._cat(ticket.category, lang),
                        "level": self._level(ticket.level, lang),
                        "resolution": tickets.shorten(ticket.resolution, limit),
                        "due": ticket_card.local(ticket.due_at, self.svc),
                        "first_hours": f"{self.svc.settings.ticket_first_answer_hours:g}",
                        "business": business},
            )
            if len(text) <= tickets.MESSAGE_LIMIT:
                break
        # a row first (one per event and kind: carrying out an event again owes nothing
        # more), sent now, retried after 1, 5, 30 and 120 minutes by the staff side's job
        now = self.svc.clock.now()
        notice = await notices.owe(
            notice_key or f"owner:{ticket.id}:{event_id or now.timestamp()}:{key}",
            [customer.telegram_chat_id], text, now=now, lane=Lane.REPLY,
            parse_mode=ParseMode.HTML, customer_id=customer.id, log_kind=key)
        if notice is None:
            return True  # owed already (this event's effects carried out before)
        if await notices.send_now(notice, self.sender, now):
            return True
        log.error("owner %s: ticket %s notice %s not sent now", customer.id, ticket.number,
                  key)
        if not await _unreachable(customer.id):
            await self.undelivered(ticket, "owner (tried again later)", text)
        return False

    async def to_owner(self, customer: Customer, text: str, *, parse_mode: str | None = None,
                       photo: str = "") -> int | None:
        """Send to the owner (the reply lane: they are waiting); Telegram's message id, or
        None when the sender could not (it retried, then recorded why)."""
        chat_id = customer.telegram_chat_id
        if chat_id is None or customer.unreachable_at is not None:
            return None
        if photo:
            msg = await self.sender.photo(chat_id, photo,
                                               caption=_cut(text, 1024, parse_mode) or None,
                                               parse_mode=parse_mode)
        else:
            msg = await self.sender.text(chat_id, _cut(text, 4096, parse_mode),
                                                 parse_mode=parse_mode)
        return msg.message_id if msg is not None else None

    async def mirror(self, *, ticket_id: int | None = None, limit: int = 50) -> int:
        """Answers and notes written on the console, shown in the ticket's topic too."""
        return await ticket_relay.mirror(self, ticket_id=ticket_id, limit=limit)

    async def flush(self, *, immediate: bool = False) -> int:
        """Owners' queued messages into their topics (:func:`ticket_relay.flush`)."""
        return await ticket_relay.flush(self, immediate=immediate)

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
    """The staff side the staff feature registered (always, in a running carebot)."""
    if svc.staff_side is None:
        raise RuntimeError("the staff feature is not registered (bot.handlers.staff)")
    return svc.staff_side
