"""A pressed inline button: its answer and the edits of its message, through the sender.

PTB's own shortcuts on a callback query would reach Telegram around the sender; the
answer and the edits here go through :class:`bot.delivery.sender.Sender` (paced, retried,
recorded), like every other Bot API call.

**A finished step's buttons** (issue 18 point 6): when the owner answers, the step's
keyboard is removed or replaced (by the chosen answer alone, or the next step's buttons)
on the same message. A button pressed later from a keyboard that is no longer there (a
second device, a chat not refreshed) is answered with a short, friendly line and acts on
nothing: :func:`stale_guard`, run before every other handler, compares the pressed data
with the message's keyboard as Telegram has it now (a callback carries the message as it
is, with its current keyboard).
"""

from __future__ import annotations

import logging
from itertools import chain

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import owners
from bot.services import Services, services_of
from bot.texts import normalize_language

log = logging.getLogger(__name__)

STALE_LABEL = "button_done"
GUARD_GROUP = -100  # PTB runs one handler per group: the guard has one to itself


async def answer(svc: Services, query: CallbackQuery, text: str | None = None, *,
                 show_alert: bool = False) -> None:
    """Stop the button's spinner, showing ``text`` (as an alert if asked)."""
    await svc.sender.answer_callback(query.id, text, show_alert=show_alert)


async def edit_text(svc: Services, query: CallbackQuery, text: str, *,
                    reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace the text (and keyboard: none unless given) of the message the button is on.
    No message (an inline message, which carebot never sends): nothing to edit."""
    msg = query.message
    if msg is None:
        return
    await svc.sender.edit_text(msg.chat.id, msg.message_id, text,
                                       reply_markup=reply_markup)


async def edit_markup(svc: Services, query: CallbackQuery,
                      reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace (by default: remove) the keyboard of the message the button is on."""
    msg = query.message
    if msg is None:
        return
    await svc.sender.edit_markup(msg.chat.id, msg.message_id, reply_markup)


def current_data(query: CallbackQuery) -> list[str] | None:
    """The callback data of the keyboard the message shows now; None when it cannot be
    known (a message too old for Telegram to send, or none)."""
    msg = query.message
    if not isinstance(msg, Message):
        return None
    markup = msg.reply_markup
    if markup is None:
        return []
    return [str(b.callback_data) for b in chain.from_iterable(markup.inline_keyboard)
            if b.callback_data is not None]


def is_stale(query: CallbackQuery) -> bool:
    """The pressed button is no longer on its message: its step is over."""
    shown = current_data(query)
    return shown is not None and query.data is not None and query.data not in shown


def without(query: CallbackQuery, data: str) -> InlineKeyboardMarkup | None:
    """The message's keyboard as it is now, less the button with ``data`` (and an emptied
    row); None when nothing is left."""
    msg = query.message
    markup = msg.reply_markup if isinstance(msg, Message) else None
    if markup is None:
        return None
    rows = [[b for b in row if b.callback_data != data] for row in markup.inline_keyboard]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


async def stale_guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Before every other handler: an owner's press on a button its message no longer
    shows gets a friendly line, and nothing else happens."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None or chat.type != ChatType.PRIVATE or not is_stale(query):
        return
    svc = services_of(context)
    customer = await owners.customer_for_user(query.from_user.id)
    lang = customer.language if customer is not None else normalize_language(
        query.from_user.language_code)
    log.info("stale button pressed in chat %s: answered, nothing done", chat.id)
    await answer(svc, query, svc.scripts.label(STALE_LABEL, lang))
    raise ApplicationHandlerStop
