"""A questionnaire in Telegram (issue 16 point 2): the questions one at a time with buttons
and Skip, each answer stored, resumed where the owner left off (their next button press,
a typed reply or /survey), and at the end the overall score recorded as the survey's Score,
so the low-score path, tickets and KPIs go on as for a single score (bot/handlers/survey.py).

The first question comes with the follow-up itself (bot.surveys.handover's composer).
Where the survey stands is read from its stored answers, never from chat state.
"""

from __future__ import annotations

import logging
from datetime import datetime

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bot import owners, surveys
from bot.handlers import buttons
from bot.handlers import survey as survey_handlers
from bot.handlers.owner import log_in
from bot.keyboards import keyboard_or_none
from bot.services import Services, services_of
from bot.surveys import answers
from bot.surveys.handover import answer_labels, question_text
from bot.surveys.questionnaire import SCALE_10, Questionnaire
from db.models import Customer, Touchpoint

log = logging.getLogger(__name__)

TEXT_ROUTE_PRIORITY = 19  # after mileage (15), before single-score survey replies (20)


async def ask(svc: Services, customer: Customer, tp: Touchpoint, form: Questionnaire,
              index: int) -> None:
    """Send question ``index`` with its buttons (and keep it in the survey's log)."""
    rows = answers.question_buttons(tp.id, index, form, answer_labels(svc, customer.language))
    text = question_text(svc, customer.language, form, index)
    await survey_handlers.send(svc, customer, text, rows=rows, touchpoint_id=tp.id)


async def go_on(svc: Services, customer: Customer, tp: Touchpoint, form: Questionnaire,
                now: datetime) -> None:
    """The next unanswered question, or, when none is left, the overall score recorded and
    the owner answered as after a single score (thanks, or the low-score questions)."""
    index = await answers.next_index(tp.id, form)
    if index is not None:
        await ask(svc, customer, tp, form, index)
        return
    overall = await answers.overall_of(tp.id, form)
    if overall is None:  # every question skipped: nothing to score
        await survey_handlers.send(svc, customer, svc.scripts.label(
            "survey_all_skipped", customer.language, name=customer.name,
            phone=svc.settings.dealer_phone), touchpoint_id=tp.id)
        return
    rules = svc.rules.surveys
    result = await surveys.record_score(tp.id, customer, overall, now=now, rules=rules,
                                        source="answers")
    if result.outcome in (surveys.Outcome.NEW, surveys.Outcome.CHANGED):
        await survey_handlers.after_score(svc, customer, result, now, rules)


async def _open(svc: Services, customer: Customer, tp_id: int, now: datetime
                ) -> tuple[Touchpoint, Questionnaire] | None:
    """The owner's open, unfinished questionnaire survey with this id (else None)."""
    tp = await surveys.survey_of(tp_id, customer.id)
    if tp is None or not surveys.is_open(tp.sent_at, now, svc.rules.surveys):
        return None
    form = answers.questionnaire_of(tp, customer.language, svc.settings)
    if form is None or await surveys.is_answered(tp.id):
        return None
    return tp, form


async def button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An ``sq:`` button: an answer to one question (or Skip)."""
    svc = services_of(context)
    query = update.callback_query
    assert query is not None and query.data is not None
    cb = answers.parse_callback(query.data)
    customer = await owners.customer_for_user(query.from_user.id)
    if cb is None or customer is None:
        await buttons.answer(svc, query)
        return
    await log_in(update, svc, customer, "button", query.data)
    now = svc.clock.now()
    found = await _open(svc, customer, cb.touchpoint_id, now)
    if found is None:
        key = "survey_locked" if await surveys.is_answered(cb.touchpoint_id) else "survey_closed"
        await buttons.answer(svc, query, svc.scripts.label(key, customer.language))
        await buttons.edit_markup(svc, query)
        return
    tp, form = found
    if cb.index >= len(form.questions):
        await buttons.answer(svc, query)
        return
    key = form.questions[cb.index].key
    was_next = await answers.next_index(tp.id, form) == cb.index
    await answers.record(tp, form, key, cb.choice, now=now)
    await buttons.answer(svc, query, svc.scripts.label("survey_question_recorded",
                                                       customer.language))
    # the question's step is over: its keyboard becomes the answer alone, ticked
    ticked = answers.question_buttons(tp.id, cb.index, form,
                                      answer_labels(svc, customer.language),
                                      chosen=cb.choice or "skip")
    rows = [[b for row in ticked for b in row if b[1] == query.data]]
    if query.message is not None and query.message.message_id == tp.telegram_message_id:
        rows += [row for footer in svc.dispatcher.footers for row in footer(tp, customer)]
    if buttons.current_data(query) != [data for row in rows for _, data in row]:
        await buttons.edit_markup(svc, query, keyboard_or_none(rows))
    if was_next or await answers.next_index(tp.id, form) is None:
        await go_on(svc, customer, tp, form, now)


async def _current(svc: Services, customer: Customer, now: datetime
                   ) -> tuple[Touchpoint, Questionnaire] | None:
    tp = await surveys.open_survey_for(customer.id, now, svc.rules.surveys)
    return None if tp is None else await _open(svc, customer, tp.id, now)


async def survey_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/survey: back to the open questionnaire, at the first question not yet answered."""
    svc = services_of(context)
    user = update.effective_user
    assert user is not None
    customer = await owners.customer_for_user(user.id)
    if customer is None:
        return
    await log_in(update, svc, customer, "command", "/survey")
    now = svc.clock.now()
    found = await _current(svc, customer, now)
    if found is None:
        await survey_handlers.send(svc, customer,
                                   svc.scripts.label("survey_none_open", customer.language))
        return
    await go_on(svc, customer, *found, now)


async def typed(update: Update, context: ContextTypes.DEFAULT_TYPE,
                customer: Customer | None) -> bool:
    """Text while a questionnaire is under way: a number answers the current 1-10
    question; anything else is kept with the survey and the current question asked again."""
    msg = update.effective_message
    if customer is None or msg is None or not (msg.text or "").strip():
        return False
    svc = services_of(context)
    now = svc.clock.now()
    found = await _current(svc, customer, now)
    if found is None:
        return False
    tp, form = found
    index = await answers.next_index(tp.id, form)
    if index is None:
        return False
    text = (msg.text or "").strip()
    question = form.questions[index]
    score = surveys.parse_reply(text).score
    if score is not None and question.scale == SCALE_10:
        await answers.record(tp, form, question.key, str(score), now=now, source="text")
    else:  # nothing said is lost: kept with the survey, a real comment offered to staff
        await surveys.keep_comment(tp, customer, text, now=now, services=svc,
                                   offer_to_staff=len(text) > survey_handlers.LONG_TEXT)
    await go_on(svc, customer, tp, form, now)
    return True


def register(application: Application, services: Services) -> None:  # type: ignore[type-arg]
    application.add_handler(CallbackQueryHandler(button_pressed, pattern=r"^sq:"))
    application.add_handler(CommandHandler("survey", survey_command,
                                           filters=filters.ChatType.PRIVATE))
    services.add_text_route(TEXT_ROUTE_PRIORITY, typed)
