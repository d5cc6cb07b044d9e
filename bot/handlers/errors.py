"""One error handler: log with the traceback, then tell staff if a staff chat is set."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.delivery.limits import Lane
from bot.services import Services, services_of
from db.models import InboxUpdate

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
    if await svc.sender.send_message(svc.settings.staff_chat_id, text, lane=Lane.STAFF,
                                     parse_mode="HTML") is None:
        log.warning("could not alert the staff chat about the error")


async def report_parked(svc: Services, row: InboxUpdate) -> None:
    """Once per parked update: staff learn that an owner's message is waiting for a person."""
    if svc.settings.staff_chat_id is None:
        return
    error = row.last_error.partition(":")[0]
    text = (f"⚠️ carebot could not handle update {row.update_id} ({html.escape(row.kind)}) "
            f"from chat {row.chat_key} after {row.attempts} attempts "
            f"(<code>{html.escape(error)}</code>). It is kept: "
            f"<code>carebot inbox show {row.id}</code>, then "
            f"<code>carebot inbox retry {row.id}</code>.")
    await svc.sender.send_message(svc.settings.staff_chat_id, text, lane=Lane.STAFF,
                                  parse_mode="HTML")
