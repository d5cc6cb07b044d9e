"""Owner side of the mileage (issue 17, point 2): "Tell us your mileage" under the
service-due reminder, then the typed odometer reading.

Callback data ``km:a:<vehicle>``: the owner's own car only. The reading waits in the
owner's ``Conversation`` (state ``mileage``), so a restart or another instance takes the
answer. What the owner typed is already in the message log (the free-text handler keeps
it before any route); a valid reading is stored, moves the car's forecast and is confirmed
with the new estimate; a reading that cannot be right is answered with why, three times at
most.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import owners
from bot.delivery.dispatcher import Composer, Outgoing
from bot.handlers import buttons
from bot.handlers.owner import lang_of, say
from bot.journeys.forecasts import newest_reading, record_owner_mileage
from bot.journeys.mileage import BY_KM, check_reported
from bot.journeys.plans import SERVICE_DUE
from bot.journeys.timing import local_date
from bot.services import Services, services_of
from db.models import Conversation, Customer, Touchpoint, Vehicle, VehicleStatus

log = logging.getLogger(__name__)

PREFIX = "km"
STATE = "mileage"
MAX_TRIES = 3
ROUTE_PRIORITY = 15  # after the complaint dialogue (10), before survey replies (20)


def km_button(svc: Services, lang: str, vehicle_id: int) -> list[tuple[str, str]]:
    return [(svc.scripts.label("km_button", lang), f"{PREFIX}:a:{vehicle_id}")]


def with_mileage_button(svc: Services, inner: Composer) -> Composer:
    """The service-due reminder as the booking feature composes it, plus a row that lets the
    owner tell us the mileage."""

    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        out = await inner(tp, customer, vehicle)
        if vehicle is None:
            return out
        rows = [list(row) for row in (out.buttons or [])]
        rows.append(km_button(svc, customer.language, vehicle.id))
        return Outgoing(out.text, rows)

    return composer


async def mileage_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    customer = await owners.customer_for_user(query.from_user.id)
    lang = lang_of(update, customer)
    vid = query.data.rpartition(":")[2]
    car = None
    if customer is not None and vid.isdigit():
        car = await Vehicle.get_or_none(id=int(vid), customer_id=customer.id,
                                        status=VehicleStatus.ACTIVE)
    if customer is None or car is None:
        await say(update, svc, svc.scripts.label("km_unavailable", lang,
                                                 phone=svc.settings.dealer_phone),
                  customer=customer)
        return
    # once the reading is in, the reminder keeps its other buttons (Book a visit) only
    rest = buttons.without(query, query.data)
    await owners.set_conversation(query.from_user.id, STATE, {
        "vehicle_id": car.id, "tries": 0,
        "keyboard": query.message.message_id if query.message else None,
        "rest": rest.to_dict() if rest is not None else None})
    await say(update, svc, svc.scripts.label("km_ask", lang), customer=customer)


async def mileage_route(update: Update, context: ContextTypes.DEFAULT_TYPE,
                        customer: Customer | None) -> bool:
    """The typed reading, while the owner is asked for one."""
    msg, user = update.effective_message, update.effective_user
    if customer is None or msg is None or user is None or not msg.text:
        return False
    conv = await owners.get_conversation(user.id)
    if conv is None or conv.state != STATE:
        return False
    svc = services_of(context)
    lang, now = lang_of(update, customer), svc.clock.now()
    rules = svc.rules.journeys
    vehicle_id = int(conv.data.get("vehicle_id", 0))
    newest = await newest_reading(vehicle_id, rules.tz)
    checked = check_reported(msg.text, newest, local_date(now, rules.tz))
    if isinstance(checked, str):
        tries = int(conv.data.get("tries", 0)) + 1
        if tries >= MAX_TRIES:
            await Conversation.filter(telegram_user_id=user.id).delete()
            await say(update, svc, svc.scripts.label("km_gave_up", lang,
                                                     phone=svc.settings.dealer_phone),
                      customer=customer)
            return True
        await owners.set_conversation(user.id, STATE, {**conv.data, "tries": tries})
        last = newest.km if newest else 0
        await say(update, svc, svc.scripts.label(checked, lang, last=last), customer=customer)
        return True
    fc = await record_owner_mileage(vehicle_id, checked, now=now, rules=rules)
    await Conversation.filter(telegram_user_id=user.id).delete()
    await _drop_button(svc, msg.chat_id, conv.data)
    log.info("owner %s reported the mileage of car %s", customer.id, vehicle_id)
    if fc is None:
        text = svc.scripts.label("km_thanks_unknown", lang, km=checked)
    else:
        why = (svc.scripts.label("km_why_km", lang, due_km=fc.forecast.due_km)
               if fc.forecast.by == BY_KM else svc.scripts.label("km_why_date", lang))
        text = svc.scripts.label("km_thanks", lang, km=checked, why=why,
                                 day=fc.forecast.due_on.isoformat())
    await say(update, svc, text, customer=customer)
    return True


async def _drop_button(svc: Services, chat_id: int, data: dict[str, Any]) -> None:
    """The reading is in: the reminder's "Tell us your mileage" goes (the step is over)."""
    message_id, rest = data.get("keyboard"), data.get("rest")
    if not isinstance(message_id, int):
        return
    markup = InlineKeyboardMarkup.de_json(rest, svc.sender.bot) if isinstance(rest, dict) \
        else None
    await svc.sender.edit_markup(chat_id, message_id, markup)


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    """After the touchpoints feature: wraps its service-due composer."""
    application.add_handler(CallbackQueryHandler(mileage_pressed, pattern=rf"^{PREFIX}:"))
    composers = services.dispatcher.composers
    composers[SERVICE_DUE] = with_mileage_button(services, composers[SERVICE_DUE])
    services.add_text_route(ROUTE_PRIORITY, mileage_route)
