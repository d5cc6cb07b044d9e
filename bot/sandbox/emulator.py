"""A local Telegram Bot API server with Telegram's rules, for tests, the demo and benchmarks.

PTB is pointed at it through ``base_url`` (``Application.builder().token(emu.token)
.base_url(f"{emu.api_url}/bot").base_file_url(emu.file_url)``) and talks real HTTP, so tests
exercise PTB itself: its request encoding, its error mapping (BadRequest, Forbidden,
RetryAfter) and its polling or webhook loop. Requests are validated against the Bot API
schema (``botapi_schema.json``) and against the limits Telegram enforces (text length,
callback_data size, HTML entities, flood limits), so a call real Telegram would refuse fails
here first.

This module holds :class:`TelegramEmulator`: its state, lifecycle, test hooks and what users
do (the side drivers call); it composes the rest of the package:

- ``state.py``: plain dataclasses (users, chats, messages, topics, presses, files, webhook)
  that drivers (``driver.py``) and tests read directly;
- ``http_api.py``: the HTTP side (routes, parameters, error bodies) and ``fail_next``'s failures;
- ``methods.py``: messages, buttons, commands, chats, files, and the posting rules every send
  shares; ``media.py``: media send methods and copyMessage; ``topics.py``: forum topics;
- ``updates.py``: the update queue, getUpdates and webhook delivery;
- ``rules.py``: content rules (lengths, parse modes, markup); ``flood.py``: flood limits;
- ``telegram_html.py``: the HTML parse mode; ``schema.py``: the Bot API schema check.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.clock import Pace, RealPace

from .driver import GroupDriver, UserDriver
from .errors import ApiError
from .flood import FloodLimits, max_sends_per_second, min_send_gap
from .http_api import Faults, HttpApi, Injected
from .media import FILE_ID_PREFIXES, TINY_JPEG, MediaApi
from .methods import CoreMethods
from .state import CallbackQuery, Chat, StoredFile, StoredMessage, Topic, User, Webhook
from .telegram_html import HtmlParseError, parse_html, utf16_len
from .topics import ForumTopics
from .updates import Updates

__all__ = [  # the names other code imports from here, wherever they now live
    "_TINY_JPEG", "ApiError", "CallbackQuery", "Chat", "HtmlParseError", "StoredFile",
    "StoredMessage", "TelegramEmulator", "Topic", "User", "Webhook", "parse_html", "utf16_len",
]

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]

#: A 1x1 JPEG (now in media.py); the old name stays for tests that import it.
_TINY_JPEG = TINY_JPEG


class TelegramEmulator:
    """An in-process Telegram Bot API server: real HTTP for the bot, direct calls for drivers.

    Telegram-strict by default: ``global_rate`` messages per second overall (sliding 1-second
    window), ``per_chat_burst`` messages to one private chat in any ``per_chat_burst *
    per_chat_interval`` seconds (a short burst, then about one a second),
    ``group_per_minute`` messages per minute to one group; past them a message gets 429 with
    ``retry_after``. ``None`` turns a limit off (benchmarks' baselines only; no test may).
    They run on ``pace`` (:class:`bot.clock.Pace`: the loop's time, or a test's virtual
    time shared with carebot), never the application's business clock. ``validate=False``
    skips the schema check (types and required fields) but not Telegram's content rules.
    """

    #: How many times a webhook delivery is tried before the update is given up.
    webhook_attempts = 3

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "carebot_demo_bot",
        global_rate: float | None = 30.0,
        per_chat_interval: float | None = 1.0,
        per_chat_burst: int = 3,
        group_per_minute: int | None = 20,
        validate: bool = True,
        pace: Pace | None = None,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.global_rate = global_rate
        self.per_chat_interval = per_chat_interval
        self.per_chat_burst = per_chat_burst
        self.group_per_minute = group_per_minute
        self.pace: Pace = pace or RealPace()
        self.validate = validate
        #: Source of message dates (epoch seconds); a demo may replace it.
        self.wall_clock: Callable[[], float] = time.time
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot = User(id=bot_id, first_name="CareBot", username=bot_username, is_bot=True)
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.callbacks: dict[str, CallbackQuery] = {}
        self.files: dict[str, StoredFile] = {}
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.webhook: Webhook | None = None
        #: calls per method, 429s given, errors per status code.
        self.stats: dict[str, Any] = {"calls": Counter(), "429": 0, "errors": Counter()}
        #: Monotonic times of every message sent, per chat id (for pacing checks).
        self.send_times: dict[int, list[float]] = {}
        self.flood = FloodLimits(self)
        self._ids = itertools.count(1)
        self.faults = Faults()
        #: While set, every Bot API call fails this way (an outage): 0 drops the connection,
        #: an HTTP status (502...) answers with it. ``go_down`` / ``come_back``.
        self.outage: int | None = None
        #: Set and replaced on every state change; take it before checking, then wait on it.
        self.changed = asyncio.Event()
        self.updates = Updates(self)
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        #: sendVoice, sendDocument, sendSticker, sendLocation, ..., copyMessage (media.py).
        self.media = MediaApi(self)
        self.core = CoreMethods(self)
        self.forum = ForumTopics(self)
        self.http = HttpApi(self, {
            **self.core.methods(),
            **self.forum.methods(),
            **self.updates.methods(),
            **self.media.methods(),
        })

    # ----------------------------------------------------------------- lifecycle

    def make_app(self) -> web.Application:
        """The aiohttp application serving ``/bot<token>/<method>`` and file downloads."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        self.http.routes(app)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on host:port (port 0 picks a free one; see ``api_url``)."""
        self.updates.closing = False
        runner = web.AppRunner(self.make_app(), shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._host, self._port = host, int(address[1])
        logger.info("Telegram emulator listening on %s", self.api_url)

    async def stop(self) -> None:
        """Stop serving: wake long polls, stop webhook delivery, close the server."""
        self.updates.closing = True
        self.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._on_cleanup(None)

    @property
    def api_url(self) -> str:
        """Where the server listens, e.g. ``http://127.0.0.1:PORT``; give PTB
        ``api_url + "/bot"``."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def file_url(self) -> str:
        """Base for file downloads; give PTB ``base_file_url=emu.file_url``."""
        return f"{self.api_url}/file/bot"

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.updates.closing = True
        self.notify()

    async def _on_cleanup(self, _app: web.Application | None) -> None:
        await self.updates.close()

    # ----------------------------------------------------------------- test hooks

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail with this error (after validation).

        A 429 gets ``retry_after`` (default 1) and Telegram's "Too Many Requests" wording;
        ``error_code=0`` drops the connection without an answer (a network failure or a
        timeout, as the bot sees it).
        """
        self.faults.add(method, error_code, description, retry_after, count)

    def go_down(self, error_code: int = 0) -> None:
        """Telegram unreachable: every call's connection dropped (``error_code=0``, as a
        network failure or timeout looks to the bot) or answered with ``error_code`` (502,
        500...), until :meth:`come_back`."""
        self.outage = error_code

    def come_back(self) -> None:
        """The outage is over: calls are answered again."""
        self.outage = None

    @property
    def _injected(self) -> dict[str, deque[Injected]]:
        """Failures still queued per method (a test clears them: "Telegram is back")."""
        return self.faults.queues

    @property
    def _group_sends(self) -> dict[int, deque[float]]:
        """Recent sends per group (a test clears them to start a fresh minute)."""
        return self.flood.groups

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed (polling) or delivered (webhook)."""
        return len(self.updates.queue)

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait (without sleeping blindly) until ``predicate()`` holds after some state change."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.changed
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every queued update was taken by the bot."""
        await self.wait_until(
            lambda: not self.updates.queue, timeout, "the bot to take all updates"
        )

    def min_send_gap(self, chat_id: int | None = None) -> float | None:
        """Shortest time between two messages to one chat (or to ``chat_id``); None if < 2."""
        return min_send_gap(self.send_times, chat_id)

    def stats_report(self) -> JSONDict:
        """What ``stats`` and ``send_times`` say, as plain JSON: calls per method, 429s given,
        errors per status code, messages sent, and the pacing seen by this server (the
        shortest gap between two messages to one chat, the most messages in any one-second
        window as the global limit counts them)."""
        return {
            "calls": dict(self.stats["calls"]),
            "429": self.stats["429"],
            "errors": {str(code): n for code, n in self.stats["errors"].items()},
            "sent": sum(len(times) for times in self.send_times.values()),
            "min_send_gap": self.min_send_gap(),
            "max_per_second": self.max_sends_per_second(),
        }

    def max_sends_per_second(self) -> int:
        """The most messages in any window (t - 1 s, t], the window the global limit uses."""
        return max_sends_per_second(self.send_times)

    # ----------------------------------------------------------------- drivers

    def user(
        self,
        user_id: int,
        first_name: str = "Owner",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> UserDriver:
        """A driver acting as this user in their private chat with the bot (chat id = user id)."""
        user = self.users.get(user_id)
        if user is None:
            user = User(user_id, first_name, last_name, username, language_code)
            self.users[user_id] = user
        if user_id not in self.chats:
            self.chats[user_id] = Chat(
                id=user_id,
                type="private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
        return UserDriver(self, user_id)

    def group(self, chat_id: int, title: str, *, is_forum: bool = True) -> GroupDriver:
        """A driver for a group the bot is an admin of (a supergroup when a forum or -100…)."""
        if chat_id not in self.chats:
            supergroup = is_forum or str(chat_id).startswith("-100")
            self.chats[chat_id] = Chat(
                id=chat_id,
                type="supergroup" if supergroup else "group",
                title=title,
                is_forum=is_forum,
            )
        return GroupDriver(self, chat_id)

    def ensure_user(self, user_id: int) -> User:
        """The user with this id, created with a placeholder name if unknown."""
        user = self.users.get(user_id)
        if user is None:
            user = User(user_id, f"User{user_id}", language_code="zh-hans")
            self.users[user_id] = user
        return user

    def user_message(
        self, chat_id: int, user_id: int, content: JSONDict, thread_id: int | None = None
    ) -> JSONDict:
        """Post a message from a user into a chat and queue the ``message`` update."""
        chat = self.chats[chat_id]
        user = self.ensure_user(user_id)
        if thread_id is not None and (not chat.is_forum or chat.live_topic(thread_id) is None):
            raise AssertionError(f"chat {chat_id} has no topic {thread_id}")
        stored = self.new_message(chat, user.to_dict(), False, thread_id, content)
        keyboard = chat.reply_keyboard
        if keyboard is not None and keyboard.get("one_time_keyboard"):
            chat.reply_keyboard = None
        self.queue_update("message", stored.message)
        return stored.message

    def press_button(
        self, chat_id: int, user_id: int, label: str, thread_id: int | None = None
    ) -> JSONDict:
        """Press the inline button ``label`` on the latest bot message showing it."""
        chat = self.chats[chat_id]
        labels: list[str] = []
        for stored in reversed(chat.messages):
            if stored.deleted or not stored.from_bot:
                continue
            if thread_id is not None and stored.thread_id != thread_id:
                continue
            rows = (stored.message.get("reply_markup") or {}).get("inline_keyboard") or []
            for button in itertools.chain.from_iterable(rows):
                if button.get("text") != label:
                    labels.append(str(button.get("text")))
                    continue
                if "callback_data" not in button:
                    raise AssertionError(f"button {label!r} is not a callback button: {button}")
                return self._queue_callback(chat, user_id, stored, button["callback_data"], label)
        where = f" (topic {thread_id})" if thread_id is not None else ""
        raise AssertionError(
            f"no bot message in chat {chat_id}{where} has a button {label!r}; "
            f"buttons shown: {list(dict.fromkeys(labels))}"
        )

    def press_again(self, chat_id: int, user_id: int, query: JSONDict) -> JSONDict:
        """Press once more a button pressed before (``query``, as :meth:`press_button`
        returned it), as a second device still showing the old keyboard does: the callback
        carries the message as it is now, whatever its keyboard became."""
        chat = self.chats[chat_id]
        stored = chat.find(int(query["message"]["message_id"]))
        if stored is None or stored.deleted:
            raise AssertionError(f"message {query['message']['message_id']} is gone")
        old_rows = (query["message"].get("reply_markup") or {}).get("inline_keyboard") or []
        label = next((str(b.get("text")) for b in itertools.chain.from_iterable(old_rows)
                      if b.get("callback_data") == query["data"]), "")
        return self._queue_callback(chat, user_id, stored, str(query["data"]), label)

    def press_button_at(
        self, chat_id: int, user_id: int, message_id: int, row: int, column: int
    ) -> JSONDict:
        """Press the inline callback button at (row, column) of one bot message (the sandbox
        chat's phone view); ValueError when there is no such live message or button."""
        chat = self.chats.get(chat_id)
        stored = chat.find(message_id) if chat is not None else None
        if chat is None or stored is None or not stored.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        rows = (stored.message.get("reply_markup") or {}).get("inline_keyboard") or []
        if not (0 <= row < len(rows) and 0 <= column < len(rows[row])):
            raise ValueError(f"message {message_id} has no button at ({row}, {column})")
        button = rows[row][column]
        if "callback_data" not in button:
            raise ValueError(f"button {button.get('text')!r} is not a callback button")
        return self._queue_callback(
            chat, user_id, stored, button["callback_data"], str(button.get("text"))
        )

    def _queue_callback(
        self, chat: Chat, user_id: int, stored: StoredMessage, data: str, label: str
    ) -> JSONDict:
        user = self.ensure_user(user_id)
        query_id = str(next(self._ids) * 1_000_003 + 7)
        self.callbacks[query_id] = CallbackQuery(
            query_id, user_id, chat.id, stored.message_id, data, label
        )
        query: JSONDict = {
            "id": query_id,
            "from": user.to_dict(),
            "message": json.loads(json.dumps(stored.message)),
            "chat_instance": str(abs(hash((chat.id, self.bot.id))) % 10**18),
            "data": data,
        }
        self.queue_update("callback_query", query)
        return query

    def set_blocked(self, user_id: int, blocked: bool) -> None:
        """Block or unblock the bot as this user; Telegram tells the bot with my_chat_member."""
        chat = self.chats[user_id]
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")

        def member(status: str) -> JSONDict:
            data: JSONDict = {"user": self.bot.to_dict(), "status": status}
            if status == "kicked":
                data["until_date"] = 0
            return data

        self.queue_update(
            "my_chat_member",
            {
                "chat": chat.to_dict(),
                "from": self.users[user_id].to_dict(),
                "date": int(self.wall_clock()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    def add_file(
        self,
        data: bytes | None,
        kind: str = "photos",
        ext: str = "jpg",
        *,
        file_type: str = "Photo",
        meta: JSONDict | None = None,
    ) -> StoredFile:
        """Register a file so the bot can resend it by file_id or download it via getFile.

        ``kind`` is the folder of its file_path; ``file_type`` what it may be sent as.
        """
        number = next(self._ids)
        prefix = FILE_ID_PREFIXES.get(file_type, "BQAC")
        stored = StoredFile(
            file_id=f"{prefix}{number:08d}emu",
            file_unique_id=f"AQAD{number:06d}",
            file_path=f"{kind}/file_{number}.{ext}",
            data=data,
            file_type=file_type,
            meta=dict(meta or {}),
        )
        self.files[stored.file_id] = stored
        return stored

    def photo_sizes(self, stored: StoredFile) -> list[JSONDict]:
        """A PhotoSize list for a stored photo (Telegram sends several sizes; one suffices)."""
        size: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 800,
            "height": 600,
        }
        if stored.data is not None:
            size["file_size"] = len(stored.data)
        return [size]

    def tiny_photo(self) -> StoredFile:
        """A new downloadable 1x1 JPEG, as if a user had sent a photo."""
        return self.add_file(_TINY_JPEG)

    # ----------------------------------------------------------------- state changes

    def queue_update(self, kind: str, payload: JSONDict) -> JSONDict:
        """Append an update (increasing update_id) for polling or webhook delivery."""
        return self.updates.add(kind, payload)

    def new_message(
        self,
        chat: Chat,
        sender: JSONDict,
        from_bot: bool,
        thread_id: int | None,
        content: JSONDict,
    ) -> StoredMessage:
        """Store a message in either direction and wake everyone waiting for one."""
        stored = chat.add_message(sender, from_bot, thread_id, content, int(self.wall_clock()))
        self.notify()
        return stored

    def notify(self) -> None:
        """Wake everyone waiting for a state change (long polls, webhook loop, wait_until)."""
        event, self.changed = self.changed, asyncio.Event()
        event.set()
