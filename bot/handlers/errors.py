"""What goes wrong is told to staff as a notice (a row, sent once, retried), not only logged.

An update handled from the inbox that keeps failing is parked and told once
(:func:`report_parked`); any other error (an update outside the inbox, a handler error PTB
reports) is told by :func:`report_error`, once per kind of error per hour so a broken
dependency does not flood the group. The text names ids and the error's type, never what
an owner wrote.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.delivery import notices
from bot.services import Services, services_of
from bot.texts import DEFAULT_LANGUAGE
from db.models import InboxUpdate

log = logging.getLogger(__name__)


async def report_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    svc = services_of(context)
    chat = svc.settings.staff_chat_id
    if chat is None:
        return
    where = ""
    if isinstance(update, Update) and update.effective_user:
        where = svc.scripts.label("ops_error_where", DEFAULT_LANGUAGE,
                                  user=update.effective_user.id)
    kind = type(context.error).__name__
    text = svc.scripts.label("ops_error_alert", DEFAULT_LANGUAGE, where=where, error=kind)
    hour = svc.clock.now().strftime("%Y%m%d%H")
    await notices.tell(svc, f"error:{kind}:{hour}", [chat], text)


async def report_parked(svc: Services, row: InboxUpdate) -> None:
    """Once per parked update (and once more if it is parked again after a retry by hand):
    staff learn that an owner's message is waiting for a person."""
    chat = svc.settings.staff_chat_id
    if chat is None:
        return
    text = svc.scripts.label(
        "ops_parked_alert", DEFAULT_LANGUAGE, update=row.update_id, kind=row.kind,
        chat=row.chat_key, attempts=row.attempts, error=row.last_error.partition(":")[0],
        row=row.id)
    parked_at = svc.clock.now().strftime("%Y%m%d%H%M%S")
    await notices.tell(svc, f"parked:{row.update_id}:{parked_at}", [chat], text)
