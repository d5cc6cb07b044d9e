"""What goes wrong is told to staff as a notice (a row, sent once, retried), not only logged.

An update handled from the inbox that keeps failing is parked and told (:func:`report_parked`);
any other error (an update outside the inbox, a handler error PTB reports) is told by
:func:`report_error`. Both are rate-limited and digested (:mod:`bot.delivery.alerts`): the
first of a kind at once, the rest of the window counted and told once by
:func:`tell_digests` (a scheduler tick), so a broken dependency does not flood the group.
The texts name ids and the error's class, never what an owner wrote nor a secret.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.delivery import notices
from bot.delivery.alerts import ErrorDigest
from bot.services import Services, services_of
from bot.texts import DEFAULT_LANGUAGE
from db.models import InboxUpdate

log = logging.getLogger(__name__)

ERROR, PARKED = "error", "parked"  # the kinds' prefixes: "error:KeyError", "parked:KeyError"


def digest_of(svc: Services) -> ErrorDigest:
    """This process's windows (made on first use where ``create_app`` did not)."""
    if svc.alerts is None:
        svc.alerts = ErrorDigest(svc.settings.error_alert_minutes)
    return svc.alerts


async def report_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    svc = services_of(context)
    chat = svc.settings.staff_chat_id
    kind = type(context.error).__name__
    window = digest_of(svc).note(f"{ERROR}:{kind}", svc.clock.now())
    if chat is None or window is None:
        return
    where = ""
    if isinstance(update, Update) and update.effective_user:
        where = svc.scripts.label("ops_error_where", DEFAULT_LANGUAGE,
                                  user=update.effective_user.id)
    text = svc.scripts.label("ops_error_alert", DEFAULT_LANGUAGE, where=where, error=kind)
    await notices.tell(svc, f"{ERROR}:{kind}:{window.started:%Y%m%d%H%M%S}", [chat], text)


async def report_parked(svc: Services, row: InboxUpdate) -> None:
    """The first update parked with an error of a kind: staff learn that an owner's message
    is waiting for a person; the next ones of the window are counted for the digest."""
    error = row.last_error.partition(":")[0]
    window = digest_of(svc).note(f"{PARKED}:{error}", svc.clock.now())
    chat = svc.settings.staff_chat_id
    if chat is None or window is None:
        return
    text = svc.scripts.label(
        "ops_parked_alert", DEFAULT_LANGUAGE, update=row.update_id, kind=row.kind,
        chat=row.chat_key, attempts=row.attempts, error=error, row=row.id)
    await notices.tell(svc, f"{PARKED}:{row.update_id}:{window.started:%Y%m%d%H%M%S}",
                       [chat], text)


async def tell_digests(svc: Services) -> int:
    """Tell the windows that closed with errors not told yet, one message each; how many."""
    digests = digest_of(svc).due(svc.clock.now())
    chat = svc.settings.staff_chat_id
    if chat is None:
        return 0
    for digest in digests:
        prefix, _, error = digest.kind.partition(":")
        key = "ops_parked_digest" if prefix == PARKED else "ops_error_digest"
        text = svc.scripts.label(key, DEFAULT_LANGUAGE, count=digest.count, error=error,
                                 minutes=digest.minutes)
        log.info("error alerts: %d of %s in %d minutes told as one", digest.count,
                 digest.kind, digest.minutes)
        await notices.tell(svc, f"errors:{digest.kind}:{digest.started:%Y%m%d%H%M%S}",
                           [chat], text)
    return len(digests)
