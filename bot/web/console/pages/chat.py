"""The owner's whole chat: everything said to and by one owner, in time order, as a component.

The conversation page, the ticket page and the customer file show the same thing: the
message log (every message from the owner, every message the bot sent them — touchpoints,
replies, notices — with its kind), staff answers and internal notes of conversations and
tickets (with whether an answer reached the owner), and the owner's scores, tickets and
conversations as markers between the messages. :func:`load_chat` reads it in a fixed number
of queries; ``templates/_whole_chat.html`` shows it (``{% include %}`` it with ``chat``).

Media stay at Telegram: a photo, voice note or document is fetched through ``getFile`` when
the page asks for it (:func:`chat_media`), for those who may read the owner's messages and
see the owner or the conversation.
"""

from __future__ import annotations

import html
import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from markupsafe import Markup
from telegram.error import TelegramError

from bot.web.console import access, console_of, forbidden, requires, staff_of
from bot.web.console.pages.scripts import safe_preview
from db.models import (
    Customer,
    MessageLog,
    Score,
    Staff,
    Thread,
    ThreadMessage,
    Ticket,
    TicketMessage,
)

log = logging.getLogger(__name__)

CHAT_LIMIT = 300  # the latest items of each kind read, and shown
#: staff answers the message log keeps once delivered: shown from their own rows instead
#: (with who wrote them and whether they reached the owner)
STAFF_LOG_KINDS = frozenset({"conversation", "ticket"})
#: what a file may be shown as in the page; anything else is a download
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "audio/ogg",
                          "audio/mpeg", "audio/mp4", "video/mp4", "video/webm"})


@dataclass
class ChatItem:
    """One line of the whole chat. ``what`` says how it is shown: in (the owner), out (a
    staff answer), bot (carebot's own message), note, score, ticket, thread (a marker)."""

    at: datetime
    what: str
    order: float = 0  # ties in time keep reading order
    text: str = ""
    kind: str = ""  # the log's kind (a touchpoint kind, text, photo...), a media kind
    who: str = ""  # the staff member, for answers and notes
    status: str = ""  # an answer: "" delivered, "owed" still being tried, "failed"
    media_kind: str = ""
    media_url: str = ""
    location: tuple[str, str] | None = None
    thread_id: int | None = None
    ticket: Ticket | None = None
    score: Score | None = None
    thread: Thread | None = None
    rich: Markup | None = None  # carebot's own message as Telegram formats it (bold...)


@dataclass
class WholeChat:
    items: list[ChatItem] = field(default_factory=list)
    more: bool = False  # older items are not shown


def _location(media: str) -> tuple[str, str] | None:
    lat, _, lon = media.partition(",")
    try:
        return f"{float(lat):.5f}", f"{float(lon):.5f}"
    except ValueError:
        return None


def _media(item: ChatItem, kind: str, media: str, url: str) -> None:
    item.media_kind = kind
    if kind == "location":
        item.location = _location(media)
    elif media:
        item.media_url = url


def _source_message_id(source: str | None) -> int | None:
    """``chat:message`` -> the owner's Telegram message id."""
    tail = (source or "").rpartition(":")[2]
    return int(tail) if tail.isdecimal() else None


def _staff_item(m: ThreadMessage | TicketMessage, status: str, n: int) -> ChatItem:
    staff: Staff | None = m.staff
    return ChatItem(at=m.created_at, what="out" if m.direction == "out" else "note",
                    order=n, text=m.text, who=staff.name if staff else "", status=status)


def _status(m: ThreadMessage | TicketMessage) -> str:
    if m.direction != "out":
        return ""
    if m.failed_at is not None:
        return "failed"
    return "" if m.relayed_at is not None else "owed"


def _thread_markers(threads: list[Thread], items: list[ChatItem]) -> list[ChatItem]:
    """"Conversation opened" just before its first message (at the same second as the
    messages around it), "done" when it was done."""
    first: dict[int, ChatItem] = {}
    for item in items:
        if item.thread_id is not None and item.what == "in" and (
                item.thread_id not in first or (item.at, item.order)
                < (first[item.thread_id].at, first[item.thread_id].order)):
            first[item.thread_id] = item
    markers = []
    for th in threads:
        opening = first.get(th.id)
        at, order = (opening.at, opening.order - 0.5) if opening is not None \
            else (th.created_at, -1.0)
        markers.append(ChatItem(at=at, what="thread", kind="opened", thread=th, order=order))
        if th.done_at is not None:
            markers.append(ChatItem(at=th.done_at, what="thread", kind="done", thread=th,
                                    order=float(10**9)))
    return markers


OwnerMedia = dict[int, tuple[str, str, str, int]]


def _owner_messages(said: list[ThreadMessage], ticket_said: list[TicketMessage]
                    ) -> OwnerMedia:
    """The owner's messages kept by conversations and tickets, by the Telegram message they
    were: (media kind, media, its URL, conversation id or 0). The log has the words, these
    add the media and where they belong."""
    owner: OwnerMedia = {}
    for m in said:
        if m.direction == "in" and m.telegram_message_id is not None:
            owner[m.telegram_message_id] = (m.media_kind, m.media,
                                            f"/chat/media/thread/{m.id}", m.thread_id)
    for k in ticket_said:
        tg_id = _source_message_id(k.source)
        if k.direction == "in" and k.photo_file_id and tg_id is not None:
            owner.setdefault(tg_id, ("photo", k.photo_file_id,
                                     f"/chat/media/ticket/{k.id}", 0))
    return owner


def _from_log(logs: list[MessageLog], owner: OwnerMedia) -> tuple[list[ChatItem], set[int]]:
    """Everything the log keeps but staff answers (shown from their own rows); and the
    owner's Telegram messages it had."""
    items: list[ChatItem] = []
    logged_in: set[int] = set()
    for n, row in enumerate(reversed(logs)):
        if row.direction == "out" and row.kind in STAFF_LOG_KINDS:
            continue
        item = ChatItem(at=row.created_at, what="in" if row.direction == "in" else "bot",
                        order=n, text=row.text, kind=row.kind)
        if row.direction == "out":  # sent in Telegram's HTML: its plain tags shown, no more
            item.rich = Markup(safe_preview(html.unescape(row.text)))
        if row.direction == "in" and row.telegram_message_id is not None:
            logged_in.add(row.telegram_message_id)
            found = owner.get(row.telegram_message_id)
            if found is not None:
                if found[0]:
                    _media(item, found[0], found[1], found[2])
                item.thread_id = found[3] or None
        items.append(item)
    return items, logged_in


def _from_threads(said: list[ThreadMessage], logged_in: set[int], base: int
                  ) -> list[ChatItem]:
    items: list[ChatItem] = []
    for n, m in enumerate(reversed(said), start=base):
        if m.direction == "in":
            if m.telegram_message_id in logged_in:
                continue  # shown from the log, with its media
            item = ChatItem(at=m.created_at, what="in", order=n, text=m.text,
                            kind=m.media_kind or "text")
        else:
            item = _staff_item(m, _status(m), n)
        _media(item, m.media_kind, m.media, f"/chat/media/thread/{m.id}")
        item.thread_id = m.thread_id
        items.append(item)
    return items


def _from_tickets(ticket_said: list[TicketMessage], logged_in: set[int], base: int
                  ) -> list[ChatItem]:
    items: list[ChatItem] = []
    for n, k in enumerate(reversed(ticket_said), start=base):
        if k.direction == "in":
            if _source_message_id(k.source) in logged_in:
                continue
            item = ChatItem(at=k.created_at, what="in", order=n, text=k.text, kind="text")
        else:
            item = _staff_item(k, _status(k), n)
        if k.photo_file_id:
            _media(item, "photo", k.photo_file_id, f"/chat/media/ticket/{k.id}")
        item.ticket = k.ticket
        items.append(item)
    return items


async def load_chat(customer: Customer, *, limit: int = CHAT_LIMIT) -> WholeChat:
    """The owner's latest ``limit`` items, oldest first."""
    logs = list(await MessageLog.filter(customer_id=customer.id)
                .order_by("-created_at", "-id").limit(limit))
    said = list(await ThreadMessage.filter(thread__customer_id=customer.id)
                .order_by("-id").limit(limit).prefetch_related("staff"))
    ticket_said = list(await TicketMessage.filter(ticket__customer_id=customer.id)
                       .order_by("-id").limit(limit).prefetch_related("staff", "ticket"))
    scores = await Score.filter(customer_id=customer.id).order_by("-created_at").limit(50)
    tickets = await Ticket.filter(customer_id=customer.id).order_by("-created_at").limit(50)
    threads = list(await Thread.filter(customer_id=customer.id).order_by("-id").limit(50))
    items, logged_in = _from_log(logs, _owner_messages(said, ticket_said))
    items += _from_threads(said, logged_in, len(items))
    items += _from_tickets(ticket_said, logged_in, len(items))
    items += [ChatItem(at=s.created_at, what="score", score=s) for s in scores]
    items += [ChatItem(at=t.created_at, what="ticket", ticket=t) for t in tickets]
    items += _thread_markers(threads, items)
    items.sort(key=lambda i: (i.at, i.order))
    more = any(len(rows) >= limit for rows in (logs, said, ticket_said)) or len(items) > limit
    return WholeChat(items=items[-limit:], more=more)


# --------------------------------------------------------------------------- media


async def _may_see(staff: Staff, customer_id: int, *, thread_id: int | None = None,
                   ticket_id: int | None = None) -> bool:
    """An owner's file: for those who read owners' messages and see this owner, the
    conversation or the ticket it was sent in."""
    if not access.can(staff, access.COMPLAINT_TEXTS):
        return False
    if access.can(staff, access.CUSTOMERS):
        scope = access.customer_scope(staff)
        if scope is None or await Customer.filter(scope, id=customer_id).exists():
            return True
    if thread_id is not None and access.can(staff, access.CONVERSATIONS):
        threads = access.thread_scope(staff)
        return threads is None or await Thread.filter(threads, id=thread_id).exists()
    if ticket_id is not None and access.can(staff, access.TICKETS):
        tickets = access.ticket_scope(staff)
        return tickets is None or await Ticket.filter(tickets, id=ticket_id).exists()
    return False


async def _file_of(staff: Staff, source: str, message_id: int) -> tuple[str, str] | None:
    """(Telegram file id, media kind) of a chat message this person may see; None when
    there is no such file; PermissionError when it is not theirs to see."""
    if source == "thread":
        m = await ThreadMessage.get_or_none(id=message_id).prefetch_related("thread")
        if m is None or not m.media or m.media_kind == "location":
            return None
        if not await _may_see(staff, m.thread.customer_id, thread_id=m.thread_id):
            raise PermissionError(message_id)
        return m.media, m.media_kind
    k = await TicketMessage.get_or_none(id=message_id).prefetch_related("ticket")
    if k is None or not k.photo_file_id:
        return None
    if not await _may_see(staff, k.ticket.customer_id, ticket_id=k.ticket_id):
        raise PermissionError(message_id)
    return k.photo_file_id, "photo"


@requires(access.COMPLAINT_TEXTS)
async def chat_media(request: web.Request) -> web.StreamResponse:
    """A photo, voice note, video, sticker or document of the chat, fetched from Telegram
    by its file id (never stored here). Only a photo, a sticker, audio or video of a known
    type is shown in the page; anything else (a document, an SVG...) is a download."""
    staff = staff_of(request)
    source, message_id = request.match_info["source"], int(request.match_info["id"])
    try:
        found = await _file_of(staff, source, message_id)
    except PermissionError:
        log.info("chat media %s %s refused to staff %s", source, message_id, staff.id)
        return await forbidden(request)
    if found is None:
        raise web.HTTPNotFound(text="no such file")
    file_id, media_kind = found
    bot = console_of(request).services.sender.bot  # get_file sends nothing
    try:
        file = await bot.get_file(file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("chat media %s %s not fetched: %s", source, message_id, exc)
        raise web.HTTPBadGateway(text="Telegram did not give the file") from None
    kind = mimetypes.guess_type(file.file_path or "")[0] or ""
    headers = {"Cache-Control": "private, max-age=3600",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if media_kind == "document" or kind not in INLINE_TYPES:
        name = (file.file_path or "file").rpartition("/")[2]
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        kind = "application/octet-stream"
    return web.Response(body=data, content_type=kind, headers=headers)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(r"/chat/media/{source:thread|ticket}/{id:\d{1,18}}", chat_media)
