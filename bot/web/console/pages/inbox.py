"""What needs a person: updates parked after their handler kept failing (``bot.inbox``) and
messages the sender gave up on (``bot.delivery.failures``); Today links here when any wait.
The page is ``/needs-a-person`` (``/inbox`` is the owners' conversations).

Both concern the people who run customer care (``access.INBOX``: supervisors, managers,
admins).
Try again queues parked updates once more; Mark as seen says someone looked at a failed
send. Every change is audited; ``carebot inbox`` does the same from a shell.

Owners' privacy: a chat shows the owner's name (and links to their file) only to a person
who may open that file, else just the chat id; an update's text is what an owner wrote, so
it is shown only to those who may read owners' messages, for owners they may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot import inbox
from bot.delivery.failures import open_failures
from bot.web.console import access, console_of, render, requires, staff_of
from db.models import AuditLog, Customer, FailedSend, InboxStatus, InboxUpdate, Staff

LIST_LIMIT = 100  # newest first; "Try all again" and "Mark all as seen" reach the rest too
TEXT_LIMIT = 200  # characters of an update's text shown in the list
ERROR_LIMIT = 300  # characters of an error's first line (the whole error: carebot inbox show)
DONE = frozenset({"retried", "seen"})
PATH = "/needs-a-person"


@dataclass
class NeedsPerson:
    """What Today shows in its "needs a person" block."""

    parked: int
    failed: int

    def __bool__(self) -> bool:
        return bool(self.parked or self.failed)


async def needs_a_person() -> NeedsPerson:
    """Parked updates and failed sends nobody has looked at (two indexed counts)."""
    parked = await InboxUpdate.filter(status=InboxStatus.PARKED).count()
    return NeedsPerson(parked, await open_failures())


@dataclass
class Chat:
    """Who a chat is, as far as the viewer may know: an owner's name and file, else its id."""

    chat_id: int | None
    name: str = ""
    customer_id: int | None = None  # set only when the viewer may open the owner's file
    staff_group: bool = False


@dataclass
class Parked:
    row: InboxUpdate
    chat: Chat
    error: str  # the first line
    text: str | None  # None: not for this viewer's eyes; "" when the update has none


@dataclass
class Failed:
    row: FailedSend
    chat: Chat
    error: str


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= ERROR_LIMIT else line[:ERROR_LIMIT - 1] + "…"


def update_text(payload: dict[str, Any]) -> str:
    """What the person wrote or pressed: a message's text or caption, a button's data."""
    for key, value in payload.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        for field in ("text", "caption", "data"):
            text = value.get(field)
            if isinstance(text, str) and text:
                return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"
    return ""


async def visible_owners(staff: Staff, chat_ids: Iterable[int | None]
                         ) -> dict[int, tuple[int, str]]:
    """Linked owners of these chats the viewer may open: chat id -> (customer id, name)."""
    wanted = {c for c in chat_ids if c}
    if not wanted or not access.can(staff, access.CUSTOMERS):
        return {}
    rows = Customer.filter(telegram_chat_id__in=wanted)
    scope = access.customer_scope(staff)
    if scope is not None:
        rows = rows.filter(scope)
    found = await rows.values_list("telegram_chat_id", "id", "name")
    return {int(chat): (int(cid), str(name)) for chat, cid, name in found}


def _chat(chat_id: int | None, owners: dict[int, tuple[int, str]],
          staff_chat_id: int | None) -> Chat:
    if chat_id is not None and chat_id in owners:
        customer_id, name = owners[chat_id]
        return Chat(chat_id, name, customer_id)
    return Chat(chat_id, staff_group=chat_id is not None and chat_id == staff_chat_id)


def may_read(staff: Staff, chat: Chat) -> bool:
    """An owner's words: for those who may read them, about an owner they may see (a chat
    that is no linked owner's only for those who see every owner)."""
    return access.can(staff, access.COMPLAINT_TEXTS) and (
        chat.customer_id is not None or access.can(staff, access.CUSTOMERS_ALL))


async def _lists(request: web.Request) -> tuple[list[Parked], list[Failed]]:
    staff = staff_of(request)
    staff_chat_id = console_of(request).services.settings.staff_chat_id
    parked = await InboxUpdate.filter(status=InboxStatus.PARKED).order_by("-id") \
        .limit(LIST_LIMIT)
    failed = await FailedSend.filter(seen_at__isnull=True).order_by("-id").limit(LIST_LIMIT)
    owners = await visible_owners(staff, [r.chat_key for r in parked]
                                  + [r.chat_id for r in failed])
    parked_rows = []
    for row in parked:
        chat = _chat(row.chat_key or None, owners, staff_chat_id)
        text = update_text(row.payload) if may_read(staff, chat) else None
        parked_rows.append(Parked(row, chat, first_line(row.last_error), text))
    failed_rows = [Failed(row, _chat(row.chat_id, owners, staff_chat_id),
                          first_line(row.error)) for row in failed]
    return parked_rows, failed_rows


@requires(access.INBOX)
async def inbox_page(request: web.Request) -> web.Response:
    parked, failed = await _lists(request)
    needs = await needs_a_person()
    done = request.query.get("done", "")
    count = request.query.get("n", "0")
    return await render(
        request, "inbox.html", parked=parked, failed=failed, needs=needs,
        limit=LIST_LIMIT, upto=max((f.row.id for f in failed), default=0),
        done=done if done in DONE else "", done_n=int(count) if count.isdecimal() else 0)


async def _audit(request: web.Request, action: str, target: str, **detail: Any) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=action, target=target,
                          detail=detail, created_at=console_of(request).services.clock.now())


def _back(done: str, n: int, anchor: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{PATH}?done={done}&n={n}#{anchor}")


@requires(access.INBOX)
async def retry_one(request: web.Request) -> web.StreamResponse:
    row_id = int(request.match_info["id"])
    row = await InboxUpdate.get_or_none(id=row_id, status=InboxStatus.PARKED)
    n = await inbox.retry_parked([row_id]) if row is not None else 0
    if row is not None and n:
        await _audit(request, "inbox.retry", f"inbox:{row_id}", update_id=row.update_id,
                     kind=row.kind, chat=row.chat_key, error=first_line(row.last_error))
    raise _back("retried", n, "parked")


@requires(access.INBOX)
async def retry_all(request: web.Request) -> web.StreamResponse:
    n = await inbox.retry_parked(None)
    if n:
        await _audit(request, "inbox.retry_all", "inbox", count=n)
    raise _back("retried", n, "parked")


@requires(access.INBOX)
async def seen_one(request: web.Request) -> web.StreamResponse:
    row_id = int(request.match_info["id"])
    now = console_of(request).services.clock.now()
    row = await FailedSend.get_or_none(id=row_id, seen_at__isnull=True)
    n = await FailedSend.filter(id=row_id, seen_at__isnull=True).update(seen_at=now)
    if row is not None and n:
        await _audit(request, "failed_send.seen", f"failed_send:{row_id}", lane=row.lane,
                     method=row.method, chat=row.chat_id)
    raise _back("seen", n, "failed")


@requires(access.INBOX)
async def seen_all(request: web.Request) -> web.StreamResponse:
    """Every failed send up to the newest one the page showed (one that failed since the
    page was loaded has not been seen, so it stays)."""
    form = await request.post()
    upto = str(form.get("upto", ""))
    if not upto.isdecimal() or len(upto) > 18:
        raise web.HTTPBadRequest(text="upto: the newest failed send shown")
    now = console_of(request).services.clock.now()
    n = await FailedSend.filter(seen_at__isnull=True, id__lte=int(upto)).update(seen_at=now)
    if n:
        await _audit(request, "failed_send.seen_all", "failed_send", count=n, upto=int(upto))
    raise _back("seen", n, "failed")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PATH, inbox_page)
    router.add_post(f"{PATH}/updates/retry", retry_all)
    router.add_post(PATH + r"/updates/{id:\d{1,18}}/retry", retry_one)
    router.add_post(f"{PATH}/failed/seen", seen_all)
    router.add_post(PATH + r"/failed/{id:\d{1,18}}/seen", seen_one)
