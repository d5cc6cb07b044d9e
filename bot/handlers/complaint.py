"""The owner side of complaint tickets: /complain or "Contact us", then relay while open.

The dialogue lives in the database (``Conversation``, states ``complaint:*``), so a restart
loses nothing: pick the car (when there are several), pick a category, describe it in text
and photos, submit. The owner then gets the ticket number and the promise of an answer.
While a ticket is open, whatever the owner writes is queued for its staff topic.

Callback data: ``cp:start``, ``cp:veh:<id>``, ``cp:cat:<category>``, ``cp:submit``,
``cp:cancel`` (well under 64 bytes).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import owners, tickets
from bot.handlers import buttons
from bot.handlers.owner import lang_of, log_in, say
from bot.handlers.ticket_side import side_of
from bot.keyboards import keyboard
from bot.services import Services, services_of
from bot.tickets import CATEGORIES, contact_button
from db.models import Conversation, Customer, Touchpoint, Vehicle, VehicleStatus

log = logging.getLogger(__name__)

PREFIX = "cp"
VEHICLE_STATE = "complaint:vehicle"
CATEGORY_STATE = "complaint:category"
DESCRIBE_STATE = "complaint:describe"
MAX_PARTS = 50  # texts or photos in one complaint before it must be submitted

__all__ = ["contact_button", "register"]


def _category_keyboard(svc: Services, lang: str) -> InlineKeyboardMarkup:
    choices = [(svc.scripts.label(f"cat_{c}", lang), f"{PREFIX}:cat:{c}") for c in CATEGORIES]
    rows = [choices[i:i + 2] for i in range(0, len(choices), 2)]
    rows.append([_cancel_button(svc, lang)])
    return keyboard(rows)


def _cancel_button(svc: Services, lang: str) -> tuple[str, str]:
    return svc.scripts.label("complain_cancel_button", lang), f"{PREFIX}:cancel"


def _submit_keyboard(svc: Services, lang: str) -> InlineKeyboardMarkup:
    return keyboard([[(svc.scripts.label("complain_submit_button", lang), f"{PREFIX}:submit"),
                      _cancel_button(svc, lang)]])


async def _clear(user_id: int) -> None:
    await Conversation.filter(telegram_user_id=user_id).delete()


async def begin(update: Update, svc: Services, customer: Customer | None, user_id: int) -> None:
    """Start the dialogue: an owner with an open ticket just writes on; else car, category."""
    lang = lang_of(update, customer)
    if customer is None:
        await say(update, svc, svc.scripts.label("not_linked", lang), customer=None)
        return
    active = await tickets.active_ticket_of(customer.id)
    if active is not None:
        await say(update, svc, svc.scripts.label("complain_already_open", lang,
                                                 number=active.number), customer=customer)
        return
    vehicles = await Vehicle.filter(customer_id=customer.id, status=VehicleStatus.ACTIVE) \
        .order_by("-delivered_at", "id")
    if len(vehicles) > 1:
        rows = [[(" ".join(p for p in (v.model, v.plate) if p) or v.vin,
                  f"{PREFIX}:veh:{v.id}")] for v in vehicles]
        rows.append([_cancel_button(svc, lang)])
        await owners.set_conversation(user_id, VEHICLE_STATE, {})
        await say(update, svc, svc.scripts.label("complain_pick_vehicle", lang),
                  customer=customer, markup=keyboard(rows))
        return
    data: dict[str, object] = {"vehicle_id": vehicles[0].id if vehicles else None}
    await owners.set_conversation(user_id, CATEGORY_STATE, data)
    await say(update, svc, svc.scripts.label("complain_pick_category", lang), customer=customer,
              markup=_category_keyboard(svc, lang))


async def complain_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    await log_in(update, svc, customer, "command", "/complain")
    await begin(update, svc, customer, user.id)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The dialogue's buttons; a stale button (state moved on) is answered, not obeyed."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    user_id = query.from_user.id
    customer = await owners.customer_for_user(user_id)
    lang = lang_of(update, customer)
    await buttons.answer(svc, query)
    await log_in(update, svc, customer, "button", query.data)
    _, _, rest = query.data.partition(":")
    action, _, value = rest.partition(":")
    if action == "start":
        await begin(update, svc, customer, user_id)
        return
    # the dialogue's step is over once pressed (or was over already): its buttons go, so an
    # old category or Submit cannot be pressed again (issue 18)
    await buttons.edit_markup(svc, query)
    conv = await owners.get_conversation(user_id)
    state = conv.state if conv else ""
    data: dict[str, Any] = dict(conv.data) if conv else {}
    if customer is None or not state.startswith("complaint:"):
        await say(update, svc, svc.scripts.label("complain_expired", lang), customer=customer)
        return
    if action == "cancel":
        await _clear(user_id)
        await say(update, svc, svc.scripts.label("complain_cancelled", lang,
                                                 phone=svc.settings.dealer_phone),
                  customer=customer)
    elif action == "veh" and state == VEHICLE_STATE and value.isdigit():
        vehicle = await Vehicle.get_or_none(id=int(value), customer_id=customer.id)
        if vehicle is None:  # not theirs: an owner never touches another's file
            await say(update, svc, svc.scripts.label("complain_expired", lang), customer=customer)
            return
        await owners.set_conversation(user_id, CATEGORY_STATE, {"vehicle_id": vehicle.id})
        await say(update, svc, svc.scripts.label("complain_pick_category", lang),
                  customer=customer, markup=_category_keyboard(svc, lang))
    elif action == "cat" and state == CATEGORY_STATE and value in CATEGORIES:
        data.update(category=value, texts=[], photos=[])
        await owners.set_conversation(user_id, DESCRIBE_STATE, data)
        await say(update, svc, svc.scripts.label("complain_describe", lang), customer=customer)
    elif action == "submit" and state == DESCRIBE_STATE:
        await _submit(update, svc, customer, user_id, data, lang)
    else:
        await say(update, svc, svc.scripts.label("complain_expired", lang), customer=customer)


async def _submit(update: Update, svc: Services, customer: Customer, user_id: int,
                  data: dict[str, Any], lang: str) -> None:
    texts: list[str] = [str(t) for t in data.get("texts", [])]
    photos: list[str] = [str(p) for p in data.get("photos", [])]
    if not texts:
        await say(update, svc, svc.scripts.label("complain_need_text", lang), customer=customer,
                  markup=_submit_keyboard(svc, lang))
        return
    await _clear(user_id)
    now = svc.clock.now()
    vehicle_id = data.get("vehicle_id")
    ticket = await tickets.open_ticket(
        customer_id=customer.id, vehicle_id=int(vehicle_id) if vehicle_id else None,
        channel="bot", category=str(data.get("category", "other")),
        description="\n".join(texts), now=now, services=svc)
    # the acknowledgement with the number comes from the ticket's effects (ticket_opened)
    for file_id in photos:
        await tickets.record_owner_message(ticket, text="", now=now, photo_file_id=file_id)
    if photos:
        await side_of(svc).flush(immediate=True)


async def dialogue_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                         customer: Customer | None) -> bool:
    """Priority 10: text and photos while the owner is in the complaint dialogue."""
    svc = services_of(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return False
    conv = await owners.get_conversation(user.id)
    if conv is None or not conv.state.startswith("complaint:"):
        return False
    if customer is None:
        await _clear(user.id)
        return False
    lang = customer.language
    if conv.state != DESCRIBE_STATE:
        markup = _category_keyboard(svc, lang) if conv.state == CATEGORY_STATE else None
        await say(update, svc, svc.scripts.label("complain_use_buttons", lang), customer=customer,
                  markup=markup)
        return True
    data: dict[str, Any] = dict(conv.data)
    texts: list[str] = list(data.get("texts", []))
    photos: list[str] = list(data.get("photos", []))
    text = msg.text or msg.caption or ""
    if len(texts) + len(photos) < MAX_PARTS:
        if text:
            texts.append(text)
        if msg.photo:
            photos.append(msg.photo[-1].file_id)
    data.update(texts=texts, photos=photos)
    await owners.set_conversation(user.id, DESCRIBE_STATE, data)
    await say(update, svc, svc.scripts.label("complain_got_part", lang, texts=len(texts),
                                             photos=len(photos)),
              customer=customer, markup=_submit_keyboard(svc, lang))
    return True


async def relay_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                      customer: Customer | None) -> bool:
    """Priority 30: an owner with an open ticket writes to its staff topic (queued, batched)."""
    svc = services_of(context)
    msg = update.effective_message
    if msg is None or customer is None:
        return False
    ticket = await tickets.active_ticket_of(customer.id)
    if ticket is None:
        return False
    photo = msg.photo[-1].file_id if msg.photo else ""
    text = msg.text or msg.caption or ""
    if not text and not photo:
        return False
    await tickets.record_owner_message(ticket, text=text, now=svc.clock.now(),
                                       photo_file_id=photo,
                                       source=f"{msg.chat_id}:{msg.message_id}")
    await side_of(svc).flush(immediate=True)
    return True


# Follow-ups carry "Contact us / 联系客服" under them (DOMAIN: the owner can always reach CS).
FOLLOWUP_KINDS = frozenset(
    {"delivery_checkin", "followup_3d", "visit_7d", "service_followup", "first_service_reminder"}
)


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("complain", complain_command, filters=private))
    application.add_handler(CallbackQueryHandler(on_button, pattern=rf"^{PREFIX}:"))
    services.add_text_route(10, dialogue_route)
    services.add_text_route(30, relay_route)

    def contact_footer(tp: Touchpoint, customer: Customer) -> list[list[tuple[str, str]]]:
        if tp.kind not in FOLLOWUP_KINDS:
            return []
        return [[tickets.contact_button(customer.language, services.scripts)]]

    services.dispatcher.footers.append(contact_footer)
