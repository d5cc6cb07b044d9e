"""A pressed inline button: its answer and the edits of its message, through the sender.

PTB's shortcuts (``query.answer()``, ``query.edit_message_text()``) would call Telegram
directly; these go through :class:`bot.delivery.sender.Sender` (paced, retried, recorded).
"""

from __future__ import annotations

from telegram import CallbackQuery, InlineKeyboardMarkup

from bot.services import Services


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
