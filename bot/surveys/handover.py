"""Low scores handed over: to the complaint workflow as a ticket when there is one, else
to staff in their chat; comments offered to staff; the survey kinds' composer."""

from __future__ import annotations

import hashlib
import importlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.delivery import notices
from bot.delivery.dispatcher import Outgoing, compose
from bot.owners import get_conversation
from bot.surveys import answers
from bot.surveys.questionnaire import Questionnaire
from bot.surveys.records import log_survey_message
from bot.surveys.replies import score_buttons
from bot.surveys.rules import LOG_COMMENT, STATE_CATEGORY, STATE_COMMENT, SURVEY_KINDS
from bot.templating import render_off_loop
from db.models import Customer, Direction, Score, Ticket, Touchpoint, Vehicle

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


def _tickets() -> Any | None:
    """bot.tickets (issue 5) if it is there; the survey works without it (staff are told)."""
    try:
        return importlib.import_module("bot.tickets")
    except ImportError:
        return None


async def notify_staff(services: Services, key: str, text: str) -> bool:
    """A plain message to the staff chat, owed as a row (``key`` names its cause: once);
    False when there is no staff chat or it could not be sent now (it is tried again)."""
    chat_id = services.settings.staff_chat_id
    if chat_id is None:
        log.warning("no CAREBOT_STAFF_CHAT_ID: staff could not be told (%s)", key)
        return False
    try:
        return await notices.tell(services, key, [chat_id], text)
    except Exception:  # the caller's flow must go on; the score is stored
        log.exception("could not tell staff (%s)", key)
        return False


def _staff_label(services: Services, key: str, **fmt: Any) -> str:
    return services.scripts.label(key, "zh_CN", **fmt)


def score_summary(services: Services, score: Score, customer: Customer) -> str:
    """One line for staff and the ticket: who scored what, about what, why."""
    category = (services.scripts.label(f"survey_cat_{score.category}", "zh_CN") if score.category
                else services.scripts.label("survey_cat_none", "zh_CN"))
    return _staff_label(
        services, "survey_staff_low", name=customer.name, phone=customer.phone,
        score=score.score, rates=services.scripts.label(f"survey_rates_{score.rates}", "zh_CN"),
        category=category, advisor=score.advisor or "-", comment=score.comment or "-",
    )


HANDING_LEASE = timedelta(minutes=10)


async def hand_over(score: Score, customer: Customer, *, now: datetime,
                    services: Services) -> str:
    """A low score goes to the complaint workflow (a ticket); if that is not possible, staff
    are told in their chat. Returns the handover recorded ("ticket:<id>" or "staff")."""
    claimed = await Score.filter(id=score.id, handover="pending").update(handover="handing")
    if not claimed:  # someone else (the timer, a double tap) is already on it
        fresh = await Score.get(id=score.id)
        return fresh.handover
    summary = score_summary(services, score, customer)
    handover = "staff"
    tickets = _tickets()
    existing = await Ticket.filter(score_id=score.id).first()
    if existing is not None:  # a crash after opening it, before recording it: no second one
        handover = f"ticket:{existing.id}"
    elif tickets is not None:
        try:
            ticket = await tickets.open_ticket(
                customer_id=customer.id, vehicle_id=score.vehicle_id, channel="survey",
                category=score.category or "other", description=score.comment or summary,
                now=now, services=services, score_id=score.id,
            )
            handover = f"ticket:{ticket.id}"
        except Exception:  # the owner's complaint must reach someone
            log.exception("opening a ticket for score %s failed; telling staff instead", score.id)
    if handover == "staff":
        await notify_staff(services, f"score:{score.id}:handover", summary)
    await Score.filter(id=score.id).update(handover=handover)
    score.handover = handover
    return handover


async def rated_handling(score: Score, customer: Customer, *, now: datetime,
                         services: Services) -> bool:
    """A score of how a complaint was handled goes back to the ticket, which reopens or
    closes (and tells the owner so). Without the complaints module, or when the ticket was
    not waiting for a rating, staff are told. True when the ticket moved."""
    tickets = _tickets()
    if tickets is not None and score.ticket_id is not None:
        before = await Ticket.get_or_none(id=score.ticket_id)
        try:
            await tickets.handling_rated(score.ticket_id, score.score, now=now, services=services)
        except Exception:  # the rating is stored; staff must still hear of it
            log.exception("handling_rated(%s, %s) failed", score.ticket_id, score.score)
        else:
            after = await Ticket.get_or_none(id=score.ticket_id)
            if before is not None and after is not None and after.state != before.state:
                return True
    await notify_staff(services, f"score:{score.id}:handling", _staff_label(
        services, "survey_staff_handling", name=customer.name, phone=customer.phone,
        score=score.score, ticket=score.ticket_id or "-"))
    return False


async def has_active_ticket(customer_id: int) -> bool:
    """Whether the owner has a complaint being handled (their free text belongs there)."""
    tickets = _tickets()
    if tickets is None:
        return False
    return await tickets.active_ticket_of(customer_id) is not None


async def hand_over_stale(*, now: datetime, services: Services) -> int:
    """Low scores whose owner never finished (category, comment) go over anyway: a complaint
    must not wait on a button nobody presses."""
    rules = services.rules.surveys
    # A hand-over interrupted by a crash ("handing" long after) is taken up again.
    await Score.filter(handover="handing", superseded_at__isnull=True,
                       created_at__lte=now - rules.handover_after - HANDING_LEASE
                       ).update(handover="pending")
    stale = await Score.filter(handover="pending", superseded_at__isnull=True,
                               created_at__lte=now - rules.handover_after).select_related(
                                   "customer").limit(500)
    for score in stale:
        await hand_over(score, score.customer, now=now, services=services)
        conv = await get_conversation(score.customer.telegram_user_id or 0)
        if conv is not None and conv.state in (STATE_CATEGORY, STATE_COMMENT) and \
                conv.data.get("touchpoint_id") == score.touchpoint_id:
            await conv.delete()
    return len(stale)


async def keep_comment(tp: Touchpoint, customer: Customer, text: str, *, now: datetime,
                       services: Services, offer_to_staff: bool = True) -> None:
    """Text that is not a score, written while a survey is open, is kept with the survey (it
    is never lost); a real comment (not a stray "abc") is also offered to staff."""
    await log_survey_message(customer=customer, touchpoint_id=tp.id, kind=LOG_COMMENT,
                             text=text, direction=Direction.IN, now=now)
    if not offer_to_staff:
        return
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]  # the same comment: told once
    await notify_staff(services, f"survey-comment:{tp.id}:{digest}", _staff_label(
        services, "survey_staff_comment", name=customer.name, phone=customer.phone,
        rates=services.scripts.label(f"survey_rates_{SURVEY_KINDS[tp.kind]}", "zh_CN"),
        text=text))


def make_composer(services: Services) -> Any:
    """The composer of every survey kind: the kind's script plus the 1-10 keyboard, or the
    first question of its questionnaire (bot.surveys.answers)."""
    async def composer(tp: Touchpoint, customer: Customer, vehicle: Vehicle | None) -> Outgoing:
        form = answers.questionnaire_of(tp, customer.language, services.settings)
        out = await render_off_loop(compose, tp, customer, vehicle, services.scripts,
                                    services.settings,
                                    questions=len(form.questions) if form else 0)
        if form is None:
            return Outgoing(text=out.text, buttons=score_buttons(tp.id))
        # a questionnaire: the first question under the script, the others one at a time
        labels = answer_labels(services, customer.language)
        text = out.text + "\n\n" + question_text(services, customer.language, form, 0)
        return Outgoing(text=text, buttons=answers.question_buttons(tp.id, 0, form, labels))

    return composer


def answer_labels(services: Services, lang: str) -> dict[str, str]:
    """The words on a question's buttons (满意/一般/不满意, Skip), from the survey labels."""
    return {c: services.scripts.label(f"survey_sat_{c}", lang)
            for c in ("satisfied", "neutral", "dissatisfied", "skip")}


def question_text(services: Services, lang: str, form: Questionnaire, index: int) -> str:
    """"(2/7) question" in the owner's language."""
    return services.scripts.label("survey_question", lang, n=index + 1,
                                  total=len(form.questions), text=form.questions[index].text)
