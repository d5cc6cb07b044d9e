"""The lost-owner recall in Telegram: its message with the reasons and "Book a visit", and
the reason pressed (thin: the domain is ``bot.recall``)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import owners, recall
from bot.delivery.dispatcher import Composer, Outgoing, compose
from bot.handlers import booking as booking_handlers
from bot.handlers import buttons
from bot.handlers.owner import log_in
from bot.keyboards import keyboard_or_none
from bot.services import Services, services_of
from bot.templating import render_off_loop
from db.models import Customer, Direction, Touchpoint, Vehicle

log = logging.getLogger(__name__)


def reason_labels(svc: Services, lang: str) -> dict[str, str]:
    return {r: svc.scripts.label(f"rc_reason_{r}", lang) for r in recall.REASONS}


def make_composer(svc: Services) -> Composer:
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = await render_off_loop(compose, tp, customer, vehicle, svc.scripts, svc.settings)
        rows = recall.buttons(tp.id, reason_labels(svc, customer.language))
        rows += booking_handlers.book_button(svc, customer.language, tp.id)
        return Outgoing(out.text, rows)

    return composer


async def reason_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The owner's reason is stored first, then acknowledged; the buttons stay for booking."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    parsed = recall.parse_callback(query.data)
    customer = await owners.customer_for_user(query.from_user.id)
    if parsed is None or customer is None:
        await buttons.answer(svc, query)
        return
    await log_in(update, svc, customer, "button", query.data)
    now = svc.clock.now()
    tp_id, reason = parsed
    row = await recall.answer(tp_id, customer.id, reason, channel="telegram", now=now)
    lang = customer.language
    if row is None:
        await buttons.answer(svc, query, svc.scripts.label("rc_not_yours", lang))
        return
    await buttons.answer(svc, query)
    label = reason_labels(svc, lang)[reason]
    key = "rc_thanks_sold" if reason == recall.SOLD else "rc_thanks"
    text = svc.scripts.label(key, lang, name=customer.name, reason=label,
                             phone=svc.settings.dealer_phone)
    # the reasons go; "Book a visit" stays unless the car is gone
    keep = [] if reason == recall.SOLD else booking_handlers.book_button(svc, lang, tp_id)
    await buttons.edit_markup(svc, query, keyboard_or_none(keep))
    chat_id = customer.telegram_chat_id
    if chat_id is None:
        return
    sent = await svc.sender.text(chat_id, text)
    if sent is not None:
        await owners.log_message(direction=Direction.OUT, chat_id=chat_id, text=text, now=now,
                                 kind="recall", customer_id=customer.id,
                                 telegram_message_id=sent.message_id)


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    services.dispatcher.composers[recall.RECALL] = make_composer(services)
    application.add_handler(CallbackQueryHandler(reason_pressed, pattern=r"^rc:"))
