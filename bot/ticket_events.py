"""A ticket's events and their effects: every change records a :class:`TicketEvent`, whose
effects (the staff topic and card, the owner's notices) are owed from then on, and tells the
effects registered on ``services.ticket_effects`` (the staff side) to carry them out now."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.ticket_rules import EventKind
from db.models import Ticket, TicketEvent

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


class TicketEffects(Protocol):
    """What happens outside the database after a change (the staff side registers it).

    The event row says the effects are owed (``effects_done_at`` empty) from the moment the
    change is recorded; ``on_event`` carries them out now when it may, and the staff side's
    job carries out whatever is still owed (another instance's, or after a crash)."""

    async def on_event(self, ticket: Ticket, event: TicketEvent) -> None: ...


async def emit(services: Services, ticket: Ticket, event: TicketEvent) -> None:
    effects = services.ticket_effects
    if effects is None:
        return  # owed: a running carebot's staff side carries them out
    try:
        await effects.on_event(ticket, event)
    except Exception:
        log.exception("ticket %s: effects of %s failed", ticket.number, event.kind)


# Events that change nothing outside the database: no effects are owed for them.
WITHOUT_EFFECTS = frozenset({EventKind.NOTE, EventKind.RATED, EventKind.UNDELIVERED})


async def record_event(ticket: Ticket, kind: EventKind, now: datetime, *,
                       actor_id: int | None = None, text: str = "",
                       reason: str = "") -> TicketEvent:
    """Record what happened; its effects are owed (a row) until the staff side did them."""
    return await TicketEvent.create(
        ticket_id=ticket.id, kind=kind, actor_id=actor_id, text=text, reason=reason[:200],
        created_at=now, effects_done_at=now if kind in WITHOUT_EFFECTS else None)
