"""Error alerts to the staff group, rate-limited and digested (issue 20, point 4): ten
identical errors within a minute make one alert at once and, when the window closes, one
digest with their count; never the owner's words. What the staff group received is read
from the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.delivery.alerts import ErrorDigest
from db.models import InboxStatus, InboxUpdate
from tests.conftest import BotEnv
from tests.test_complaints import group, tenv  # noqa: F401 (a fixture)
from tests.test_inbox import add_flaky


async def test_ten_identical_errors_in_a_minute_make_one_alert_and_one_count(
        tenv: BotEnv) -> None:  # noqa: F811 (the fixture)
    env = tenv
    add_flaky(env, times=10_000)  # "boom" always fails: a broken handler
    staff = group(env)
    before = len(staff.bot_texts())
    for n in range(10):
        env.emu.user(6100 + n).send_text(f"boom secret words {n}")
    await env.poll()
    for wait in (1, 5, 30):  # the inbox's retries, then every update is parked
        env.clock.advance(seconds=wait)
        await env.poll()
    assert await InboxUpdate.filter(status=InboxStatus.PARKED).count() == 10
    told = staff.bot_texts()[before:]
    assert len(told) == 1  # the first at once; the other nine counted
    assert "RuntimeError" in told[0] and "carebot inbox retry" in told[0]

    await env.carebot.tell_error_digests()  # the window is still open: nothing yet
    env.clock.advance(minutes=5)
    await env.carebot.tell_error_digests()
    assert len(staff.bot_texts()) == before + 1

    env.clock.advance(minutes=5)  # ten minutes after the first: the window closes
    await env.carebot.tell_error_digests()
    told = staff.bot_texts()[before:]
    assert len(told) == 2
    assert "最近 10 分钟内共有 10 条更新无法处理（RuntimeError）" in told[1]
    assert not any("secret words" in t or "boom" in t for t in told)  # ids and the class

    env.clock.advance(minutes=10)  # a quiet window: nothing more to say
    await env.carebot.tell_error_digests()
    env.clock.advance(minutes=10)
    await env.carebot.tell_error_digests()
    assert len(staff.bot_texts()) == before + 2

    env.emu.user(6200).send_text("boom again")  # after the quiet: told at once again
    await env.poll()
    for wait in (1, 5, 30):
        env.clock.advance(seconds=wait)
        await env.poll()
    assert len(staff.bot_texts()) == before + 3


def test_a_steady_flood_makes_one_message_per_window() -> None:
    digest = ErrorDigest(minutes=10)
    start = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    told = []
    for minute in range(35):  # one error a minute for 35 minutes, a tick each minute
        now = start + timedelta(minutes=minute)
        told += [("digest", d.count) for d in digest.due(now)]
        if digest.note("error:KeyError", now) is not None:
            told.append(("first", 1))
    assert told == [("first", 1), ("digest", 10), ("digest", 10), ("digest", 10)]
    assert digest.note("error:ValueError", start) is not None  # another kind: its own window
