"""One error handler: log with the traceback, then tell staff if a staff chat is set."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.services import services_of

log = logging.getLogger(__name__)


async def report_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    svc = services_of(context)
    if svc.settings.staff_chat_id is None:
        return
    where = ""
    if isinstance(update, Update) and update.effective_user:
        where = f" (from Telegram user {update.effective_user.id})"
    text = (f"⚠️ carebot hit an error{where}: "
            f"<code>{html.escape(type(context.error).__name__)}: "
            f"{html.escape(str(context.error))[:500]}</code>")
    try:
        await context.bot.send_message(svc.settings.staff_chat_id, text, parse_mode="HTML")
    except TelegramError:
        log.warning("could not alert the staff chat about the error", exc_info=True)
