"""Survey handlers: score buttons, typed scores, the low-score category and comment, stickers.

Thin: each turns an update into calls of ``bot.surveys`` and answers with labels (plain
text). Dialogue state (waiting for a category or a comment) lives in the database
(``bot.owners.set_conversation``), so a restart continues it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import improvement, owners, surveys
from bot.handlers import buttons
from bot.handlers.owner import log_in
from bot.keyboards import keyboard_or_none
from bot.services import Services, services_of
from bot.surveys import Outcome, RecordResult, SurveyRules
from db.models import Customer, Direction, ScoreRates, Touchpoint

log = logging.getLogger(__name__)

TEXT_ROUTE_PRIORITY = 20
LONG_TEXT = 30  # characters: a reply this long is a comment, worth a person's reading
HANDOVER_TICK_SECONDS = 60


def _markup(rows: list[list[tuple[str, str]]] | None) -> InlineKeyboardMarkup | None:
    return keyboard_or_none(rows)


async def send(svc: Services, customer: Customer, text: str, *,
                rows: list[list[tuple[str, str]]] | None = None,
                touchpoint_id: int | None = None, kind: str = "survey") -> int | None:
    """Say something to the owner (plain text) and keep it in the log, tied to the survey
    (what could not be sent is not: the sender recorded it); Telegram's message id."""
    chat_id = customer.telegram_chat_id
    if chat_id is None:
        return None
    sent = await svc.sender.text(chat_id, text, reply_markup=_markup(rows))
    if sent is None:
        return None
    await surveys.log_survey_message(
        customer=customer, touchpoint_id=touchpoint_id, kind=kind, text=text,
        direction=Direction.OUT, now=svc.clock.now(), telegram_message_id=sent.message_id,
    )
    return sent.message_id


async def _drop_keyboard(svc: Services, customer: Customer, data: dict[str, Any]) -> None:
    """The question's buttons go once it is answered in words (its step is over): the
    message id the dialogue's row kept as ``keyboard``."""
    message_id = data.get("keyboard")
    if isinstance(message_id, int) and customer.telegram_chat_id is not None:
        await svc.sender.edit_markup(customer.telegram_chat_id, message_id, None)


async def _show_chosen(svc: Services, customer: Customer, tp: Touchpoint,
                       score: int, message_id: int | None = None) -> None:
    """The survey's keyboard becomes the chosen score alone, ticked (the step is over: a
    change of mind is typed, within the change window); the rows other features put under
    it (Contact us) stay. Deleted by the owner: the sender records it; already showing it:
    nothing happens."""
    target = message_id or tp.telegram_message_id
    if target is None or customer.telegram_chat_id is None:
        return
    rows = surveys.chosen_score_button(tp.id, score)
    rows += [row for footer in svc.dispatcher.footers for row in footer(tp, customer)]
    await svc.sender.edit_markup(customer.telegram_chat_id, target, _markup(rows))


def _label(svc: Services, key: str, customer: Customer, **fmt: Any) -> str:
    return svc.scripts.label(key, customer.language, **fmt)


async def after_score(svc: Services, customer: Customer, result: RecordResult,
                       now: datetime, rules: SurveyRules) -> None:
    """What the owner hears after a new or changed answer, and who else is told."""
    score, tp = result.score, result.touchpoint
    assert score is not None and tp is not None
    phone, name = svc.settings.dealer_phone, customer.name
    if result.outcome is Outcome.CHANGED:
        await send(svc, customer, _label(svc, "survey_changed", customer, score=score.score),
                    touchpoint_id=tp.id)
    if score.rates == ScoreRates.COMPLAINT:
        if await surveys.rated_handling(score, customer, now=now, services=svc):
            return  # the ticket reopened or closed and told the owner itself
        threshold = getattr(svc.settings, "handling_score_threshold", rules.low_threshold)
        key = "survey_thanks_handling_low" if score.score <= threshold else "survey_thanks_handling"
        await send(svc, customer, _label(svc, key, customer, score=score.score, phone=phone),
                    touchpoint_id=tp.id)
        return
    if result.start_low_flow:
        labels = {c: _label(svc, f"survey_cat_{c}", customer) for c in surveys.CSI_CATEGORIES}
        asked = await send(svc, customer,
                           _label(svc, "survey_low_ask_category", customer, name=name),
                           rows=surveys.category_buttons(tp.id, labels), touchpoint_id=tp.id)
        await owners.set_conversation(customer.telegram_user_id or 0, surveys.STATE_CATEGORY,
                                      {"touchpoint_id": tp.id, "keyboard": asked})
        return
    if result.outcome is Outcome.CHANGED:
        return  # the change was confirmed; a low case already handed over stays where it is
    if surveys.is_delighted(score.score):
        text = _label(svc, "survey_thanks_delighted", customer, name=name, score=score.score,
                      dealer=svc.settings.dealer_name)
        if rules.review_url:
            text += "\n" + _label(svc, "survey_review_link", customer, url=rules.review_url)
    else:
        text = _label(svc, "survey_thanks", customer, name=name, score=score.score,
                      phone=phone)
    # Once, after a good first answer: what could be better? (optional: Skip)
    text += "\n\n" + _label(svc, "survey_improve_ask", customer)
    asked = await send(svc, customer, text, touchpoint_id=tp.id, rows=improvement.skip_button(
        tp.id, _label(svc, "survey_improve_skip", customer)))
    await owners.set_conversation(customer.telegram_user_id or 0, improvement.STATE,
                                  {"touchpoint_id": tp.id, "asked_at": now.isoformat(),
                                   "keyboard": asked})


async def _improvement_text(svc: Services, customer: Customer, conv: Any, text: str,
                            now: datetime) -> bool:
    """The owner's next message after the question is their suggestion (kept with the
    score); a score typed instead goes on to the survey as usual."""
    await conv.delete()
    tp_id = conv.data.get("touchpoint_id")
    if not isinstance(tp_id, int) or not improvement.still_waiting(conv.data.get("asked_at"),
                                                                   now):
        return False
    if surveys.parse_reply(text).score is not None and len(text) <= LONG_TEXT:
        return False  # "9" again, or a new score: the survey's, not a suggestion
    await surveys.log_survey_message(customer=customer, touchpoint_id=tp_id,
                                     kind="survey_improvement", text=text,
                                     direction=Direction.IN, now=now)
    if await improvement.keep(tp_id, customer.id, text) is None:
        return False
    await send(svc, customer, _label(svc, "survey_improve_thanks", customer),
                touchpoint_id=tp_id)
    return True


async def improvement_skipped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """"Skip" under the question: nothing more is asked."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    await buttons.answer(svc, query)
    if improvement.parse_skip(query.data) is None:
        return
    await buttons.edit_markup(svc, query)
    conv = await owners.get_conversation(query.from_user.id)
    if conv is not None and conv.state == improvement.STATE:
        await conv.delete()


async def _finish_low(svc: Services, customer: Customer, touchpoint_id: int,
                      comment: str, now: datetime) -> bool:
    """The owner commented (or skipped): the case goes to complaints, the owner is thanked."""
    score = await surveys.current_score(touchpoint_id)
    if score is None or score.customer_id != customer.id or score.handover != "pending":
        return False
    if comment:
        await surveys.add_comment(score, comment)
    handover = await surveys.hand_over(score, customer, now=now, services=svc)
    if handover == "staff":  # a ticket acknowledges itself, with its number
        await send(svc, customer, _label(svc, "survey_low_done", customer,
                                          phone=svc.settings.dealer_phone),
                    touchpoint_id=touchpoint_id)
    return True


async def _clear_state(user_id: int) -> None:
    conv = await owners.get_conversation(user_id)
    if conv is not None and conv.state in (surveys.STATE_CATEGORY, surveys.STATE_COMMENT):
        await conv.delete()


async def _reask(svc: Services, customer: Customer, tp: Touchpoint,
                 rules: SurveyRules, *, kept: bool) -> None:
    """Explain the scale again, at most ``max_reasks`` times per survey; then stop asking.
    A long text that was passed to staff is still acknowledged."""
    if await surveys.reasks_so_far(tp.id) >= rules.max_reasks:
        if kept:
            await send(svc, customer, _label(svc, "survey_comment_kept", customer),
                        touchpoint_id=tp.id)
        return
    key = "survey_reask_kept" if kept else "survey_reask"
    await send(svc, customer, _label(svc, key, customer), touchpoint_id=tp.id,
                kind=surveys.LOG_REASK)


# --------------------------------------------------------------------------- buttons


async def button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any ``sv:`` button: a score, a CSI category, or "skip the comment"."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    cb = surveys.parse_callback(query.data)
    customer = await owners.customer_for_user(query.from_user.id)
    if cb is None or customer is None:
        await buttons.answer(svc, query)
        return
    await log_in(update, svc, customer, "button", query.data)
    now = svc.clock.now()
    rules = svc.rules.surveys
    if cb.action == "score":
        await _score_pressed(update, context, svc, customer, cb, now, rules)
    elif cb.action == "category":
        await _category_pressed(update, context, svc, customer, cb)
    else:
        await _skip_pressed(update, context, svc, customer, cb, now)


async def _score_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services,
                         customer: Customer, cb: surveys.SurveyCallback, now: datetime,
                         rules: SurveyRules) -> None:
    query = update.callback_query
    assert query is not None and cb.score is not None
    result = await surveys.record_score(cb.touchpoint_id, customer, cb.score, now=now,
                                        rules=rules, source="button")
    if result.outcome is Outcome.NOT_A_SURVEY:
        await buttons.answer(svc, query, _label(svc, "survey_not_yours", customer))
        return
    if result.outcome is Outcome.CLOSED:
        await buttons.answer(svc, query, _label(svc, "survey_closed", customer))
        await buttons.edit_markup(svc, query)
        return
    if result.outcome is Outcome.LOCKED:
        await buttons.answer(svc, query, _label(svc, "survey_locked", customer))
        return
    await buttons.answer(svc, query,
                         _label(svc, "survey_answer_recorded", customer, score=cb.score))
    if result.outcome is Outcome.SAME:
        return
    assert result.touchpoint is not None
    message_id = query.message.message_id if query.message else None
    await _show_chosen(svc, customer, result.touchpoint, cb.score, message_id)
    await after_score(svc, customer, result, now, rules)


async def _category_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services,
                            customer: Customer, cb: surveys.SurveyCallback) -> None:
    query = update.callback_query
    assert query is not None and cb.category is not None
    tp = await surveys.survey_of(cb.touchpoint_id, customer.id)
    if tp is None:
        await buttons.answer(svc, query, _label(svc, "survey_not_yours", customer))
        return
    score = await surveys.set_category(tp.id, cb.category)
    await buttons.answer(svc, query)
    if score is None:  # already with complaints, or no longer low: nothing to ask
        await buttons.edit_markup(svc, query)
        return
    category = _label(svc, f"survey_cat_{cb.category}", customer)
    await buttons.edit_text(svc, query, _label(svc, "survey_category_chosen", customer,
                                               name=customer.name, category=category))
    asked = await send(svc, customer, _label(svc, "survey_ask_comment", customer),
                       rows=surveys.skip_button(tp.id, _label(svc, "survey_skip_button",
                                                              customer)),
                       touchpoint_id=tp.id)
    await owners.set_conversation(customer.telegram_user_id or 0, surveys.STATE_COMMENT,
                                  {"touchpoint_id": tp.id, "keyboard": asked})


async def _skip_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services,
                        customer: Customer, cb: surveys.SurveyCallback, now: datetime) -> None:
    query = update.callback_query
    assert query is not None
    await buttons.answer(svc, query)
    await buttons.edit_markup(svc, query)
    await _clear_state(customer.telegram_user_id or 0)
    await _finish_low(svc, customer, cb.touchpoint_id, "", now)


# --------------------------------------------------------------------------- typed replies


async def survey_text(update: Update, context: ContextTypes.DEFAULT_TYPE,
                      customer: Customer | None) -> bool:
    """Text route: a comment on a low score, or a typed answer to the open survey."""
    msg, user = update.effective_message, update.effective_user
    if customer is None or msg is None or user is None:
        return False
    svc = services_of(context)
    if msg.sticker is not None:
        return await _sticker(svc, customer)
    text = (msg.text or msg.caption or "").strip()
    if not text:
        return False
    now = svc.clock.now()
    rules = svc.rules.surveys
    conv = await owners.get_conversation(user.id)
    if conv is not None and conv.state in (improvement.STATE, surveys.STATE_CATEGORY,
                                           surveys.STATE_COMMENT):
        await _drop_keyboard(svc, customer, conv.data)  # answered in words: the step is over
    if conv is not None and conv.state == improvement.STATE and \
            await _improvement_text(svc, customer, conv, text, now):
        return True
    if conv is not None and conv.state in (surveys.STATE_CATEGORY, surveys.STATE_COMMENT):
        await conv.delete()
        tp_id = conv.data.get("touchpoint_id")
        if isinstance(tp_id, int) and await _finish_low(svc, customer, tp_id, text, now):
            return True
    tp = await surveys.open_survey_for(customer.id, now, rules)
    if tp is None:
        return False
    parsed = surveys.parse_reply(text)
    if parsed.score is not None:
        result = await surveys.record_score(
            tp.id, customer, parsed.score, now=now, rules=rules, source="text",
            comment=text if parsed.in_sentence else "",
        )
        if result.outcome not in (Outcome.NEW, Outcome.CHANGED):
            return False
        await _show_chosen(svc, customer, tp, parsed.score)
        await after_score(svc, customer, result, now, rules)
        return True
    if await surveys.is_answered(tp.id):
        return False  # answered already: this text is not a survey reply
    if await surveys.has_active_ticket(customer.id):
        return False  # not a score: it belongs to the complaint being handled (relay route)
    await surveys.keep_comment(tp, customer, text, now=now, services=svc,
                               offer_to_staff=len(text) > LONG_TEXT)
    await _reask(svc, customer, tp, rules, kept=len(text) > LONG_TEXT)
    return True


async def _sticker(svc: Services, customer: Customer) -> bool:
    """A sticker is not a score: while a survey waits for one, explain the scale (within
    the limit) and take it; otherwise it is for a person (a conversation)."""
    rules = svc.rules.surveys
    tp = await surveys.open_survey_for(customer.id, svc.clock.now(), rules)
    if tp is None or await surveys.is_answered(tp.id):
        return False
    await _reask(svc, customer, tp, rules, kept=False)
    return True


# --------------------------------------------------------------------------- wiring


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    composer = surveys.make_composer(services)
    for kind in surveys.SURVEY_KINDS:
        services.dispatcher.composers[kind] = composer
    application.add_handler(CallbackQueryHandler(button_pressed, pattern=r"^sv:"))
    application.add_handler(CallbackQueryHandler(improvement_skipped, pattern=r"^si:"))
    services.add_text_route(TEXT_ROUTE_PRIORITY, survey_text)


async def _handover_tick(services: Services) -> None:
    try:
        n = await surveys.hand_over_stale(now=services.clock.now(), services=services)
    except Exception:  # a failed tick must not kill the scheduler
        log.exception("survey hand-over tick failed; the next tick will retry")
        return
    if n:
        log.info("handed %d unfinished low score(s) to complaints", n)


def schedule(scheduler: BaseScheduler, services: Services) -> None:
    scheduler.add_job(_handover_tick, "interval", seconds=HANDOVER_TICK_SECONDS,
                      args=[services], id="survey_handover", max_instances=1, coalesce=True)
