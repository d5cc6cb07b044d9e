"""Updates on the emulated Telegram: queued in order, taken by long polling (getUpdates) or
delivered to a webhook (setWebhook, deleteWebhook, getWebhookInfo).

As on Telegram: getUpdates confirms what came before ``offset``, a newer poll ends an older
one with 409, and polling is refused while a webhook is set; a webhook gets one update at a
time, retried a few times, and a failure is recorded for getWebhookInfo before moving on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from .errors import ApiError, bad_request
from .state import Webhook

if TYPE_CHECKING:
    from .emulator import TelegramEmulator

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]
Params = dict[str, Any]

_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Updates:
    """The update queue and its two ways out; the webhook itself is ``emulator.webhook``."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emu = emulator
        #: Updates queued and not yet confirmed (polling) or delivered (webhook).
        self.queue: list[JSONDict] = []
        self.allowed: list[str] | None = None
        #: Set while the server stops: long polls answer at once, delivery ends.
        self.closing = False
        self._next_id = 1
        self._poll_generation = 0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def methods(self) -> dict[str, Callable[[Params], Awaitable[Any]]]:
        """Bot API method name -> implementation, merged into the emulator's table."""
        return {
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
        }

    def add(self, kind: str, payload: JSONDict) -> JSONDict:
        """Append an update (increasing update_id) for polling or webhook delivery."""
        update = {"update_id": self._next_id, kind: payload}
        self._next_id += 1
        self.queue.append(update)
        self.emu.notify()
        return update

    async def close(self) -> None:
        """Stop webhook delivery and close its HTTP session."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ----------------------------------------------------------------- polling

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            del self.queue[: max(0, len(self.queue) + offset)]
        elif offset > 0:
            self.queue = [u for u in self.queue if u["update_id"] >= offset]
        else:
            return
        self.emu.notify()

    def _take(self, limit: int) -> list[JSONDict]:
        allowed = self.allowed
        if allowed:
            kept = [u for u in self.queue if update_kind(u) in allowed]
            if len(kept) != len(self.queue):
                self.queue = kept
                self.emu.notify()
        return [json.loads(json.dumps(u)) for u in self.queue[:limit]]

    async def get_updates(self, params: Params) -> list[JSONDict]:
        """getUpdates: confirm, then answer what is queued or wait for it up to ``timeout``."""
        if self.emu.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed = [str(a) for a in allowed]
        self._poll_generation += 1
        generation = self._poll_generation
        self._confirm(int(params.get("offset") or 0))
        self.emu.notify()  # an older long poll still waiting must give way (409)
        deadline = time.monotonic() + timeout
        while True:
            event = self.emu.changed
            batch = self._take(limit)
            if batch or self.closing:
                return batch
            self._check_still_polling(generation)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _check_still_polling(self, generation: int) -> None:
        """409 for a long poll overtaken by a newer one or by setWebhook."""
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one "
                "bot instance is running",
            )
        if self.emu.webhook is not None:
            raise ApiError(409, "Conflict: terminated by setWebhook request")

    # ----------------------------------------------------------------- webhook

    async def set_webhook(self, params: Params) -> bool:
        """setWebhook: an empty url removes it; otherwise start delivering to it."""
        url = params.get("url") or ""
        if not url:
            return await self.delete_webhook(params)
        if not re.match(r"https?://[^/\s]+", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self.queue.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed = [str(a) for a in allowed]
        self.emu.webhook = Webhook(
            url=url,
            secret_token=secret,
            max_connections=int(params.get("max_connections") or 40),
            allowed_updates=self.allowed,
        )
        self.emu.notify()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._webhook_loop())
        return True

    async def delete_webhook(self, params: Params) -> bool:
        """deleteWebhook: back to polling, the queue kept unless dropped."""
        if params.get("drop_pending_updates"):
            self.queue.clear()
        self.emu.webhook = None
        self.emu.notify()
        return True

    async def get_webhook_info(self, _params: Params) -> JSONDict:
        """getWebhookInfo: the url, the queue's length and the last delivery error."""
        webhook = self.emu.webhook
        info: JSONDict = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue),
        }
        if webhook is not None:
            info["max_connections"] = webhook.max_connections
            if webhook.allowed_updates:
                info["allowed_updates"] = webhook.allowed_updates
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
        return info

    async def _webhook_loop(self) -> None:
        """Deliver queued updates to the webhook in order, one at a time, until it is removed."""
        while not self.closing and self.emu.webhook is not None:
            event = self.emu.changed
            if not self.queue:
                await event.wait()
                continue
            update = self.queue[0]
            allowed = self.allowed
            if not allowed or update_kind(update) in allowed:
                try:
                    await self._deliver(self.emu.webhook, update)
                except Exception:  # delivery must never stop for good on one bad update
                    logger.exception("webhook: could not deliver update %s", update["update_id"])
            if self.queue and self.queue[0] is update:
                self.queue.pop(0)
                self.emu.notify()

    async def _deliver(self, hook: Webhook, update: JSONDict) -> bool:
        """POST one update; retry a few times; on failure record the error and move on."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        error = ""
        for attempt in range(self.emu.webhook_attempts):
            if attempt:
                await asyncio.sleep(0.05 * 4**attempt)
            try:
                async with self._session.post(hook.url, json=update, headers=headers) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        hook.delivered += 1
                        return True
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {exc!r}"
            logger.warning(
                "webhook delivery of update %s failed (attempt %d): %s",
                update["update_id"],
                attempt + 1,
                error,
            )
        hook.last_error_date = int(self.emu.wall_clock())
        hook.last_error_message = error
        logger.error("webhook: giving up update %s: %s", update["update_id"], error)
        return False


def update_kind(update: JSONDict) -> str:
    """The update's one field besides update_id: message, callback_query, ..."""
    return next(k for k in update if k != "update_id")
