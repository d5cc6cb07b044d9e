"""What needs a person, over real HTTP on SQLite and PostgreSQL: Today's block, the
/needs-a-person page listing parked updates and failed sends, Try again and Mark as seen
(CSRF, roles, audit), and what the page hides of owners' data from a role that may not
see it.

Rows are made directly with the ORM, as the inbox (bot/inbox.py) and the sender's failure
hook (bot/delivery/failures.py) leave them.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.web.console import access
from db.models import (
    AuditLog,
    Customer,
    FailedSend,
    InboxStatus,
    InboxUpdate,
    StaffRole,
)
from tests.browser.conftest import add_staff
from tests.test_console_access import csrf, signed_in, site  # noqa: F401 - the site fixture

ROLES = [r.value for r in StaffRole]
OWNER_CHAT = 5001
WORDS = "刹车有异响，明天能来看看吗"


async def parked(clock: FakeClock, n: int = 1, *, chat: int = OWNER_CHAT,
                 text: str = WORDS, error: str = "KeyError: 'vehicle'\nTraceback line two"
                 ) -> InboxUpdate:
    """A message update whose handler failed four times (received at 10:00 local)."""
    payload = {"update_id": 900 + n,
               "message": {"message_id": n, "date": 0, "text": text,
                           "chat": {"id": chat, "type": "private"},
                           "from": {"id": chat, "is_bot": False, "first_name": "车主"}}}
    now = clock.now()
    return await InboxUpdate.create(
        update_id=900 + n, chat_key=chat, kind="message", payload=payload,
        status=InboxStatus.PARKED, attempts=4, next_try_at=now + timedelta(seconds=30),
        received_at=now, last_error=error, handled_at=now)


async def failed_send(clock: FakeClock, *, chat: int | None = OWNER_CHAT,
                      lane: str = "reply") -> FailedSend:
    return await FailedSend.create(
        lane=lane, chat_id=chat, method="sendMessage",
        error="NetworkError: Telegram did not answer\nafter 5 tries", created_at=clock.now())


async def linked_owner() -> Customer:
    return await Customer.create(name="车主一", phone="+8613800130001", advisor="李娜",
                                 link_token="tok-1", telegram_user_id=OWNER_CHAT,
                                 telegram_chat_id=OWNER_CHAT)


async def page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as r:
        return r.status, await r.text()


async def post(http: aiohttp.ClientSession, url: str, token: str | None,
               **data: str) -> tuple[int, str]:
    """POST a console form (with the CSRF token unless None): (status, Location)."""
    if token is not None:
        data = {**data, "_csrf": token}
    async with http.post(url, data=data, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


# --------------------------------------------------------------------------- Today


async def test_today_shows_what_needs_a_person_only_when_there_is_something(
        site: str, clock: FakeClock) -> None:  # noqa: F811
    await add_staff("boss", "supervisor")
    await add_staff("agent1", "agent")
    http = await signed_in(site, "boss")
    async with http:
        status, body = await page(http, f"{site}/")
        assert status == 200 and 'id="needs-person"' not in body
        await parked(clock)
        status, body = await page(http, f"{site}/")
        assert 'id="needs-person"' in body and 'href="/needs-a-person#parked"' in body
        assert 'id="needs-failed"' not in body  # nothing failed: no tile for it
        await failed_send(clock)
        await failed_send(clock, chat=None, lane="staff")
        status, body = await page(http, f"{site}/")
        assert "<b>1</b><span>Parked messages from Telegram" in body
        assert "<b>2</b><span>Messages not sent" in body
        assert 'href="/needs-a-person#failed"' in body
    agent = await signed_in(site, "agent1")
    async with agent:
        status, body = await page(agent, f"{site}/")
        assert status == 200 and 'id="needs-person"' not in body  # not theirs to handle


# --------------------------------------------------------------------------- the list


async def test_the_page_lists_parked_updates_and_failed_sends(
        site: str, clock: FakeClock) -> None:  # noqa: F811
    customer = await linked_owner()
    update = await parked(clock)
    stranger = await parked(clock, 2, chat=777, text="hello")
    failure = await failed_send(clock)
    await add_staff("admin1", "admin")
    http = await signed_in(site, "admin1")
    async with http:
        status, body = await page(http, f"{site}/needs-a-person")
    assert status == 200
    parked_part, failed_part = body.split('id="failed"', 1)
    assert f'data-id="{update.id}"' in parked_part and f'data-id="{stranger.id}"' in parked_part
    assert "2026-11-03 10:00" in parked_part  # 02:00 UTC, in Asia/Shanghai
    assert f'<a href="/customers/{customer.id}">车主一</a>' in parked_part
    assert "<code>777</code>" in parked_part  # no linked owner: the chat id
    assert "KeyError: &#39;vehicle&#39;" in parked_part
    assert "Traceback line two" not in body  # the error's first line only
    assert WORDS in parked_part  # an admin may read what owners wrote
    assert f'action="/needs-a-person/updates/{update.id}/retry"' in parked_part
    assert f'data-id="{failure.id}"' in failed_part
    assert "sendMessage" in failed_part and "Reply" in failed_part
    assert "NetworkError: Telegram did not answer" in failed_part
    assert "after 5 tries" not in failed_part
    assert f'<a href="/customers/{customer.id}">车主一</a>' in failed_part
    assert f'action="/needs-a-person/failed/{failure.id}/seen"' in failed_part


async def test_a_role_that_may_not_see_owners_gets_chat_ids_and_no_text(
        site: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Owners' privacy: someone handling the inbox without access to owners' files (a role
    given only INBOX) sees the chat id, not the owner's name, and not what they wrote."""
    monkeypatch.setitem(access.PERMISSIONS, StaffRole.MANAGER,
                        frozenset({access.TODAY, access.INBOX}))
    customer = await linked_owner()
    await parked(clock)
    await failed_send(clock)
    await add_staff("ops", "manager")
    http = await signed_in(site, "ops")
    async with http:
        status, body = await page(http, f"{site}/needs-a-person")
    assert status == 200
    assert "车主一" not in body and f"/customers/{customer.id}" not in body
    assert f"<code>{OWNER_CHAT}</code>" in body
    assert WORDS not in body and "hidden (owner&#39;s data)" in body


@pytest.mark.parametrize("role", ROLES)
async def test_only_supervisors_managers_and_admins_open_the_page(site: str, clock: FakeClock,  # noqa: F811
                                                         role: str) -> None:
    update = await parked(clock)
    staff = await add_staff(f"user-{role}", role)
    allowed = role in ("supervisor", "manager", "admin")
    assert access.can(staff, access.INBOX) == allowed
    http = await signed_in(site, staff.login)
    async with http:
        status, body = await page(http, f"{site}/needs-a-person")
        assert status == (200 if allowed else 403), (role, status)
        if not allowed:
            assert WORDS not in body
        token = await csrf(http, f"{site}/")
        status, _ = await post(http, f"{site}/needs-a-person/updates/{update.id}/retry", token)
        assert status == (303 if allowed else 403)
    fresh = await InboxUpdate.get(id=update.id)
    assert fresh.status == (InboxStatus.PENDING if allowed else InboxStatus.PARKED)


# --------------------------------------------------------------------------- actions


async def test_try_again_queues_the_parked_update_and_is_audited(
        site: str, clock: FakeClock) -> None:  # noqa: F811
    update = await parked(clock)
    other = await parked(clock, 2)
    boss = await add_staff("boss", "supervisor")
    await add_staff("agent1", "agent")
    await add_staff("mkt", "marketing")
    url = f"{site}/needs-a-person/updates/{update.id}/retry"
    for login in ("agent1", "mkt"):
        http = await signed_in(site, login)
        async with http:
            assert await post(http, url, await csrf(http, f"{site}/")) == (403, "")
    http = await signed_in(site, "boss")
    async with http:
        for token in (None, "forged"):
            status, _ = await post(http, url, token)
            assert status == 403
        assert (await InboxUpdate.get(id=update.id)).status == InboxStatus.PARKED
        token = await csrf(http, f"{site}/needs-a-person")
        status, location = await post(http, url, token)
        assert status == 303 and location.startswith("/needs-a-person?done=retried&n=1")
        _, body = await page(http, f"{site}{location}")
        assert "1 message(s) queued again" in body
        assert f'data-id="{update.id}"' not in body and f'data-id="{other.id}"' in body
        status, location = await post(http, url, token)  # again: nothing left to retry
        assert location.startswith("/needs-a-person?done=retried&n=0")
    fresh = await InboxUpdate.get(id=update.id)
    assert fresh.status == InboxStatus.PENDING and fresh.attempts == 0
    assert fresh.next_try_at <= clock.now()  # due at once
    assert (await InboxUpdate.get(id=other.id)).status == InboxStatus.PARKED
    entry = await AuditLog.get(action="inbox.retry")
    assert entry.staff_id == boss.id and entry.target == f"inbox:{update.id}"
    assert entry.detail["update_id"] == update.update_id


async def test_try_all_again(site: str, clock: FakeClock) -> None:  # noqa: F811
    rows = [await parked(clock, n) for n in (1, 2, 3)]
    await add_staff("admin1", "admin")
    http = await signed_in(site, "admin1")
    async with http:
        token = await csrf(http, f"{site}/needs-a-person")
        status, location = await post(http, f"{site}/needs-a-person/updates/retry", token)
        assert status == 303 and "n=3" in location
        _, body = await page(http, f"{site}/")
        assert 'id="needs-person"' not in body
    assert {r.status for r in await InboxUpdate.filter(id__in=[r.id for r in rows])} \
        == {InboxStatus.PENDING}
    assert (await AuditLog.get(action="inbox.retry_all")).detail == {"count": 3}


async def test_mark_as_seen_hides_a_failed_send(site: str, clock: FakeClock) -> None:  # noqa: F811
    first = await failed_send(clock)
    second = await failed_send(clock, lane="marketing")
    await add_staff("boss", "supervisor")
    http = await signed_in(site, "boss")
    async with http:
        token = await csrf(http, f"{site}/needs-a-person")
        url = f"{site}/needs-a-person/failed/{first.id}/seen"
        assert (await post(http, url, None))[0] == 403
        assert (await FailedSend.get(id=first.id)).seen_at is None
        status, location = await post(http, url, token)
        assert status == 303 and location.startswith("/needs-a-person?done=seen&n=1")
        _, body = await page(http, f"{site}/needs-a-person")
        assert f'data-id="{first.id}"' not in body and f'data-id="{second.id}"' in body
        _, today = await page(http, f"{site}/")
        assert "<b>1</b><span>Messages not sent" in today
    assert (await FailedSend.get(id=first.id)).seen_at == clock.now()
    assert (await AuditLog.get(action="failed_send.seen")).target == f"failed_send:{first.id}"


async def test_mark_all_as_seen_spares_a_failure_newer_than_the_page(
        site: str, clock: FakeClock) -> None:  # noqa: F811
    shown = [await failed_send(clock) for _ in range(2)]
    await add_staff("boss", "supervisor")
    http = await signed_in(site, "boss")
    async with http:
        _, body = await page(http, f"{site}/needs-a-person")
        assert f'name="upto" value="{shown[-1].id}"' in body
        token = await csrf(http, f"{site}/needs-a-person")
        newer = await failed_send(clock)  # fails while the page is open
        status, location = await post(http, f"{site}/needs-a-person/failed/seen", token,
                                      upto=str(shown[-1].id))
        assert status == 303 and "n=2" in location
        assert (await post(http, f"{site}/needs-a-person/failed/seen", token, upto="x"))[0] == 400
        _, body = await page(http, f"{site}/needs-a-person")
    assert f'data-id="{newer.id}"' in body
    assert [r.id for r in await FailedSend.filter(seen_at__isnull=True)] == [newer.id]


async def test_the_page_says_when_nothing_waits(site: str) -> None:  # noqa: F811
    await add_staff("admin1", "admin", language="zh_CN")
    http = await signed_in(site, "admin1")
    async with http:
        status, body = await page(http, f"{site}/needs-a-person")
    assert status == 200
    assert 'id="no-parked"' in body and 'id="no-failed"' in body
    assert "需要人工处理" in body


def test_the_message_text_of_an_update() -> None:
    from bot.web.console.pages.inbox import first_line, update_text

    assert update_text({"update_id": 1, "message": {"text": "hi"}}) == "hi"
    assert update_text({"update_id": 1, "message": {"caption": "photo"}}) == "photo"
    assert update_text({"update_id": 1, "callback_query": {"data": "score:9"}}) == "score:9"
    assert update_text({"update_id": 1, "my_chat_member": {"chat": {"id": 1}}}) == ""
    assert first_line("  \n") == "" and first_line("a\nb") == "a"
    assert len(first_line("x" * 5000)) == 300  # the whole error: carebot inbox show
