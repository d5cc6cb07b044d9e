"""The one sender: every Bot API call that sends, edits, answers a callback or manages a topic.

Nothing else in ``bot/`` calls those methods (``tests/test_sender.py`` fails if one does), so
Telegram's limits hold for everything carebot says (:mod:`bot.delivery.limits`), and every
call gets the same answer to trouble:

- 429: wait ``retry_after`` (that chat only, unless 429s cluster) and try again;
- a network error, a timeout or a 5xx: try again after 0.5 s, 1 s, 2 s ... ;
- 403: the owner blocked the bot: they are marked unreachable, nothing is retried (from
  the staff group: recorded for a person);
- 400, or any other refusal (a migrated chat, a bad token): recorded, not retried ("message
  is not modified" is not a failure: the edit is already there).

A call that may wait is retried, and may wait for the limits, until its deadline: a reply
the owner waits for ``CAREBOT_REPLY_DEADLINE`` (30 s), a staff post two minutes (the group's
minute may be full). What still could not be sent is recorded as a failed send, which staff
see on the console's Today page and in ``/metrics``: never only logged.
The outbox's own rows do their retrying in the database instead (``retry=False``: the
error comes back to the dispatcher, which reschedules the row).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.clock import Pace
from bot.delivery.limits import Lane, Limits

log = logging.getLogger(__name__)

T = TypeVar("T")
# A failed send is recorded by the app (bot/delivery/failures.py): lane, chat, method, why.
FailureRecorder = Callable[[Lane, "int | None", str, str], Awaitable[None]]
UnreachableMarker = Callable[[int], Awaitable[None]]

NOT_MODIFIED = "message is not modified"
STAFF_DEADLINE = 120.0  # seconds: a staff post may wait for the group's 20 a minute


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta: both work
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Sender:
    """Paced, retried Bot API calls; see the module's docstring for what each error does."""

    def __init__(self, bot: Bot, limits: Limits, *, deadline: float = 30.0,
                 record_failure: FailureRecorder | None = None,
                 mark_unreachable: UnreachableMarker | None = None) -> None:
        self.bot = bot
        self.limits = limits
        self.deadline = deadline
        self.record_failure = record_failure
        self.mark_unreachable = mark_unreachable
        #: counts for /metrics: sent by lane, 429s received, retries, failed sends
        self.stats: Counter[str] = Counter()


    @property
    def pace(self) -> Pace:
        return self.limits.pace

    # ------------------------------------------------------------------ the core

    async def call(self, lane: Lane, chat_id: int | None, method: str,
                   fn: Callable[[], Awaitable[T]], *, counts: bool = True,
                   retry: bool = True, deadline: float | None = None) -> T | None:
        """Run ``fn`` (one Bot API call) within the limits; None when it could not be done.

        ``counts``: a message, counted in the chat's and the global windows (edits, callback
        answers and topic changes are paced by retries only). ``retry=False``: one try, and
        the error is raised for the caller (the outbox) to handle."""
        give_up_at = self.pace.monotonic() + self._deadline(lane, deadline)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._once(lane, chat_id, fn, counts,
                                        give_up_at if retry else None)
            except TimeoutError:  # the limits would hold it past its deadline
                await self._failed(lane, chat_id, method, "held by Telegram's limits past "
                                   "its deadline")
                return None
            except RetryAfter as exc:
                wait = self._noted_429(exc, chat_id, method)
                if not retry:
                    raise
                if self.pace.monotonic() + wait > give_up_at:
                    await self._failed(lane, chat_id, method, f"429: {exc}")
                    return None
                self.stats["retries"] += 1
                if chat_id is None or not counts:
                    await self.pace.sleep(wait)
            except Forbidden as exc:
                await self._noted_forbidden(chat_id)
                if not retry:
                    raise
                await self._said_forbidden(lane, chat_id, method, exc)
                return None
            except BadRequest as exc:
                if NOT_MODIFIED in str(exc):
                    return None
                if not retry:
                    raise
                await self._failed(lane, chat_id, method, f"400: {exc}")
                return None
            except NetworkError as exc:  # timeouts, 5xx, dropped connections
                if not retry:
                    raise
                backoff = min(0.5 * 2 ** (attempt - 1), 8.0)
                if self.pace.monotonic() + backoff > give_up_at:
                    await self._failed(lane, chat_id, method, f"{type(exc).__name__}: {exc}")
                    return None
                self.stats["retries"] += 1
                # Telegram failing is said once, by the HTTP layer's record (delivery/health)
                log.debug("%s to %s: %s; trying again in %gs", method, chat_id,
                          type(exc).__name__, backoff)
                await self.pace.sleep(backoff)
            except TelegramError as exc:  # a migrated chat, a conflict, a bad token: a person
                if not retry:
                    raise
                await self._failed(lane, chat_id, method, f"{type(exc).__name__}: {exc}")
                return None

    def _deadline(self, lane: Lane, deadline: float | None) -> float:
        """How long a call may take: the staff lane waits longer (it is never urgent)."""
        if deadline is not None:
            return deadline
        return self.deadline if lane is not Lane.STAFF else max(self.deadline, STAFF_DEADLINE)

    def _noted_429(self, exc: RetryAfter, chat_id: int | None, method: str) -> float:
        """A 429 counted and kept by the limits; the seconds Telegram asks to wait."""
        wait = retry_seconds(exc)
        self.stats["429"] += 1
        if chat_id is not None:
            self.limits.retry_after(chat_id, wait)
        log.warning("%s to %s: 429, retry after %gs", method, chat_id, wait)
        return wait

    async def _noted_forbidden(self, chat_id: int | None) -> None:
        self.stats["forbidden"] += 1
        if chat_id is not None and chat_id > 0 and self.mark_unreachable is not None:
            await self.mark_unreachable(chat_id)  # the owner blocked the bot

    async def _said_forbidden(self, lane: Lane, chat_id: int | None, method: str,
                              exc: Forbidden) -> None:
        if chat_id is not None and chat_id > 0:
            log.info("%s to %s: forbidden (%s)", method, chat_id, exc)
        else:  # the staff group removed the bot, or a right is missing: a person
            await self._failed(lane, chat_id, method, f"403: {exc}")

    async def _once(self, lane: Lane, chat_id: int | None, fn: Callable[[], Awaitable[T]],
                    counts: bool, deadline: float | None) -> T:
        if chat_id is None or not counts:
            result = await fn()
        else:
            async with self.limits.sending(chat_id, lane, deadline=deadline):
                result = await fn()
            self.stats[f"sent_{lane.name.lower()}"] += 1
        return result

    async def _failed(self, lane: Lane, chat_id: int | None, method: str, why: str) -> None:
        self.stats["failed"] += 1
        log.error("%s to %s not sent (%s lane): %s", method, chat_id, lane.name, why)
        if self.record_failure is not None:
            await self.record_failure(lane, chat_id, method, why)

    # ------------------------------------------------------------------ the calls

    async def text(self, chat_id: int, text: str, *, lane: Lane = Lane.REPLY,
                           retry: bool = True, **kwargs: Any) -> Message | None:
        return await self.call(lane, chat_id, "sendMessage",
                               lambda: self.bot.send_message(chat_id, text, **kwargs),
                               retry=retry)

    async def photo(self, chat_id: int, photo: Any, *, lane: Lane = Lane.REPLY,
                         **kwargs: Any) -> Message | None:
        return await self.call(lane, chat_id, "sendPhoto",
                               lambda: self.bot.send_photo(chat_id, photo, **kwargs))

    async def document(self, chat_id: int, data: bytes, filename: str, *,
                       lane: Lane = Lane.STAFF, **kwargs: Any) -> Message | None:
        """A file (a report's CSV) sent as a document named ``filename``."""
        return await self.call(
            lane, chat_id, "sendDocument",
            lambda: self.bot.send_document(chat_id, InputFile(data, filename=filename),
                                           **kwargs))

    async def copy(self, chat_id: int, from_chat_id: int, message_id: int, *,
                           lane: Lane = Lane.REPLY, **kwargs: Any) -> Any:
        """A message copied as it is (text, photo, voice note, sticker, location...) without
        a "forwarded from" header: how media is relayed between an owner and the staff
        group. Telegram's ``MessageId`` of the copy, or None."""
        return await self.call(
            lane, chat_id, "copyMessage",
            lambda: self.bot.copy_message(chat_id, from_chat_id, message_id, **kwargs))

    async def edit_text(self, chat_id: int, message_id: int, text: str, *,
                                lane: Lane = Lane.REPLY, **kwargs: Any) -> Any:
        return await self.call(
            lane, chat_id, "editMessageText",
            lambda: self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                               **kwargs),
            counts=False)

    async def edit_markup(self, chat_id: int, message_id: int,
                                        reply_markup: Any = None, *,
                                        lane: Lane = Lane.REPLY) -> Any:
        return await self.call(
            lane, chat_id, "editMessageReplyMarkup",
            lambda: self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id,
                                                       reply_markup=reply_markup),
            counts=False)

    async def answer_callback(self, query_id: str, text: str | None = None, *,
                              show_alert: bool = False) -> bool:
        """Stop the button's spinner (and show ``text``); False if Telegram would not."""
        done = await self.call(
            Lane.REPLY, None, "answerCallbackQuery",
            lambda: self.bot.answer_callback_query(query_id, text=text, show_alert=show_alert),
            counts=False)
        return bool(done)

    async def open_topic(self, chat_id: int, name: str, *,
                                 lane: Lane = Lane.STAFF, **kwargs: Any) -> Any:
        return await self.call(lane, chat_id, "createForumTopic",
                               lambda: self.bot.create_forum_topic(chat_id, name, **kwargs))

    async def rename_topic(self, chat_id: int, thread_id: int, *, lane: Lane = Lane.STAFF,
                               **kwargs: Any) -> Any:
        return await self.call(lane, chat_id, "editForumTopic",
                               lambda: self.bot.edit_forum_topic(chat_id, thread_id, **kwargs),
                               counts=False)

    async def close_topic(self, chat_id: int, thread_id: int, *,
                                lane: Lane = Lane.STAFF) -> Any:
        return await self.call(lane, chat_id, "closeForumTopic",
                               lambda: self.bot.close_forum_topic(chat_id, thread_id),
                               counts=False)

    async def reopen_topic(self, chat_id: int, thread_id: int, *,
                                 lane: Lane = Lane.STAFF) -> Any:
        return await self.call(lane, chat_id, "reopenForumTopic",
                               lambda: self.bot.reopen_forum_topic(chat_id, thread_id),
                               counts=False)
