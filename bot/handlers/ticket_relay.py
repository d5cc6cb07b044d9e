"""Owners' messages on a ticket, relayed into its topic; console answers mirrored there.

Owner messages wait in ``TicketMessage`` and are relayed within Telegram's 20 messages per
minute per group: one by one while the minute has room, batched (one message per ticket)
when it runs low, keeping a reserve for cards and escalations; nothing is marked relayed
unless Telegram took it. Only the instance doing the staff side relays (one relay per
message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from db.models import Customer, Staff, Ticket, TicketMessage

if TYPE_CHECKING:
    from bot.handlers.ticket_side import StaffSide

RESERVE = 5  # kept back for cards and escalations, which must never wait
COMFORT = 10  # above this many free slots owner messages go one by one, else batched
TEXT_CHUNK = 3800  # a batch message stays under Telegram's 4096 characters


async def mirror(side: StaffSide, *, ticket_id: int | None = None, limit: int = 50) -> int:
    """Answers and notes written on the console, shown in the ticket's topic too."""
    if side.chat_id is None:
        return 0
    query = TicketMessage.filter(mirrored_at__isnull=True, direction__in=("out", "note"))
    if ticket_id is not None:
        query = query.filter(ticket_id=ticket_id)
    done = 0
    for m in await query.order_by("id").limit(limit):
        ticket = await Ticket.get(id=m.ticket_id)
        if ticket.card_message_id is None or side.budget(side.svc.clock.now()) <= RESERVE:
            continue
        staff = await Staff.get_or_none(id=m.staff_id) if m.staff_id else None
        key = "th_mirror_answer" if m.direction == "out" else "th_mirror_note"
        text = side.label(key, staff=staff.name if staff else "-", text=m.text or "[photo]")
        if await side.send(ticket, text) is not None:
            await TicketMessage.filter(id=m.id).update(mirrored_at=side.svc.clock.now())
            done += 1
    return done


async def flush(side: StaffSide, *, immediate: bool = False) -> int:
    """Relay queued owner messages into their topics; returns how many were relayed.

    ``immediate`` (right after the owner wrote) sends only while the group's minute has
    room to spare; the relay job sends the rest batched, one message per ticket, keeping
    a reserve for cards and escalations. Nothing is marked relayed unless Telegram took it.
    Only on the instance that does the staff side (one relay per message).
    """
    if side.chat_id is None or not await side.holder():
        return 0
    async with side._relay_lock:
        pending = await TicketMessage.filter(direction="in", relayed_at__isnull=True) \
            .order_by("id").limit(2000)
        if not pending:
            return 0
        groups: dict[int, list[TicketMessage]] = {}
        for m in pending:
            groups.setdefault(m.ticket_id, []).append(m)
        relayed = 0
        for ticket_id, msgs in groups.items():
            ticket = await Ticket.get(id=ticket_id)
            if ticket.card_message_id is None:
                ticket = await side.publish(ticket)
                if ticket.card_message_id is None:
                    continue
            now = side.svc.clock.now()
            free = side.budget(now)
            if free <= RESERVE or (immediate and free <= COMFORT):
                break
            customer = await Customer.get(id=ticket.customer_id)
            if free > COMFORT and len(msgs) == 1:
                relayed += await relay_one(side, ticket, customer, msgs[0])
            else:
                relayed += await relay_batch(side, ticket, customer, msgs)
        return relayed

def header(side: StaffSide, ticket: Ticket, customer: Customer, count: int = 1) -> str:
    if count > 1:
        return side.label("tk_owner_batch_header", number=ticket.number, name=customer.name,
                          count=count)
    return side.label("tk_owner_header", number=ticket.number, name=customer.name)

async def relay_one(side: StaffSide, ticket: Ticket, customer: Customer, m: TicketMessage) -> int:
    text = f"{header(side, ticket, customer)}\n{m.text}".rstrip()
    if await side.send(ticket, text, photo=m.photo_file_id) is None:
        return 0
    await TicketMessage.filter(id=m.id).update(relayed_at=side.svc.clock.now())
    return 1

async def relay_batch(side: StaffSide, ticket: Ticket, customer: Customer,
                       msgs: list[TicketMessage]) -> int:
    """Owner texts in as few messages as fit; photos one by one while the budget lasts."""
    texts = [m for m in msgs if not m.photo_file_id]
    photos = [m for m in msgs if m.photo_file_id]
    relayed = 0
    chunk: list[TicketMessage] = []
    size = 0

    async def send_chunk(part: list[TicketMessage]) -> int:
        if not part:
            return 0
        if side.budget(side.svc.clock.now()) <= RESERVE:
            return 0
        lines = [header(side, ticket, customer, len(part))]
        lines += [f"{m.created_at.astimezone(side.svc.settings.tz):%H:%M} {m.text}"
                  for m in part]
        if await side.send(ticket, "\n".join(lines)) is None:
            return 0
        await TicketMessage.filter(id__in=[m.id for m in part]) \
            .update(relayed_at=side.svc.clock.now())
        return len(part)

    for m in texts:
        line = len(m.text) + 8
        if chunk and size + line > TEXT_CHUNK:
            sent = await send_chunk(chunk)
            relayed += sent
            if not sent:
                return relayed
            chunk, size = [], 0
        if line > TEXT_CHUNK:  # one very long message: alone, cut to fit
            m.text = m.text[:TEXT_CHUNK - 8]
        chunk.append(m)
        size += line
    relayed += await send_chunk(chunk)
    for m in photos:
        if side.budget(side.svc.clock.now()) <= RESERVE:
            break
        relayed += await relay_one(side, ticket, customer, m)
    return relayed
