"""The inbox (bot/inbox.py): stored before Telegram hears "got it", handled in order, a
failing handler tried again and then parked for a person, nothing lost in a restart."""

from __future__ import annotations

import pytest
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bot import inbox
from bot.app import create_app
from bot.cli import inbox as cli_inbox
from db.models import InboxStatus, InboxUpdate, MessageLog
from tests.conftest import BotEnv
from tests.test_complaints import tenv  # noqa: F401 (a fixture)
from tests.test_survey import senv  # noqa: F401 (a fixture)


class Flaky:
    """A handler of its own that fails the first ``times`` times it sees "boom"."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise RuntimeError(f"failure {self.calls}")


def add_flaky(env: BotEnv, times: int) -> Flaky:
    flaky = Flaky(times)
    env.carebot.application.add_handler(MessageHandler(filters.Regex("^boom"), flaky),
                                        group=-1)
    return flaky


async def test_a_handler_that_fails_twice_then_succeeds_is_handled_once(env: BotEnv) -> None:
    flaky = add_flaky(env, times=2)
    owner = env.emu.user(501)
    owner.send_text("boom 1")
    await env.poll()
    row = await InboxUpdate.get(chat_key=501)
    assert (row.status, row.attempts) == (InboxStatus.PENDING, 1)
    assert owner.bot_texts() == []  # not yet: it is tried again in a second
    env.clock.advance(seconds=1)
    await env.poll()
    env.clock.advance(seconds=5)
    await env.poll()
    row = await InboxUpdate.get(chat_key=501)
    assert (row.status, row.attempts, flaky.calls) == (InboxStatus.DONE, 3, 3)
    assert len(owner.bot_texts()) == 1  # answered once
    assert await MessageLog.filter(chat_id=501, direction="in").count() == 1
    env.clock.advance(minutes=5)
    await env.poll()
    assert flaky.calls == 3  # done is done


async def test_one_chats_updates_wait_for_its_failing_one(env: BotEnv) -> None:
    add_flaky(env, times=1)
    owner, other = env.emu.user(502), env.emu.user(503)
    owner.send_text("boom first")
    owner.send_text("second")
    other.send_text("hello")
    await env.poll()
    assert owner.bot_texts() == []  # the second waits for the first: order is kept
    assert len(other.bot_texts()) == 1  # other chats go on
    env.clock.advance(seconds=1)
    await env.poll()
    logged = await MessageLog.filter(chat_id=502, direction="in").order_by("id") \
        .values_list("text", flat=True)
    assert logged == ["boom first", "second"]


async def test_an_always_failing_update_is_parked_listed_and_retried_by_hand(
        env: BotEnv, capsys: pytest.CaptureFixture[str]) -> None:
    flaky = add_flaky(env, times=4)
    owner = env.emu.user(504)
    owner.send_text("boom forever")
    await env.poll()
    for wait in (1, 5, 30):
        env.clock.advance(seconds=wait)
        await env.poll()
    row = await InboxUpdate.get(chat_key=504)
    assert (row.status, row.attempts) == (InboxStatus.PARKED, 4)
    assert "RuntimeError: failure 4" in row.last_error
    env.clock.advance(hours=1)
    await env.poll()
    assert flaky.calls == 4  # parked stays parked

    assert await cli_inbox._list(50) == 0
    listed = capsys.readouterr().out
    assert "parked: 1" in listed and f"update {row.update_id}" in listed
    assert await cli_inbox._show([row.id]) == 0
    assert "boom forever" in capsys.readouterr().out

    assert await cli_inbox._retry([row.id], every=False) == 0  # the bug is fixed: again
    await env.poll()
    row = await InboxUpdate.get(id=row.id)
    assert row.status == InboxStatus.DONE and flaky.calls == 5
    assert len(owner.bot_texts()) == 1


async def test_stored_updates_survive_a_crash_before_they_are_handled(env: BotEnv) -> None:
    """Polling: the batch is stored, the offset moves on (Telegram forgets them), the
    process dies before handling any: the next process handles every one, once."""
    for user_id in range(601, 611):
        env.emu.user(user_id).send_text("/start")
    assert await env.carebot._fetch(wait=0) == 10  # stored, not handled
    assert env.emu.pending_updates == 10  # confirmed with the next getUpdates
    await env.carebot.stop()  # "crash": nothing handled in this process

    env.carebot = create_app(env.settings, env.clock, pace=env.emu.pace)
    await env.carebot.initialize()
    await env.poll()
    assert env.emu.pending_updates == 0
    assert await InboxUpdate.filter(status=InboxStatus.DONE).count() == 10
    for user_id in range(601, 611):
        assert len(env.emu.user(user_id).bot_texts()) == 1


async def test_a_repeated_update_id_is_stored_once(db: str, clock) -> None:  # type: ignore[no-untyped-def]
    update = {"update_id": 77, "message": {"message_id": 1, "date": 0, "text": "hi",
                                           "chat": {"id": 9, "type": "private"},
                                           "from": {"id": 9, "is_bot": False,
                                                    "first_name": "A"}}}
    await inbox.store([update], clock.now())
    await inbox.store([update, {**update, "update_id": 78}], clock.now())
    assert await InboxUpdate.all().order_by("update_id").values_list("update_id", "chat_key") \
        == [(77, 9), (78, 9)]


def test_chat_key_is_the_chat_or_the_sender() -> None:
    assert inbox.chat_key({"update_id": 1, "message": {"chat": {"id": -100}}}) == -100
    assert inbox.chat_key({"update_id": 1, "callback_query": {
        "from": {"id": 5}, "message": {"chat": {"id": 5}}}}) == 5
    assert inbox.chat_key({"update_id": 1, "callback_query": {"from": {"id": 6}}}) == 6
    assert inbox.chat_key({"update_id": 1, "my_chat_member": {"chat": {"id": 7}}}) == 7
    assert inbox.chat_key({"update_id": 1, "poll": {"id": "x"}}) == 0


async def _handle_again(env: BotEnv, update_id: int) -> None:
    """As after a crash between the handler's work and marking it done."""
    await InboxUpdate.filter(update_id=update_id).update(status=InboxStatus.PENDING)
    await env.poll()


async def test_a_start_or_a_score_press_handled_twice_changes_nothing(senv: BotEnv) -> None:  # noqa: F811 (the fixture)
    from db.models import Conversation, Customer, Score, Ticket
    from tests.test_survey import send_survey

    customer = await Customer.create(name="张伟", phone="+8613800138000",
                                     link_token="tok-once-only")
    owner = senv.emu.user(701)
    owner.send_text("/start tok-once-only")
    await senv.poll()
    linked = await Customer.get(id=customer.id)
    assert linked.telegram_user_id == 701 and linked.link_token != "tok-once-only"
    start = await InboxUpdate.get(chat_key=701)
    await _handle_again(senv, start.update_id)
    again = await Customer.get(id=customer.id)
    assert (again.telegram_user_id, again.link_token) == (701, linked.link_token)
    assert not await Conversation.filter(telegram_user_id=701, state="awaiting_contact").exists()
    assert "张伟" in owner.bot_texts()[-1]  # welcome back, not "this link is not valid"

    tp = await send_survey(senv, again, None)
    owner.press("3")
    await senv.poll()
    press = await InboxUpdate.filter(chat_key=701).order_by("-id").first()
    assert press is not None
    await _handle_again(senv, press.update_id)
    assert await Score.filter(touchpoint_id=tp.id, superseded_at__isnull=True).count() == 1
    assert await Score.filter(touchpoint_id=tp.id).count() == 1
    assert await Ticket.all().count() == 0


async def test_a_worker_whose_lease_ran_out_records_nothing(env: BotEnv) -> None:
    """A handler slower than its lease: another worker took the update again; the first one's
    outcome, arriving late, must not overwrite the second claim (nor unblock the chat)."""
    from datetime import timedelta

    env.emu.user(801).send_text("hello")
    await env.carebot._fetch(wait=0)
    now = env.clock.now()
    first = (await inbox.claim(now, limit=5))[0]
    later = now + inbox.LEASE + timedelta(seconds=1)
    assert await inbox.reclaim(later) == 1  # its worker looks dead
    second = (await inbox.claim(later, limit=5))[0]
    assert second.id == first.id and second.attempts == first.attempts + 1
    await env.carebot.inbox._record(first, None)  # the first worker finishes, late
    row = await InboxUpdate.get(id=first.id)
    assert (row.status, row.attempts) == (InboxStatus.HANDLING, second.attempts)
    await env.carebot.inbox._record(second, None)
    assert (await InboxUpdate.get(id=first.id)).status == InboxStatus.DONE


async def test_updates_of_an_instance_that_died_go_back_at_once(db: str, clock) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: rows claimed by an instance whose slot lock is gone are taken back without
    waiting for their lease; rows of a live instance, or of one not yet counted, stay."""
    update = {"message": {"message_id": 1, "date": 0, "text": "hi",
                          "chat": {"id": 9, "type": "private"},
                          "from": {"id": 9, "is_bot": False, "first_name": "A"}}}
    await inbox.store([{**update, "update_id": n, "message": {**update["message"],
                        "chat": {"id": n, "type": "private"}}} for n in (1, 2, 3)], clock.now())
    now = clock.now()
    for slot, expected in ((101, 1), (102, 1), (0, 1)):
        claimed = await inbox.claim(now, limit=1, slot=slot)
        assert len(claimed) == expected
    assert await inbox.reclaim(now, live={102}) == 1  # 101 is gone; 0 waits for its lease
    left = await InboxUpdate.filter(status=InboxStatus.HANDLING).order_by("update_id") \
        .values_list("claimed_by", flat=True)
    assert left == [102, 0]
    # a new instance starting in slot 102 (its holder died, the number was free again)
    assert await inbox.reclaim(now, live={102}, starting_slot=102) == 1


async def test_staff_are_told_of_a_parked_update_even_when_the_group_refuses_at_first(
        tenv: BotEnv) -> None:  # noqa: F811 (the fixture)
    from bot.handlers import staff as staff_side
    from db.models import Notice, NoticeStatus
    from tests.test_complaints import group

    add_flaky(tenv, times=4)
    tenv.emu.user(505).send_text("boom forever")
    await tenv.poll()
    for wait in (1, 5):
        tenv.clock.advance(seconds=wait)
        await tenv.poll()
    tenv.emu.fail_next("sendMessage", error_code=409, description="Conflict")
    tenv.clock.advance(seconds=30)
    await tenv.poll()  # parked now; the alert is refused once
    row = await InboxUpdate.get(chat_key=505)
    notice = await Notice.get(key__startswith=f"parked:{row.update_id}:")
    assert (row.status, notice.status, notice.attempts) == \
        (InboxStatus.PARKED, NoticeStatus.PENDING, 1)
    assert not any(str(row.update_id) in t for t in group(tenv).bot_texts())
    tenv.clock.advance(minutes=1)
    await staff_side.relay_tick(tenv.carebot.services)
    alert = [t for t in group(tenv).bot_texts() if str(row.update_id) in t]
    assert len(alert) == 1 and f"carebot inbox retry {row.id}" in alert[0]
    assert "boom" not in alert[0]  # ids, not what the owner wrote
    assert (await Notice.get(id=notice.id)).status == NoticeStatus.SENT
