"""A ticket's card in the staff group: its topic's name, its HTML and its buttons.

Pure rendering over what is recorded (the ticket, the owner and their cars, visits, recent
scores and earlier tickets); sending it is the staff side's (:mod:`bot.handlers.ticket_side`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from telegram import InlineKeyboardMarkup

from bot import tickets
from bot.keyboards import keyboard
from bot.services import Services
from bot.templating import render_off_loop
from bot.texts import DEFAULT_LANGUAGE
from db.models import Customer, Score, Staff, Ticket, Vehicle, Visit

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "tk"
LANG = DEFAULT_LANGUAGE  # the staff group's language


def local(when: datetime | None, svc: Services) -> str:
    return when.astimezone(svc.settings.tz).strftime("%Y-%m-%d %H:%M") if when else ""


def category(svc: Services, name: str, lang: str | None = None, short: bool = False) -> str:
    key = f"cat_short_{name}" if short else f"cat_{name}"
    return svc.scripts.label(key, lang or LANG)


def level_name(svc: Services, level: str, lang: str | None = None) -> str:
    return svc.scripts.label(f"level_{level}", lang or LANG)


def topic_name(svc: Services, ticket: Ticket, customer: Customer,
               vehicle: Vehicle | None) -> str:
    car = (vehicle.plate or vehicle.model or vehicle.vin[-6:]) if vehicle else "-"
    name = (f"{ticket.number} · {customer.name} · {car} · "
            f"{category(svc, ticket.category, short=True)}")
    return name[:128]


def buttons(svc: Services, ticket: Ticket) -> InlineKeyboardMarkup | None:
    """Claim / Escalate / Major / Resolve while the ticket is being handled."""
    if ticket.state not in tickets.ACTIVE_STATES:
        return None
    row = [(svc.scripts.label(f"tk_{action}_button", LANG),
            f"{CALLBACK_PREFIX}:{action}:{ticket.id}")
           for action in ("claim", "escalate", "major", "resolve")]
    return keyboard([row[:2], row[2:]])


async def card_text(svc: Services, ticket: Ticket) -> str:
    """The card's HTML, long texts shortened (never the HTML) until it fits a message."""
    text = ""
    for limit in tickets.SHORTER_LIMITS:
        text = await _card_text(svc, ticket, limit)
        if len(text) <= tickets.MESSAGE_LIMIT:
            break
    return text


async def _recent_scores(svc: Services, customer_id: int) -> list[str]:
    scores: list[str] = []
    try:
        for s in await Score.filter(customer_id=customer_id).order_by("-created_at").limit(3):
            cat = s.category
            scores.append(f"{s.score}/10 {local(s.created_at, svc)[:10]}"
                          + (f" {category(svc, cat)}" if cat in tickets.CATEGORIES else ""))
    except Exception:  # the card must not depend on another feature
        log.exception("card: recent scores unavailable")
    return scores


async def _card_text(svc: Services, ticket: Ticket, limit: int) -> str:
    short = tickets.shorten
    label = svc.scripts.label
    customer = await Customer.get(id=ticket.customer_id)
    vehicles = await Vehicle.filter(customer_id=customer.id).order_by("-delivered_at", "id")
    vehicle_ids = [v.id for v in vehicles]
    visits = await Visit.filter(vehicle_id__in=vehicle_ids).order_by("-left_at").limit(3) \
        if vehicle_ids else []
    plates = {v.id: v.plate or v.model for v in vehicles}
    earlier = await Ticket.filter(customer_id=customer.id).exclude(id=ticket.id) \
        .order_by("-created_at").limit(5)
    handler = await Staff.get_or_none(id=ticket.handler_id) if ticket.handler_id else None
    role = (level_name(svc, handler.role) if str(handler.role) in tickets.LEVELS
            else handler.role) if handler else ""
    return await render_off_loop(
        svc.scripts.render, "staff_ticket_card", LANG,
        t={
            "number": ticket.number, "category": category(svc, ticket.category),
            "level": level_name(svc, ticket.level), "major": ticket.major,
            "state": label(f"state_{ticket.state}", LANG),
            "channel": label(f"channel_{ticket.channel}", LANG),
            "created": local(ticket.created_at, svc),
            "description": short(ticket.description, limit),
            "first_due": local(ticket.first_answer_due, svc),
            "first_answered": local(ticket.first_answered_at, svc),
            "handler_due": local(ticket.handler_answer_due, svc),
            "due": local(ticket.due_at, svc),
            "handler": f"{handler.name}（{role}）" if handler else "",
            "resolution": short(ticket.resolution, limit),
            "improvement": short(ticket.improvement, limit),
            "score": ticket.handling_score,
        },
        c={"name": customer.name, "phone": customer.phone,
           "linked": customer.telegram_chat_id is not None},
        vehicles=[{"model": v.model, "plate": v.plate, "vin": v.vin,
                   "delivered": local(v.delivered_at, svc)[:10]} for v in vehicles],
        visits=[f"{local(v.left_at, svc)[:10]} {v.kind} {plates.get(v.vehicle_id, '')} "
                f"{v.advisor}".strip() for v in visits],
        scores=await _recent_scores(svc, customer.id),
        earlier=[f"{e.number} {category(svc, e.category)} {label(f'state_{e.state}', LANG)}"
                 for e in earlier],
    )
