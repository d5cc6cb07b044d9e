"""The Telegram emulator, exercised through python-telegram-bot and raw HTTP.

Every request here crosses a real socket: PTB's own encoding (form fields, JSON-encoded
markup, multipart uploads) and its error mapping (BadRequest, Forbidden, RetryAfter) are
what is tested, so the bot's handler tests can trust the emulator to refuse what Telegram
refuses.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    MessageId,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.clock import VirtualPace
from bot.sandbox import TelegramEmulator, load_schema, parse_html
from bot.sandbox.schema import SCHEMA_FILE, derive_schema, dump_schema

OWNER = 4242
STAFF_GROUP = -1001234567890


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest_asyncio.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    async with Bot(emu.token, base_url=f"{emu.api_url}/bot", base_file_url=emu.file_url) as tg:
        yield tg


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll with tiny sleeps, bounded: for conditions the emulator does not signal."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def seconds(retry_after: float | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after


def retry_after_of(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return seconds(exc.retry_after)


def keyboard(*labels_and_data: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data)] for label, data in labels_and_data]
    )


async def call(
    http: aiohttp.ClientSession,
    emu: TelegramEmulator,
    method: str,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{emu.api_url}/bot{token or emu.token}/{method}", **kwargs) as resp:
        return resp.status, await resp.json()


# ------------------------------------------------------------------ basics


async def test_get_me(emu: TelegramEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "carebot_demo_bot" and me.id == 123456
    assert emu.stats["calls"]["getMe"] >= 2  # `async with bot` asked once already


async def test_send_message_lands_in_transcript(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER, "Fang", "Wang")
    first = await bot.send_message(
        OWNER,
        "<b>Hello</b> Fang &amp; welcome 🚗 <i>again</i>",
        parse_mode="HTML",
        reply_markup=keyboard(("Rate us", "rate:1")),
    )
    second = await bot.send_message(OWNER, "plain")
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "Hello Fang & welcome 🚗 again"
    assert first.chat.id == OWNER and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.is_bot
    assert first.text_html == "<b>Hello</b> Fang &amp; welcome 🚗 <i>again</i>"
    assert first.reply_markup == keyboard(("Rate us", "rate:1"))
    transcript = owner.transcript()
    assert [m["from_bot"] for m in transcript] == [True, True]
    assert owner.bot_texts() == ["Hello Fang & welcome 🚗 again", "plain"]
    assert owner.last_bot_message()["message_id"] == 2


async def test_chat_not_found(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(999, "hello?")


async def test_user_text_arrives_and_offset_confirms(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER)
    owner.send_text("/start tok_123")
    updates = await bot.get_updates()
    assert len(updates) == 1 and updates[0].message is not None
    message = updates[0].message
    assert message.text == "/start tok_123" and message.from_user.id == OWNER
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
    assert emu.pending_updates == 1  # delivered, not yet confirmed
    assert await bot.get_updates(offset=updates[0].update_id + 1) == ()
    assert emu.pending_updates == 0
    owner.send_text("again")
    (later,) = await bot.get_updates()
    assert later.update_id == updates[0].update_id + 1
    assert [m["text"] for m in owner.transcript()] == ["/start tok_123", "again"]


async def test_long_poll_returns_as_soon_as_an_update_is_queued(
    emu: TelegramEmulator, bot: Bot
) -> None:
    owner = emu.user(OWNER)
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await eventually(lambda: emu.stats["calls"]["getUpdates"] == 1)
    await asyncio.sleep(0.05)  # let the server reach its wait
    assert not poll.done()
    owner.send_text("hi")
    updates = await asyncio.wait_for(poll, 5)
    assert [u.message.text for u in updates if u.message] == ["hi"]
    assert time.monotonic() - started < 5


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3
    with pytest.raises(BadRequest, match=r"(?i)timeout.*integer"):  # Telegram wants seconds
        await bot.get_updates(timeout=timedelta(seconds=0.2))


async def test_second_poller_terminates_the_first_with_conflict(
    emu: TelegramEmulator, bot: Bot, http: aiohttp.ClientSession
) -> None:
    """Two bot instances polling: Telegram ends the older request with 409 Conflict."""
    first = asyncio.create_task(bot.get_updates(timeout=20))
    await eventually(lambda: emu.stats["calls"]["getUpdates"] == 1)
    await asyncio.sleep(0.02)
    # PTB keeps one connection for getUpdates, so the second instance is a raw client.
    second = asyncio.create_task(call(http, emu, "getUpdates", json={"timeout": 20}))
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await asyncio.wait_for(first, 5)
    emu.user(OWNER).send_text("x")
    status, body = await asyncio.wait_for(second, 5)
    assert status == 200 and body["result"][0]["message"]["text"] == "x"


# ------------------------------------------------------------------ Telegram's rules


async def test_text_limits(emu: TelegramEmulator, bot: Bot) -> None:
    emu.user(OWNER)
    await bot.send_message(OWNER, "x" * 4096)
    await bot.send_message(OWNER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(OWNER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(OWNER, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(OWNER, "<b></b>", parse_mode="HTML")


async def test_callback_data_over_64_bytes_is_refused(emu: TelegramEmulator, bot: Bot) -> None:
    emu.user(OWNER)
    await bot.send_message(OWNER, "ok", reply_markup=keyboard(("a", "é" * 32)))  # 64 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(OWNER, "no", reply_markup=keyboard(("a", "x" * 65)))
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(OWNER, "no", reply_markup=keyboard(("a", "é" * 33)))


@pytest.mark.parametrize(
    "html",
    [
        "<b>unclosed",
        "<b><i>crossed</b></i>",
        "line<br>break",
        "a &nbsp; b",
        "<span>not a spoiler</span>",
        "x</b>",
        "<a href='x'>broken",
        "<div>block</div>",
    ],
)
async def test_broken_html_is_refused(emu: TelegramEmulator, bot: Bot, html: str) -> None:
    emu.user(OWNER)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(OWNER, html, parse_mode="HTML")


def test_html_parser_follows_telegram() -> None:
    text, entities = parse_html(
        '🚗 <b>Car <i>care</i></b> &lt;3 &#39;ok&#x27; a & b <a href="https://x.io/?a=1&amp;b=2">'
        'link</a> <span class="tg-spoiler">s</span> <pre><code class="language-py">x</code></pre>'
        " <blockquote expandable>q</blockquote>"
    )
    assert text == "🚗 Car care <3 'ok' a & b link s x q"
    assert entities[0] == {"type": "bold", "offset": 3, "length": 8}  # 🚗 is 2 UTF-16 units
    assert entities[1] == {"type": "italic", "offset": 7, "length": 4}
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://x.io/?a=1&b=2"
    assert {"type": "pre", "offset": 33, "length": 1, "language": "py"} in entities
    assert entities[-1]["type"] == "expandable_blockquote"


async def test_blocked_user_gives_forbidden(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER)
    await bot.send_message(OWNER, "before")
    owner.block()
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(OWNER, "after")
    (update,) = await bot.get_updates()
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    owner.unblock()
    await bot.send_message(OWNER, "welcome back")
    assert owner.bot_texts() == ["before", "welcome back"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_per_chat_rate_limit_gives_a_burst_then_retry_after() -> None:
    """Telegram-strict by default: a short burst of three to one chat, then a 429 until the
    window moves on (on virtual pacing time: moved forward, not waited for)."""
    pace = VirtualPace()
    emu = TelegramEmulator(pace=pace)
    await emu.start()
    try:
        emu.user(1)
        emu.user(2)
        async with Bot(emu.token, base_url=f"{emu.api_url}/bot") as bot:
            for n in range(3):
                await bot.send_message(1, f"burst {n}")
            await bot.send_message(2, "another chat is fine")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(1, "too soon")
            assert retry_after_of(caught.value) == 3
            pace.advance(2.5)
            with pytest.raises(RetryAfter):
                await bot.send_message(1, "still too soon")
            pace.advance(0.5)
            await bot.send_message(1, "the window moved on")
        assert emu.stats["429"] == 2
        assert [m.message["text"] for m in emu.chats[1].messages][-2:] == \
            ["burst 2", "the window moved on"]
        assert len(emu.send_times[1]) == 4 and len(emu.send_times[2]) == 1
    finally:
        await emu.stop()


async def test_global_and_group_rate_limits(http: aiohttp.ClientSession) -> None:
    emu = TelegramEmulator(global_rate=3, group_per_minute=2, pace=VirtualPace())
    await emu.start()
    try:
        for uid in range(1, 5):
            emu.user(uid)
        emu.group(STAFF_GROUP, "Staff", is_forum=False)
        statuses = []
        for uid in range(1, 5):
            status, body = await call(http, emu, "sendMessage", json={"chat_id": uid, "text": "x"})
            statuses.append(status)
        assert statuses == [200, 200, 200, 429]
        assert body["parameters"]["retry_after"] >= 1
        assert body["description"].startswith("Too Many Requests: retry after ")

        emu.global_rate = None
        for expected in (200, 200, 429):
            status, body = await call(
                http, emu, "sendMessage", json={"chat_id": STAFF_GROUP, "text": "x"}
            )
            assert status == expected
        assert body["parameters"]["retry_after"] > 1  # the group's minute is not over
        assert emu.stats["429"] == 2
        assert emu.min_send_gap(1) is None
    finally:
        await emu.stop()


async def test_stats_endpoint_reports_what_the_server_counted(
    http: aiohttp.ClientSession,
) -> None:
    emu = TelegramEmulator(global_rate=2, per_chat_interval=1.0, pace=VirtualPace())
    await emu.start()
    try:
        for uid in (1, 2, 3):
            emu.user(uid)
        statuses = [(await call(http, emu, "sendMessage", json={"chat_id": uid, "text": "x"}))[0]
                    for uid in (1, 2, 3)]
        assert statuses == [200, 200, 429]
        async with http.get(f"{emu.api_url}/_sandbox/bot{emu.token}/stats") as resp:
            assert resp.status == 200
            stats = await resp.json()
        assert (stats["sent"], stats["429"], stats["max_per_second"]) == (2, 1, 2)
        assert stats["calls"] == {"sendMessage": 3} and stats["errors"] == {"429": 1}
        assert stats["min_send_gap"] is None  # no chat got two messages
        async with http.get(f"{emu.api_url}/_sandbox/bot1:WRONG/stats") as resp:
            assert resp.status == 401
    finally:
        await emu.stop()


def test_busiest_second_uses_the_limits_window() -> None:
    emu = TelegramEmulator()
    emu.send_times = {1: [10.0, 11.0], 2: [10.5, 11.2], 3: [12.5]}
    # (t - 1, t]: 10.0 has left the window at 11.0, so 10.5, 11.0, 11.2 is the busiest
    assert emu.max_sends_per_second() == 3
    assert TelegramEmulator().max_sends_per_second() == 0


async def test_emulator_runs_in_a_process_of_its_own(http: aiohttp.ClientSession) -> None:
    import os
    import sys

    root = Path(__file__).resolve().parent.parent
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sandbox.serve", "--global-rate", "5", "--per-chat-interval",
        "1", "--per-chat-burst", "1", "--users", "7000:2", "--until-stdin-closes", cwd=str(root),
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=60))
        send = f"{info['api_url']}/bot{info['token']}/sendMessage"
        statuses = []
        for chat_id in (7000, 7001, 7000):  # the third is too soon after the first
            async with http.post(send, json={"chat_id": chat_id, "text": "hi"}) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 429]
        async with http.get(info["stats_url"]) as resp:
            stats = await resp.json()
        assert (stats["sent"], stats["429"]) == (2, 1)
    finally:
        proc.stdin.close()
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_fail_next_injects_errors(emu: TelegramEmulator, bot: Bot) -> None:
    emu.user(OWNER)
    emu.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(OWNER, "x")
    assert retry_after_of(caught.value) == 3
    emu.fail_next("SENDMESSAGE", error_code=502, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(OWNER, "x")
    emu.fail_next("sendMessage", error_code=403)
    with pytest.raises(Forbidden):
        await bot.send_message(OWNER, "x")
    emu.fail_next("sendMessage", error_code=0)  # no answer: the connection is dropped
    with pytest.raises(NetworkError):
        await bot.send_message(OWNER, "x")
    await bot.send_message(OWNER, "finally")
    assert emu.stats["429"] == 1
    assert emu.stats["calls"]["sendMessage"] == 6
    assert [m.message["text"] for m in emu.chats[OWNER].messages] == ["finally"]
    with pytest.raises(ValueError):
        emu.fail_next("noSuchMethod")


# ------------------------------------------------------------------ protocol errors


async def test_unknown_method_is_404(emu: TelegramEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, emu, "sendTelepathy", data={"chat_id": "1"})
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_method_names_are_case_insensitive(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emu, "GETME")
    assert status == 200 and body["result"]["is_bot"] is True
    assert emu.stats["calls"]["getMe"] == 1


async def test_missing_required_field_is_400(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emu, "sendMessage", data={"text": "no chat"})
    assert status == 400
    assert body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: chat_id is required",
    }


async def test_wrong_types_are_400(emu: TelegramEmulator, http: aiohttp.ClientSession) -> None:
    emu.user(OWNER)
    # chat_id is Integer or String: a string is the right type, just no such chat.
    status, body = await call(http, emu, "sendMessage", json={"chat_id": "abc", "text": "x"})
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await call(
        http, emu, "editMessageText", json={"chat_id": OWNER, "message_id": "x", "text": "y"}
    )
    assert status == 400
    assert body["description"] == 'Bad Request: field "message_id" must be of type Integer'
    status, body = await call(
        http, emu, "sendMessage", data={"chat_id": str(OWNER), "text": "x", "reply_markup": "[1]"}
    )
    assert status == 400 and "reply_markup" in body["description"]
    status, body = await call(
        http,
        emu,
        "sendMessage",
        params={"chat_id": OWNER, "text": "x", "disable_notification": "yes"},
    )
    assert status == 400 and "disable_notification" in body["description"]


async def test_json_body_and_query_string_are_accepted(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    owner = emu.user(OWNER)
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    status, body = await call(
        http, emu, "sendMessage", json={"chat_id": OWNER, "text": "json", "reply_markup": markup}
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    # Some clients JSON-encode markup even inside a JSON body; Telegram accepts that too.
    status, _ = await call(
        http,
        emu,
        "sendMessage",
        json={"chat_id": str(OWNER), "text": "again", "reply_markup": json.dumps(markup)},
    )
    assert status == 200
    status, _ = await call(http, emu, "sendMessage", params={"chat_id": OWNER, "text": "query"})
    assert status == 200
    assert owner.bot_texts() == ["json", "again", "query"]


async def test_wrong_token(emu: TelegramEmulator, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, emu, "getMe", token="123456:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    with pytest.raises(InvalidToken):
        async with Bot("123456:WRONG", base_url=f"{emu.api_url}/bot"):
            pass


# ------------------------------------------------------------------ buttons and edits


async def test_press_produces_a_callback_query(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER)
    sent = await bot.send_message(
        OWNER, "How was it?", reply_markup=keyboard(("Great", "s:10"), ("Bad", "s:1"))
    )
    with pytest.raises(AssertionError, match=r"'Great', 'Bad'"):
        owner.press("Meh")
    owner.press("Bad")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.data == "s:1" and query.from_user.id == OWNER
    assert query.message is not None and query.message.message_id == sent.message_id
    assert await query.answer("Sorry to hear that", show_alert=True)
    assert owner.callback_answers == [
        {
            "callback_query_id": query.id,
            "label": "Bad",
            "data": "s:1",
            "text": "Sorry to hear that",
            "show_alert": True,
            "url": None,
        }
    ]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer("twice")


async def test_edit_message_text_in_place(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER)
    sent = await bot.send_message(OWNER, "Rate us", reply_markup=keyboard(("5", "r:5")))
    owner.send_text("hello")
    edited = await bot.edit_message_text(
        "<i>Thanks!</i>", OWNER, sent.message_id, parse_mode="HTML"
    )
    assert edited.text == "Thanks!" and edited.edit_date is not None
    assert [m.get("text") for m in owner.transcript()] == ["Thanks!", "hello"]
    assert "reply_markup" not in owner.transcript()[0]  # an edit without markup drops it
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<i>Thanks!</i>", OWNER, sent.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", OWNER, 999)
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("x", OWNER, 2)  # the owner's own message
    await bot.edit_message_reply_markup(
        OWNER, sent.message_id, reply_markup=keyboard(("Undo", "u"))
    )
    owner.press("Undo")
    assert await bot.delete_message(OWNER, sent.message_id)
    assert owner.bot_texts() == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(OWNER, sent.message_id)


async def test_contact_and_reply_keyboard(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER, "Tom")
    await bot.send_message(
        OWNER,
        "Share your number",
        reply_markup=ReplyKeyboardMarkup(
            [[KeyboardButton("Share", request_contact=True)]], one_time_keyboard=True
        ),
    )
    assert owner.reply_keyboard is not None
    assert owner.reply_keyboard["keyboard"][0][0]["request_contact"] is True
    owner.share_contact("+8613900139000")
    assert owner.reply_keyboard is None  # one-time keyboards hide after use
    owner.share_contact("+8613700137000", user_id=None, first_name="Chen")
    first, second = await bot.get_updates()
    assert first.message.contact.user_id == OWNER
    assert first.message.contact.phone_number == "+8613900139000"
    assert second.message.contact.user_id is None
    await bot.send_message(OWNER, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert owner.reply_keyboard is None


# ------------------------------------------------------------------ files, chats, commands


async def test_photos_upload_resend_and_download(emu: TelegramEmulator, bot: Bot) -> None:
    owner = emu.user(OWNER)
    sent = await bot.send_photo(
        OWNER, b"\x89PNG fake image", caption="<b>Your car</b>", parse_mode="HTML"
    )
    assert sent.caption == "Your car" and sent.photo
    again = await bot.send_photo(OWNER, sent.photo[-1].file_id)
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == b"\x89PNG fake image"
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(OWNER, "nonsense")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(OWNER, sent.photo[-1].file_id, caption="x" * 1025)
    owner.send_photo(caption="scratch on the door")
    (update,) = await bot.get_updates()
    assert update.message.caption == "scratch on the door"
    user_file = await bot.get_file(update.message.photo[-1].file_id)
    assert (await user_file.download_as_bytearray())[:2] == b"\xff\xd8"
    assert owner.bot_texts() == ["Your car"]


async def test_get_chat_action_and_commands(emu: TelegramEmulator, bot: Bot) -> None:
    emu.user(OWNER, "Fang")
    chat = await bot.get_chat(OWNER)
    assert chat.first_name == "Fang" and chat.type == "private"
    assert await bot.send_chat_action(OWNER, "typing")
    assert emu.chats[OWNER].chat_actions == ["typing"]
    with pytest.raises(BadRequest):
        await bot.send_chat_action(OWNER, "dancing")
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "开始")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="zh")] == ["开始"]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Command", "x")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.close() and await bot.log_out()


async def test_schema_is_packaged_and_regenerates_identically() -> None:
    schema = load_schema()
    assert schema["version"] == "Bot API 10.1"
    assert schema["methods"]["sendMessage"]["chat_id"] == {
        "types": ["Integer", "String"],
        "required": True,
    }
    source = Path("/work/shared/telegram-bot-api/api.json")
    if not source.exists():
        pytest.skip("the full api.json is not available here")
    api = json.loads(source.read_text(encoding="utf-8"))
    assert dump_schema(derive_schema(api)) == SCHEMA_FILE.read_text(encoding="utf-8")


async def test_unemulated_method_in_schema_answers_true(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emu, "setMyDescription", data={"description": "Care"})
    assert (status, body) == (200, {"ok": True, "result": True})


# ------------------------------------------------------------------ groups and forum topics


async def test_forum_topics(emu: TelegramEmulator, bot: Bot) -> None:
    group = emu.group(STAFF_GROUP, "Service desk")
    staff = emu.user(77, "Li", username="li_service")
    topic = await bot.create_forum_topic(STAFF_GROUP, "Ticket #12 · Wang", icon_color=16766590)
    thread = topic.message_thread_id
    assert group.topics == {
        thread: {"name": "Ticket #12 · Wang", "icon_color": 16766590, "closed": False}
    }
    assert group.topic_id("Ticket #12 · Wang") == thread
    posted = await bot.send_message(
        STAFF_GROUP, "Owner says: noisy brakes", message_thread_id=thread
    )
    assert posted.message_thread_id == thread and posted.is_topic_message
    await bot.send_message(STAFF_GROUP, "General notice")
    assert group.bot_texts(thread) == ["Owner says: noisy brakes"]
    assert group.bot_texts() == ["Owner says: noisy brakes", "General notice"]

    group.send_text(staff, "I'll call him", message_thread_id=thread)
    (update,) = await bot.get_updates()
    assert update.message.message_thread_id == thread and update.message.is_topic_message
    assert update.message.chat.is_forum and update.message.from_user.id == 77

    await bot.send_message(
        STAFF_GROUP,
        "Claim?",
        message_thread_id=thread,
        reply_markup=keyboard(("Claim", "t:12:claim")),
    )
    group.press(staff, "Claim", message_thread_id=thread)
    (update,) = await bot.get_updates(offset=update.update_id + 1)
    assert update.callback_query.data == "t:12:claim"

    assert await bot.close_forum_topic(STAFF_GROUP, thread)
    assert group.topics[thread]["closed"] is True
    with pytest.raises(BadRequest, match=r"(?i)TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(STAFF_GROUP, thread)
    assert await bot.reopen_forum_topic(STAFF_GROUP, thread)
    assert await bot.edit_forum_topic(STAFF_GROUP, thread, name="Ticket #12 · resolved")
    assert group.topics[thread]["name"] == "Ticket #12 · resolved"
    assert await bot.delete_forum_topic(STAFF_GROUP, thread)
    assert group.topics == {}
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(STAFF_GROUP, "gone", message_thread_id=thread)

    group.send_text(88, "a colleague who never opened the bot")
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await bot.send_message(88, "hello")

    emu.group(-100555, "Plain supergroup", is_forum=False)
    with pytest.raises(BadRequest, match=r"(?i)not a forum"):
        await bot.create_forum_topic(-100555, "nope")


# ------------------------------------------------------------------ media and copyMessage


@pytest_asyncio.fixture
async def paced() -> AsyncIterator[tuple[TelegramEmulator, VirtualPace, Bot]]:
    """An emulator on virtual pacing time, for tests that send more than a burst."""
    pace = VirtualPace()
    emulator = TelegramEmulator(pace=pace)
    await emulator.start()
    try:
        async with Bot(
            emulator.token, base_url=f"{emulator.api_url}/bot", base_file_url=emulator.file_url
        ) as tg:
            yield emulator, pace, tg
    finally:
        await emulator.stop()


async def download(bot: Bot, file_id: str) -> bytes:
    return bytes(await (await bot.get_file(file_id)).download_as_bytearray())


async def test_media_a_user_sends_arrives_as_telegram_sends_it(
    emu: TelegramEmulator, bot: Bot
) -> None:
    owner = emu.user(OWNER)
    owner.send_voice("brakes squeak", duration=7)
    owner.send_document("the invoice", file_name="invoice.pdf")
    owner.send_sticker("🚗")
    owner.send_location(39.9042, 116.4074)
    owner.send_video("the noise", duration=9)
    owner.send_audio(duration=61, title="Engine", performer="Fang")
    owner.send_video_note(duration=6)
    voice, document, sticker, location, video, audio, note = [
        u.message for u in await bot.get_updates()
    ]
    assert seconds(voice.voice.duration) == 7 and voice.voice.mime_type == "audio/ogg"
    assert voice.caption == "brakes squeak" and voice.voice.file_size
    assert (await download(bot, voice.voice.file_id)).startswith(b"OggS")
    assert (document.document.file_name, document.document.mime_type) == (
        "invoice.pdf", "application/pdf")
    assert document.caption == "the invoice"
    assert (await download(bot, document.document.file_id)).startswith(b"%PDF")
    assert sticker.sticker.type == "regular" and sticker.sticker.emoji == "🚗"
    assert not sticker.sticker.is_animated and not sticker.sticker.is_video
    assert (sticker.sticker.width, sticker.sticker.height) == (512, 512)
    assert sticker.caption is None
    assert (await download(bot, sticker.sticker.file_id))[8:12] == b"WEBP"
    assert (location.location.latitude, location.location.longitude) == (39.9042, 116.4074)
    assert seconds(video.video.duration) == 9 and video.video.mime_type == "video/mp4"
    assert video.caption == "the noise" and video.video.width == 640
    assert (await download(bot, video.video.file_id))[4:8] == b"ftyp"
    assert seconds(audio.audio.duration) == 61 and audio.audio.title == "Engine"
    assert audio.audio.performer == "Fang" and audio.caption is None
    assert (await download(bot, audio.audio.file_id)).startswith(b"ID3")
    assert seconds(note.video_note.duration) == 6 and note.video_note.length == 240
    ids = [voice.voice.file_id, document.document.file_id, sticker.sticker.file_id]
    assert [i[:4] for i in ids] == ["AwAC", "BQAC", "CAAC"]  # Telegram's prefixes per type
    transcript = owner.transcript()
    assert [k for m in transcript for k in ("voice", "document", "sticker", "location",
                                            "video", "audio", "video_note") if k in m] == [
        "voice", "document", "sticker", "location", "video", "audio", "video_note"]
    with pytest.raises(ValueError, match="no such place"):
        owner.send_location(91.0, 0.0)


async def test_group_members_post_media_in_a_topic(emu: TelegramEmulator, bot: Bot) -> None:
    group = emu.group(STAFF_GROUP, "Service desk")
    topic = await bot.create_forum_topic(STAFF_GROUP, "Ticket #3")
    thread = topic.message_thread_id
    group.send_photo(77, "the part", message_thread_id=thread)
    group.send_voice(77, "listen", thread, duration=2)
    group.send_document(77, message_thread_id=thread, file_name="quote.xlsx",
                        mime_type="application/vnd.ms-excel", data=b"PK\x03\x04")
    group.send_sticker(77, "👌", thread)
    group.send_location(77, message_thread_id=thread)
    group.send_video(77)
    group.send_audio(77, "a recording", thread)
    photo, voice, document, sticker, location, video, audio = [
        u.message for u in await bot.get_updates()
    ]
    in_topic = [photo, voice, document, sticker, location, audio]
    assert all(m.message_thread_id == thread and m.is_topic_message for m in in_topic)
    assert video.message_thread_id is None  # the General topic
    assert photo.caption == "the part" and seconds(voice.voice.duration) == 2
    assert await download(bot, document.document.file_id) == b"PK\x03\x04"
    assert document.document.file_name == "quote.xlsx" and sticker.sticker.emoji == "👌"
    assert location.location.latitude == 31.2304 and audio.caption == "a recording"
    kinds = [next(k for k in ("photo", "voice", "document", "sticker", "location", "audio")
                  if k in m) for m in group.messages(thread) if not m["from_bot"]]
    assert kinds == ["photo", "voice", "document", "sticker", "location", "audio"]


async def test_copy_message_relays_a_voice_note_into_a_topic(
    emu: TelegramEmulator, bot: Bot
) -> None:
    owner = emu.user(OWNER, "Fang")
    group = emu.group(STAFF_GROUP, "Service desk")
    thread = (await bot.create_forum_topic(STAFF_GROUP, "Ticket #12")).message_thread_id
    original = owner.send_voice("brakes squeak")
    copied = await bot.copy_message(
        STAFF_GROUP, OWNER, original["message_id"], message_thread_id=thread,
        caption="<b>Fang</b>: brakes squeak", parse_mode="HTML",
    )
    assert isinstance(copied, MessageId)  # not a Message: Telegram answers only its id
    (posted,) = [m for m in group.messages(thread) if m["from_bot"] and "voice" in m]
    assert posted["message_id"] == copied.message_id
    assert posted["voice"] == original["voice"]  # the same file, not a new upload
    assert posted["caption_entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    assert "forward_origin" not in posted and posted["from"]["is_bot"]
    unique = original["voice"]["file_unique_id"]
    assert group.bot_media(thread) == [("voice", unique, "Fang: brakes squeak")]
    assert group.bot_texts(thread) == ["Fang: brakes squeak"]

    # No caption given: the original's stays; an empty one removes it.
    await bot.copy_message(STAFF_GROUP, OWNER, original["message_id"], message_thread_id=thread)
    await bot.copy_message(STAFF_GROUP, OWNER, original["message_id"], caption="")
    assert group.bot_media() == [("voice", unique, "Fang: brakes squeak"),
                                 ("voice", unique, "brakes squeak"), ("voice", unique, None)]
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.copy_message(STAFF_GROUP, OWNER, original["message_id"], caption="x" * 1025)

    # Staff answer back: a text keeps its entities, the bot's own messages copy too.
    answer = await bot.send_message(
        STAFF_GROUP, "<i>Come in on Monday</i>", parse_mode="HTML", message_thread_id=thread
    )
    await bot.copy_message(OWNER, STAFF_GROUP, answer.message_id,
                           reply_markup=keyboard(("Thanks", "t:1")))
    back = owner.last_bot_message()
    assert back["text"] == "Come in on Monday" and back["entities"][0]["type"] == "italic"
    assert "message_thread_id" not in back and back["reply_markup"]["inline_keyboard"]
    assert owner.bot_media() == [] and owner.bot_texts() == ["Come in on Monday"]


async def test_copy_keeps_what_telegram_keeps_per_kind(emu: TelegramEmulator, bot: Bot) -> None:
    """A sticker, location or contact has no caption: Telegram ignores a new one."""
    owner = emu.user(OWNER)
    group = emu.group(STAFF_GROUP, "Service desk")
    sticker = owner.send_sticker("🚗")
    location = owner.send_location()
    contact = owner.share_contact("+8613900139000")
    document = owner.send_document("scan")
    photo = owner.send_photo("door")
    for message in (sticker, location, contact, document, photo):
        await bot.copy_message(STAFF_GROUP, OWNER, message["message_id"], caption="new")
    assert group.bot_media() == [
        ("sticker", sticker["sticker"]["file_unique_id"], None),
        ("location", None, None),
        ("document", document["document"]["file_unique_id"], "new"),
        ("photo", photo["photo"][-1]["file_unique_id"], "new"),
    ]
    copies = [m for m in group.messages() if m["from_bot"]]
    assert "caption" not in copies[0] and copies[0]["sticker"]["emoji"] == "🚗"
    assert copies[2]["contact"]["phone_number"] == "+8613900139000"
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):  # parsed all the same
        await bot.copy_message(STAFF_GROUP, OWNER, sticker["message_id"], caption="<b>x",
                               parse_mode="HTML")
    above = await bot.copy_message(STAFF_GROUP, OWNER, photo["message_id"], caption="above",
                                   show_caption_above_media=True)
    assert group.messages()[-1]["show_caption_above_media"] is True
    await bot.copy_message(STAFF_GROUP, STAFF_GROUP, above.message_id, caption="below")
    assert "show_caption_above_media" not in group.messages()[-1]  # a new caption resets it
    assert group.bot_texts()[-2:] == ["above", "below"]


async def test_copy_message_refusals(
    emu: TelegramEmulator, bot: Bot, http: aiohttp.ClientSession
) -> None:
    owner = emu.user(OWNER)
    emu.user(OWNER + 1)
    emu.group(STAFF_GROUP, "Service desk")
    thread = (await bot.create_forum_topic(STAFF_GROUP, "Ticket #1")).message_thread_id
    voice = owner.send_voice()
    with pytest.raises(BadRequest, match=r"(?i)^message to copy not found$"):
        await bot.copy_message(STAFF_GROUP, OWNER, 999)
    status, body = await call(http, emu, "copyMessage", json={
        "chat_id": STAFF_GROUP, "from_chat_id": OWNER, "message_id": 999})
    assert (status, body["description"]) == (400, "Bad Request: message to copy not found")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.copy_message(STAFF_GROUP, -100999, voice["message_id"])
    with pytest.raises(BadRequest, match=r"(?i)^the message can't be copied$"):
        await bot.copy_message(OWNER, STAFF_GROUP, thread)  # "topic created", a service message
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.copy_message(STAFF_GROUP, OWNER, voice["message_id"], message_thread_id=4040)
    emu.set_blocked(OWNER + 1, True)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.copy_message(OWNER + 1, OWNER, voice["message_id"])
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_voice(OWNER + 1, voice["voice"]["file_id"])
    assert await bot.delete_message(OWNER, voice["message_id"])
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await bot.copy_message(STAFF_GROUP, OWNER, voice["message_id"])
    assert emu.send_times == {}  # nothing refused was counted as sent


async def test_copies_and_media_sends_count_against_the_flood_limits(
    paced: tuple[TelegramEmulator, VirtualPace, Bot],
) -> None:
    emu, pace, bot = paced
    owner = emu.user(OWNER)
    group = emu.group(STAFF_GROUP, "Service desk")
    voice = owner.send_voice("hi")
    for _ in range(20):
        await bot.copy_message(STAFF_GROUP, OWNER, voice["message_id"])
    with pytest.raises(RetryAfter) as caught:
        await bot.copy_message(STAFF_GROUP, OWNER, voice["message_id"])
    assert 1 < retry_after_of(caught.value) <= 60  # the group's minute is not over
    with pytest.raises(RetryAfter):
        await bot.send_location(STAFF_GROUP, latitude=1.0, longitude=2.0)
    pace.advance(60)
    await bot.copy_message(STAFF_GROUP, OWNER, voice["message_id"])
    assert len(group.bot_media()) == 21 and len(emu.send_times[STAFF_GROUP]) == 21

    # A private chat: a burst of three (any kind of message), then 429.
    await bot.send_voice(OWNER, voice["voice"]["file_id"])
    await bot.copy_message(OWNER, OWNER, voice["message_id"])
    await bot.send_sticker(OWNER, (await bot.send_sticker(STAFF_GROUP, b"RIFF")).sticker.file_id)
    with pytest.raises(RetryAfter):
        await bot.copy_message(OWNER, OWNER, voice["message_id"])
    assert emu.stats["429"] == 3 and len(owner.bot_media()) == 3


async def test_bot_sends_media_by_file_id_or_upload(
    paced: tuple[TelegramEmulator, VirtualPace, Bot],
) -> None:
    emu, _, bot = paced
    owner = emu.user(OWNER)
    group = emu.group(STAFF_GROUP, "Service desk")
    voice = owner.send_voice()["voice"]
    document = owner.send_document(file_name="invoice.pdf")["document"]
    sticker = owner.send_sticker("🚗")["sticker"]
    sent_voice = await bot.send_voice(STAFF_GROUP, voice["file_id"], caption="<b>hear</b>",
                                      parse_mode="HTML")
    assert sent_voice.voice.file_unique_id == voice["file_unique_id"]
    assert sent_voice.caption == "hear" and seconds(sent_voice.voice.duration) == 3
    sent_doc = await bot.send_document(STAFF_GROUP, document["file_id"], caption="scan")
    assert sent_doc.document.file_name == "invoice.pdf"
    sent_sticker = await bot.send_sticker(STAFF_GROUP, sticker["file_id"])
    assert sent_sticker.sticker.emoji == "🚗" and sent_sticker.caption is None
    here = await bot.send_location(STAFF_GROUP, latitude=31.23, longitude=121.47)
    assert (here.location.latitude, here.location.longitude) == (31.23, 121.47)
    uploaded = await bot.send_document(STAFF_GROUP, b"%PDF-1.7 report", filename="report.pdf")
    assert uploaded.document.file_name == "report.pdf"
    assert uploaded.document.mime_type == "application/pdf"
    assert await download(bot, uploaded.document.file_id) == b"%PDF-1.7 report"
    video = await bot.send_video(STAFF_GROUP, b"\x00\x00\x00\x18ftypmp42", duration=12,
                                 caption="clip")
    audio = await bot.send_audio(STAFF_GROUP, b"ID3 audio", title="Horn", filename="horn.mp3")
    assert seconds(video.video.duration) == 12 and audio.audio.title == "Horn"
    assert [kind for kind, _, _ in group.bot_media()] == [
        "voice", "document", "sticker", "location", "document", "video", "audio"]
    assert group.bot_texts() == ["hear", "scan", "clip"]

    with pytest.raises(BadRequest, match=r"(?i)invalid location specified"):
        await bot.send_location(STAFF_GROUP, latitude=95.0, longitude=10.0)
    photo = owner.send_photo()["photo"][-1]["file_id"]
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type Photo as VoiceNote"):
        await bot.send_voice(STAFF_GROUP, photo)
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type VoiceNote as Photo"):
        await bot.send_photo(STAFF_GROUP, voice["file_id"])
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_voice(STAFF_GROUP, "nonsense")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_document(STAFF_GROUP, document["file_id"], caption="x" * 1025)
    assert len(group.bot_media()) == 7  # the refused sends posted nothing


# ------------------------------------------------------------------ webhook


async def test_webhook_delivery_with_secret_header(emu: TelegramEmulator, bot: Bot) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()
    failures = {"left": 1}

    async def hook(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=500)
        received.put_nowait(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        owner = emu.user(OWNER)
        owner.send_text("stale")
        assert await bot.set_webhook(
            f"http://127.0.0.1:{port}/tg", secret_token="s3cret-Token_1", drop_pending_updates=True
        )
        owner.send_text("hello webhook")
        secret, update = await asyncio.wait_for(received.get(), 5)  # after one retry
        assert secret == "s3cret-Token_1"
        assert Update.de_json(update, bot).message.text == "hello webhook"
        await emu.wait_idle()
        info = await bot.get_webhook_info()
        assert info.url.endswith("/tg") and info.pending_update_count == 0
        with pytest.raises(Conflict):
            await bot.get_updates()
        with pytest.raises(BadRequest, match=r"(?i)secret token"):
            await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="bad token!")
        assert await bot.delete_webhook()
        owner.send_text("polling again")
        (polled,) = await bot.get_updates()
        assert polled.message.text == "polling again"
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ a whole PTB Application


async def test_ptb_application_polls_the_emulator(emu: TelegramEmulator) -> None:
    """PTB's own polling loop, handlers and callback answers, end to end over HTTP."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_html(
            "<b>Welcome</b>, how was your visit?",
            reply_markup=keyboard(("Great", "s:10"), ("Poor", "s:2")),
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer("Thanks!")
        await query.edit_message_text(f"You chose {query.data}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app = Application.builder().token(emu.token).base_url(f"{emu.api_url}/bot").build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    owner = emu.user(OWNER, "Fang")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=timedelta(seconds=5))
        try:
            owner.send_text("/start")
            await owner.wait_for_bot_messages(1)
            assert owner.bot_texts() == ["Welcome, how was your visit?"]
            owner.press("Poor")
            await emu.wait_until(lambda: owner.bot_texts() == ["You chose s:2"], what="edit")
            await emu.wait_until(lambda: len(owner.callback_answers) == 1, what="answer")
            assert owner.callback_answers[0]["text"] == "Thanks!"
            owner.send_text("still there?")
            await owner.wait_for_bot_messages(2)
            assert owner.bot_texts()[-1] == "echo: still there?"
        finally:
            await app.updater.stop()
            await app.stop()
    assert emu.pending_updates == 0
    assert emu.stats["calls"]["deleteWebhook"] == 1
