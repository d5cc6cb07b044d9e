"""What the owner hears of a complaint's progress, and the managers' notice of empty levels.

The owner hears progress in their own terms, not every internal move (issue 18 point 3,
003 §2.3.3). The rule, per *stage* of the ticket (its opening, then each level change: an
escalation, a Major, a reopening):

- a stage gets **one** progress message, which names the person who takes charge when that
  is known: the level has exactly one active staff member (named at once), or else the
  first to claim at that level (named then); until one of those, the owner hears nothing of
  the move;
- a claim at a stage the owner was already told about sends nothing more (the same person
  claiming, or a colleague taking over within the level);
- the opening stage's message is ``ticket_claimed`` ("being handled by 王客服"); a
  reopening's is ``ticket_reopened``, sent at once (the owner just rated the handling);
  a missed deadline at the top (nobody above to move to) tells the owner the level once,
  without a name, when no one was named yet;
- a level passed over for having nobody is not a stage: the owner hears nothing of it,
  the managers do (:func:`tell_empty_levels`).

Which stage was announced is the owner's notice row itself (key ``owner:<ticket>:<stage
event>:progress``, unique): carrying an event out again, or a second claim, owes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import salutation, ticket_reasons
from bot.delivery import notices
from bot.handlers import ticket_card
from bot.tickets import LEVELS, EventKind
from db.models import Staff, StaffRole, Ticket, TicketEvent, TicketLevel

if TYPE_CHECKING:
    from bot.handlers.ticket_side import StaffSide

log = logging.getLogger(__name__)

# Events that start a stage the owner hears about once.
STAGES = (EventKind.OPENED, EventKind.ESCALATED, EventKind.REOPENED)
# The roles whose people are named for a level; admins act as managers but are the
# system's accounts, not someone an owner is introduced to.
_NAMED_ROLE = {TicketLevel.AGENT: StaffRole.AGENT, TicketLevel.ADVISOR: StaffRole.ADVISOR,
               TicketLevel.SUPERVISOR: StaffRole.SUPERVISOR,
               TicketLevel.MANAGER: StaffRole.MANAGER}
MANAGER_ROLES = (StaffRole.MANAGER, StaffRole.ADMIN)


def progress_key(ticket: Ticket, stage: TicketEvent) -> str:
    return f"owner:{ticket.id}:{stage.id}:progress"


async def stage_of(ticket: Ticket, event: TicketEvent) -> TicketEvent | None:
    """The event that started the stage ``event`` belongs to (itself, when it starts one)."""
    return await TicketEvent.filter(ticket_id=ticket.id, id__lte=event.id,
                                    kind__in=[str(k) for k in STAGES]) \
        .order_by("-id").first()


async def sole_person(level: str) -> Staff | None:
    """The one active staff member of the level, or None (nobody, or several)."""
    role = _NAMED_ROLE.get(TicketLevel(level)) if level in LEVELS else None
    if role is None:
        return None
    people = await Staff.filter(active=True, role=role).order_by("id").limit(2)
    return people[0] if len(people) == 1 else None


def owner_name(side: StaffSide, staff: Staff, lang: str) -> str:
    """How an owner is told the person: 钱经理 (their surname and the role's word) in
    Chinese, their name in English (catalogue ``tk_person_<role>``)."""
    role = "manager" if staff.role == StaffRole.ADMIN else str(staff.role)
    return side.svc.scripts.label(f"tk_person_{role}", lang, name=staff.name,
                                  surname=salutation.surname(staff.name))


async def _tell(side: StaffSide, ticket: Ticket, stage: TicketEvent, key: str,
                staff: Staff | None) -> bool:
    return await side.notify_owner(ticket, key, staff_person=staff,
                                   notice_key=progress_key(ticket, stage))


async def on_stage(side: StaffSide, ticket: Ticket, event: TicketEvent) -> None:
    """An escalation, a Major or a reopening: the owner's one message when the person is
    known (or, for a reopening, at once)."""
    person = await sole_person(ticket.level)
    if event.kind == EventKind.REOPENED:
        await _tell(side, ticket, event, "ticket_reopened", person)
    elif person is not None:
        await _tell(side, ticket, event, "ticket_escalated", person)


async def on_claim(side: StaffSide, ticket: Ticket, event: TicketEvent) -> None:
    """A claim: the stage's message naming the claimer, unless the owner heard it already."""
    stage = await stage_of(ticket, event)
    handler = await Staff.get_or_none(id=event.actor_id) if event.actor_id else None
    if stage is None or handler is None:
        return
    key = "ticket_claimed" if stage.kind == EventKind.OPENED else "ticket_escalated"
    await _tell(side, ticket, stage, key, handler)


async def on_breach(side: StaffSide, ticket: Ticket, event: TicketEvent) -> None:
    """A missed deadline at the top: the owner is told the level once, if nobody was named."""
    stage = await stage_of(ticket, event)
    if stage is not None and stage.kind != EventKind.OPENED:
        await _tell(side, ticket, stage, "ticket_escalated", None)


# --------------------------------------------------------------------------- empty levels


async def tell_empty_levels(side: StaffSide, ticket: Ticket, event: TicketEvent) -> int:
    """Levels an escalation passed over for having nobody: each manager (and admin) on
    Telegram is told, in their language, so they can staff them; without any, the staff
    group is. Notice rows keyed by the event: told once. How many notices were owed."""
    _, skipped = ticket_reasons.split_skipped(event.reason)
    if not skipped:
        return 0
    managers = await Staff.filter(active=True, role__in=MANAGER_ROLES,
                                  telegram_id__isnull=False).order_by("id")
    svc = side.svc
    told = 0
    for manager in managers:
        assert manager.telegram_id is not None
        text = _empty_text(side, ticket, skipped, manager.language)
        await notices.tell(svc, f"tk_empty:{event.id}:{manager.id}", [manager.telegram_id],
                           text)
        told += 1
    if not managers and side.chat_id is not None:
        await notices.tell(svc, f"tk_empty:{event.id}:group", [side.chat_id],
                           _empty_text(side, ticket, skipped, side.lang))
        told += 1
    log.info("ticket %s: %d notice(s) of %d empty level(s)", ticket.number, told, len(skipped))
    return told


def _empty_text(side: StaffSide, ticket: Ticket, skipped: list[str], lang: str) -> str:
    comma = ", " if lang == "en" else "、"
    levels = comma.join(ticket_card.level_name(side.svc, lv, lang) if lv in LEVELS else lv
                        for lv in skipped)
    return side.svc.scripts.label(
        "tk_levels_empty", lang, number=ticket.number, levels=levels,
        to_level=ticket_card.level_name(side.svc, ticket.level, lang))
