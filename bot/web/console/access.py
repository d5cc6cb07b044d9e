"""Who may see and do what in the console.

Roles come from the staff file (``Staff.role``); a permission is a plain string a view
asks for. Agents and advisors are limited to their own customers: the owners whose advisor
they are (``Customer.advisor`` is the staff member's name) and the owners of tickets they
handle. Everything a scoped person lists, opens or exports goes through ``customer_scope``
and ``ticket_scope`` so the rule lives in one place; conversations go through
``thread_scope``, and a phone is shown in full only where ``phone_visible`` says so.
"""

from __future__ import annotations

from tortoise.expressions import Q, Subquery

from db.models import Customer, Staff, StaffRole, Thread, Ticket

# What each permission opens (docs/console.md has the table for people).
TODAY = "today"
TICKETS = "tickets"  # see and act on tickets (scoped unless TICKETS_ALL)
TICKETS_ALL = "tickets.all"
CUSTOMERS = "customers"  # search and open customer files (scoped unless CUSTOMERS_ALL)
CUSTOMERS_ALL = "customers.all"
CUSTOMERS_EDIT = "customers.edit"  # contact details and consents
COMPLAINT_TEXTS = "complaints.texts"  # what owners wrote in complaints
CAMPAIGNS = "campaigns"
REPORTS = "reports"  # KPI and complaint figures (scoped unless REPORTS_ALL)
REPORTS_ALL = "reports.all"
IMPORTS = "imports"
SCRIPTS = "scripts"  # read every template
SCRIPTS_EDIT = "scripts.edit"
STAFF = "staff"  # manage staff accounts
SANDBOX = "sandbox"  # the sandbox chat (only exists while running the sandbox)
# What needs a person: parked updates (try again) and failed sends (mark as seen). The people
# who run customer care: supervisors, the service manager and admins, not agents.
INBOX = "inbox"
# Conversations (the Inbox): scoped to the person's own and their queue's unless
# CONVERSATIONS_ALL. Canned replies: everyone in conversations uses them, CANNED_EDIT edits.
CONVERSATIONS = "conversations"
CONVERSATIONS_ALL = "conversations.all"
CANNED_EDIT = "canned.edit"
# The call list (issue 16): agents and advisors work the calls of their own owners; CALLS_ALL
# sees every call and reassigns them (supervisors, the service manager, admins).
CALLS = "calls"
CALLS_ALL = "calls.all"
# Bookings (issue 17): the day's list by slot, entering a booking for a caller or walk-in,
# marking arrived / no-show. Everyone who serves owners at the front desk or on the phone.
BOOKINGS = "bookings"

_AFTER_SALES = frozenset({
    TODAY, TICKETS, TICKETS_ALL, CUSTOMERS, CUSTOMERS_ALL, CUSTOMERS_EDIT, COMPLAINT_TEXTS,
    REPORTS, REPORTS_ALL, IMPORTS, SCRIPTS, SANDBOX, CONVERSATIONS, CONVERSATIONS_ALL,
    CANNED_EDIT, CALLS, CALLS_ALL, BOOKINGS,
})

PERMISSIONS: dict[StaffRole, frozenset[str]] = {
    StaffRole.AGENT: frozenset({TODAY, CONVERSATIONS, TICKETS, CUSTOMERS, COMPLAINT_TEXTS,
                                REPORTS, SANDBOX, CALLS, BOOKINGS}),
    StaffRole.ADVISOR: frozenset({TODAY, CONVERSATIONS, TICKETS, CUSTOMERS, COMPLAINT_TEXTS,
                                  REPORTS, SANDBOX, CALLS, BOOKINGS}),
    StaffRole.SUPERVISOR: _AFTER_SALES | {INBOX},
    StaffRole.MANAGER: _AFTER_SALES | {INBOX},
    StaffRole.MARKETING: frozenset({TODAY, CAMPAIGNS, REPORTS, REPORTS_ALL, SCRIPTS, SANDBOX}),
    StaffRole.ADMIN: _AFTER_SALES | {CAMPAIGNS, SCRIPTS_EDIT, STAFF, INBOX},
}


def can(staff: Staff, permission: str) -> bool:
    return staff.active and permission in PERMISSIONS.get(StaffRole(staff.role), frozenset())


def customer_scope(staff: Staff) -> Q | None:
    """The customers this person may see, as a filter on ``Customer``; None means all."""
    if can(staff, CUSTOMERS_ALL):
        return None
    handled = Ticket.filter(handler_id=staff.id).values("customer_id")
    return Q(advisor=staff.name) | Q(id__in=Subquery(handled))


def ticket_scope(staff: Staff) -> Q | None:
    """The tickets this person may see, as a filter on ``Ticket``; None means all.

    A scoped agent sees the tickets they handle or handled before an escalation (they stay
    on it), unclaimed ones waiting at the first level (so they can claim them), and those of
    their own customers."""
    if can(staff, TICKETS_ALL):
        return None
    own = Customer.filter(advisor=staff.name).values("id")  # a subquery, not a join
    return (Q(handler_id=staff.id) | Q(previous_handler_id=staff.id)
            | Q(handler_id=None, level="agent") | Q(customer_id__in=Subquery(own)))


def thread_scope(staff: Staff) -> Q | None:
    """The conversations this person may see, as a filter on ``Thread``; None means all.

    A scoped agent or advisor sees those assigned to them, unassigned ones waiting in their
    role's queue (so they can take them), and those of their own customers."""
    if can(staff, CONVERSATIONS_ALL):
        return None
    own = customer_scope(staff)
    mine = Q(assignee_id=staff.id) | Q(assignee_id=None, queue=str(staff.role))
    if own is None:
        return mine
    return mine | Q(customer_id__in=Subquery(Customer.filter(own).values("id")))


async def phone_visible(staff: Staff, customer_id: int, thread: Thread | None = None) -> bool:
    """A phone in full: for those who see every owner, and otherwise for their own
    customers and an owner whose conversation is theirs (they may need to call). Everyone
    else (an agent looking at another advisor's owner in the queue) sees it masked, and
    marketing never reaches a page with phones."""
    if not can(staff, CUSTOMERS):
        return False
    scope = customer_scope(staff)
    if scope is None or (thread is not None and thread.assignee_id == staff.id):
        return True
    return await Customer.filter(scope, id=customer_id).exists()


def mask_phone(phone: str) -> str:
    """+8613800138000 -> +86138****8000: enough to recognise, not to call."""
    digits = [i for i, c in enumerate(phone) if c.isdigit()]
    if len(digits) < 8:
        return "*" * len(phone)
    hidden = set(digits[-8:-4])
    return "".join("*" if i in hidden else c for i, c in enumerate(phone))
