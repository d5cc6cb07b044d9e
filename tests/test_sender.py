"""The sender is the one place that calls Bot API methods that send, edit or answer."""

from __future__ import annotations

import ast
import asyncio
import secrets
from pathlib import Path

from db.models import Customer, FailedSend, InboxStatus, InboxUpdate
from tests.conftest import BotEnv
from tests.test_survey import linked_owner, send_survey, senv  # noqa: F401 (a fixture)

BOT = Path(__file__).resolve().parent.parent / "bot"

# Bot API methods (and PTB's shortcuts for them on Message, Chat, ...) that make Telegram
# send, edit or delete something a person sees, answer a button or change a forum topic.
SENDING = frozenset({
    "send_message", "send_photo", "send_document", "send_video", "send_voice", "send_audio",
    "send_sticker", "send_location", "send_media_group", "send_chat_action",
    "copy_message", "copy_messages", "forward_message", "forward_messages",
    "edit_message_text", "edit_message_caption", "edit_message_media",
    "edit_message_reply_markup", "delete_message", "delete_messages",
    "answer_callback_query", "create_forum_topic", "edit_forum_topic", "close_forum_topic",
    "reopen_forum_topic", "delete_forum_topic", "reply_text", "reply_html", "reply_markdown",
    "reply_photo", "set_message_reaction", "pin_chat_message",
})

EXEMPT = (
    BOT / "delivery" / "sender.py",  # the sender itself
    BOT / "sandbox",  # the emulator IS the Telegram server: it answers these calls
    BOT / "bench.py",  # benchmarks drive a baseline (an unpaced bot) directly, on purpose
)


def _exempt(path: Path) -> bool:
    return any(path == e or e in path.parents for e in EXEMPT)


def _receiver_name(node: ast.expr) -> str:
    """The text of what a method is called on: ``update.callback_query`` for
    ``update.callback_query.answer()``; "" for anything that is not names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _receiver_name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        receiver = _receiver_name(node.func.value)
        if receiver.rsplit(".", 1)[-1] == "sender":  # sender.text(...): the point
            continue
        on_a_query = name == "answer" and "query" in receiver.lower()
        if name in SENDING or on_a_query:
            found.append((node.lineno, name))
    return [f"{path.relative_to(BOT.parent)}:{line} {name}" for line, name in sorted(found)]


def test_only_the_sender_calls_sending_bot_api_methods() -> None:
    """Every Bot API call that sends, edits, deletes, answers a callback or manages a forum
    topic goes through ``bot.delivery.sender.Sender``, which keeps Telegram's limits and
    records what could not be sent.

    The rule, by names rather than types (simple on purpose): no file under ``bot/`` (but
    those in EXEMPT) may call ``X.<name>(...)`` with ``<name>`` in SENDING, nor
    ``X.answer(...)`` where X's dotted name contains "query" (``query.answer()``,
    ``update.callback_query.answer()``) -- unless X's last name is ``sender``
    (``sender.text``, ``svc.sender.edit_text``): those are the Sender's own
    methods. ``services.sender.bot.send_message`` is still caught (its X ends in ``bot``)."""
    offences = []
    for path in sorted(BOT.rglob("*.py")):
        if not _exempt(path):
            offences += _offences(path)
    assert not offences, "call these through the Sender instead:\n" + "\n".join(offences)


# --------------------------------------------------------------------------- behaviour
# Telegram-strict emulator (conftest), virtual pacing time: limits hold, no real waits.

async def test_a_score_pressed_right_after_the_survey_gets_its_question_after_a_429(
        senv: BotEnv) -> None:  # noqa: F811 (the fixture)
    owner, customer, vehicle = await linked_owner(senv)
    await send_survey(senv, customer, vehicle)
    senv.emu.fail_next("sendMessage", retry_after=3)  # Telegram: too soon for this chat
    owner.press("3")
    await senv.poll()
    assert senv.emu.stats["429"] == 1
    assert "哪方面" in owner.bot_texts()[-1]  # asked after waiting out retry_after
    assert owner.callback_answers[-1]["text"] == "已记录 3 分，谢谢！"
    assert await FailedSend.all().count() == 0
    assert await InboxUpdate.filter(status=InboxStatus.DONE).count() == \
        await InboxUpdate.all().count()  # nothing failed, nothing parked
    staff = senv.emu.group(-1001000000042, "客服中心")
    assert not any("error" in t for t in staff.bot_texts())


async def test_150_owners_linking_within_a_second_all_hear_back_without_a_429(
        env: BotEnv) -> None:
    await Customer.bulk_create([
        Customer(name=f"车主{i}", phone=f"+86136{i:08d}", link_token=secrets.token_urlsafe(12))
        for i in range(150)])
    owners = await Customer.all().order_by("id")
    for i, customer in enumerate(owners):
        env.emu.user(9_000 + i).send_text(f"/start {customer.link_token}")
    await env.poll()
    assert env.emu.stats["429"] == 0
    assert env.emu.max_sends_per_second() <= 30
    linked = await Customer.filter(telegram_user_id__isnull=False).count()
    assert linked == 150
    silent = [i for i in range(150) if not env.emu.user(9_000 + i).bot_texts()]
    assert not silent


async def test_replies_overtake_a_running_campaign(env: BotEnv) -> None:
    """A campaign is being sent at the full rate when 30 other owners type /help: every reply
    arrives while the campaign runs, the campaign finishes after them, and Telegram never
    has to say 429 (replies and marketing share one paced budget). That replies overtake the
    marketing waiting is shown where the queue is exact: tests/test_limits.py."""
    from tests.test_campaigns import UID, make_owners, new_campaign, start_campaign

    env.clock.set(env.clock.now().replace(hour=3))  # 11:00 in the dealership: not quiet
    crowd = 200  # marketing messages waiting for their turn at any moment
    dispatcher = env.carebot.dispatcher
    dispatcher.settings = env.settings.model_copy(update={"dispatch_concurrency": crowd})
    await make_owners(env, 600)
    await start_campaign(env, await new_campaign(env))
    helpers = [env.emu.user(30_000 + i) for i in range(30)]
    sending = asyncio.create_task(env.tick())
    while env.emu.stats["calls"]["sendMessage"] < 60:  # the campaign is under way
        await asyncio.sleep(0.01)
    for owner in helpers:
        owner.send_text("/help")
    before = sum(len(times) for times in env.emu.send_times.values())
    await env.poll()
    report = await sending
    assert env.emu.stats["429"] == 0
    assert report.sent == 600
    order = sorted((t, chat) for chat, times in env.emu.send_times.items() for t in times)
    chats = [chat for _, chat in order]
    replies = [i for i, chat in enumerate(chats) if 30_000 <= chat < 30_030]
    assert len(replies) == 30 and all(h.bot_texts() for h in helpers)
    # That each reply overtakes the marketing waiting when it is queued is shown where the
    # queue is exact (tests/test_limits.py::test_replies_go_before_the_marketing_already_
    # waiting); here: every reply arrived while the campaign ran, and nothing got a 429.
    assert before < replies[0]
    assert UID <= chats[-1] < UID + 600  # the campaign went on after the replies


async def test_a_refusal_that_is_not_a_network_error_is_recorded_not_retried(
        env: BotEnv) -> None:
    owner = env.emu.user(4711)
    env.emu.fail_next("sendMessage", error_code=409, count=5)  # e.g. Conflict
    owner.send_text("/help")
    await env.poll()
    assert env.emu.stats["calls"]["sendMessage"] == 1  # tried once
    failed = await FailedSend.get(chat_id=4711)
    assert failed.lane == "reply" and "409" not in failed.method
    assert owner.bot_texts() == []


async def test_a_staff_group_that_refuses_the_bot_is_shown_to_a_person(env: BotEnv) -> None:
    from bot.delivery.limits import Lane

    env.emu.group(-100777, "客服中心")
    env.emu.fail_next("sendMessage", error_code=403, description="Forbidden: bot was kicked")
    sent = await env.carebot.sender.text(-100777, "通知", lane=Lane.STAFF)
    assert sent is None
    failed = await FailedSend.get(chat_id=-100777)
    assert "403" in failed.error and failed.lane == "staff"
