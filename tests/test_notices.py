"""Notices owed to staff (bot/delivery/notices.py): a row per cause, sent once, retried
until a chat takes it, sent by the instance that does the staff side."""

from __future__ import annotations

from bot.delivery import notices
from bot.handlers.staff import relay_tick
from db.models import FailedSend, Notice, NoticeStatus
from tests.conftest import BotEnv
from tests.test_survey import STAFF_CHAT, senv  # noqa: F401 (a fixture)


async def test_a_notice_is_sent_once_per_cause(senv: BotEnv) -> None:  # noqa: F811
    services = senv.carebot.services
    staff = senv.emu.group(STAFF_CHAT, "客服中心")
    assert await notices.tell(services, "booking:7:bk_staff_new", [STAFF_CHAT], "新预约 #7")
    assert not await notices.tell(services, "booking:7:bk_staff_new", [STAFF_CHAT], "新预约 #7")
    await relay_tick(services)
    assert staff.bot_texts().count("新预约 #7") == 1
    assert (await Notice.get(key="booking:7:bk_staff_new")).status == NoticeStatus.SENT


async def test_a_refused_notice_waits_then_goes_to_the_next_chat_or_again(
        senv: BotEnv) -> None:  # noqa: F811
    services = senv.carebot.services
    staff = senv.emu.group(STAFF_CHAT, "客服中心")
    advisor = senv.emu.user(4242)
    advisor.block()  # the advisor's chat refuses: the staff chat is next
    assert await notices.tell(services, "campaign:1:2:i", [4242, STAFF_CHAT], "有意向")
    assert staff.bot_texts() == ["有意向"]

    senv.emu.fail_next("sendMessage", error_code=400, count=1)  # nobody takes this one now
    assert not await notices.tell(services, "score:9:handover", [STAFF_CHAT], "低分 3")
    row = await Notice.get(key="score:9:handover")
    assert (row.status, row.attempts) == (NoticeStatus.PENDING, 1)
    assert await FailedSend.filter(method="sendMessage").count() == 1  # shown to staff
    await relay_tick(services)
    assert "低分 3" not in staff.bot_texts()  # its next try is in a minute
    senv.clock.advance(minutes=1)
    await relay_tick(services)
    assert staff.bot_texts().count("低分 3") == 1
    assert (await Notice.get(id=row.id)).status == NoticeStatus.SENT
