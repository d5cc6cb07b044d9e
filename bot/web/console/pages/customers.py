"""Customers: find an owner by name, phone, VIN or plate; the whole customer file; edits.

Search reads what staff type the way they type it (``138 0013 8000``, a VIN's last six, a
plate with a dot) and turns it into lookups on indexed columns: a phone or full VIN is one
unique-key hit, a plate or a name prefix an index range. Only a VIN tail scans the cars.
Every list and file goes through ``access.customer_scope``; every change is audited.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from aiohttp import web
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from bot import consent
from bot.intake import normalize_plate
from bot.journeys.timing import birthday_key
from bot.phones import PhoneError, normalize_phone
from bot.texts import LANGUAGES
from bot.web.console import access, console_of, forbidden, render, requires, staff_of
from bot.web.console.pages.chat import load_chat
from bot.web.console.pages.customer_records import (
    audit_detail,
    consent_source,
    consent_wording,
)
from db.models import (
    AuditLog,
    Booking,
    ConsentRecord,
    Customer,
    CustomerTag,
    Score,
    Ticket,
    Touchpoint,
    Vehicle,
    Visit,
)

PAGE_SIZE = 50
TIMELINE = 200
VIN_CHARS = re.compile(r"^[A-HJ-NPR-Z0-9]{6,17}$")
PHONE_CHARS = re.compile(r"^[+\d\s()\-]{7,}$")
PLATE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9]{4,6}$")
PHONE_TAIL = re.compile(r"^\d{4}$")  # 尾号: the last four digits of a phone
# Part of a plate: letters and digits with at least one digit (``A123``), or a province
# and letters (``粤B``); a Latin name such as "Li" stays a name search.
PLATE_PART = re.compile(r"^(?:[\u4e00-\u9fff][A-Z][A-Z0-9]{0,5}|[A-Z0-9]{2,7})$")


def _scoped(staff: Any) -> Any:
    scope = access.customer_scope(staff)
    return Customer.filter(scope) if scope is not None else Customer.all()


def search_filter(text: str) -> tuple[str, Q]:
    """What a search looks for and the filter that finds it: (kind, Q on Customer).

    A whole phone, the last four digits of one (尾号), a whole plate, a VIN (or its tail of
    six or more), a fragment of a plate (``A123``, ``粤B``: any case), else a name's
    beginning. The Inbox searches owners the same way."""
    raw = unicodedata.normalize("NFKC", text).strip()
    compact = re.sub(r"[\s\-·.]+", "", raw).upper()
    if PHONE_CHARS.match(raw) and sum(c.isdigit() for c in raw) >= 7:
        try:
            return "phone", Q(phone=normalize_phone(raw))
        except PhoneError:
            pass
    if PHONE_TAIL.match(compact):
        return "phone_tail", Q(phone__endswith=compact)
    if PLATE.match(compact):
        plate = normalize_plate(raw)
        return "plate", Q(id__in=Subquery(Vehicle.filter(plate=plate).values("customer_id")))
    if VIN_CHARS.match(compact) and any(c.isdigit() for c in compact):
        cars = Vehicle.filter(vin=compact) if len(compact) == 17 else \
            Vehicle.filter(vin__endswith=compact)
        if len(compact) <= 7 and not compact.isdigit():  # "A12345": a plate's too
            cars = Vehicle.filter(Q(vin__endswith=compact) | Q(plate__icontains=compact))
            return "vin_or_plate", Q(id__in=Subquery(cars.values("customer_id")))
        return "vin", Q(id__in=Subquery(cars.values("customer_id")))
    if PLATE_PART.match(compact) and (any(c.isdigit() for c in compact)
                                      or not compact.isascii()):
        cars = Vehicle.filter(plate__icontains=compact)
        return "plate_part", Q(id__in=Subquery(cars.values("customer_id")))
    # A prefix as a range, so the name index serves it (LIKE 'x%' would scan).
    return "name", Q(name__gte=raw, name__lt=raw + "\U0010ffff")


@requires(access.CUSTOMERS)
async def customer_list(request: web.Request) -> web.Response:
    staff = staff_of(request)
    query = request.query.get("q", "").strip()[:100]
    page_text = request.query.get("page", "1")
    page = max(1, int(page_text)) if page_text.isdecimal() and len(page_text) < 7 else 1
    rows = _scoped(staff)
    kind = ""
    if query:
        kind, found = search_filter(query)
        rows = rows.filter(found)
    customers = await rows.order_by("name", "id").offset((page - 1) * PAGE_SIZE) \
        .limit(PAGE_SIZE + 1).prefetch_related("vehicles")
    more = len(customers) > PAGE_SIZE
    return await render(request, "customers.html", customers=customers[:PAGE_SIZE],
                        query=query, kind=kind, page=page, more=more)


async def _file(request: web.Request) -> Customer:
    staff = staff_of(request)
    customer: Customer | None = await _scoped(staff).filter(
        id=int(request.match_info["id"])).first()
    if customer is None:
        if await Customer.exists(id=int(request.match_info["id"])):
            raise _Refused()
        raise web.HTTPNotFound(text="no such customer")
    return customer


class _Refused(Exception):
    """The customer exists but is not this person's to see."""


async def _show(request: web.Request, customer: Customer, *, status: int = 200,
                errors: dict[str, str] | None = None, notice_key: str = "",
                form: dict[str, str] | None = None) -> web.Response:
    staff = staff_of(request)
    vehicles = await Vehicle.filter(customer_id=customer.id).order_by("-delivered_at", "id")
    visits = await Visit.filter(vehicle__customer_id=customer.id).order_by("-left_at") \
        .limit(50).prefetch_related("vehicle")
    bookings = await Booking.filter(customer_id=customer.id).order_by("-day").limit(20)
    timeline = await Touchpoint.filter(customer_id=customer.id).order_by("-due_at", "-id") \
        .limit(TIMELINE)
    scores = await Score.filter(customer_id=customer.id).order_by("-created_at").limit(50)
    tickets = await Ticket.filter(customer_id=customer.id).order_by("-created_at").limit(50)
    consents = await ConsentRecord.filter(customer_id=customer.id).order_by("-created_at", "-id")
    tags = await CustomerTag.filter(customer_id=customer.id).order_by("tag") \
        .values_list("tag", flat=True)
    audit = await AuditLog.filter(target=f"customer:{customer.id}") \
        .order_by("-created_at", "-id").limit(50).prefetch_related("staff")
    return await render(
        request, "customer.html", status=status, customer=customer, vehicles=vehicles,
        visits=visits, bookings=bookings, timeline=timeline, scores=scores, tickets=tickets,
        consents=consents, tags=tags, audit=audit, audit_detail=audit_detail,
        consent_source=consent_source, consent_wording=consent_wording,
        errors=errors or {}, form=form or {},
        chat=await load_chat(customer),
        notice_key=notice_key, customer_languages=LANGUAGES,
        editable=access.can(staff, access.CUSTOMERS_EDIT),
        texts=access.can(staff, access.COMPLAINT_TEXTS),
    )


@requires(access.CUSTOMERS)
async def customer_file(request: web.Request) -> web.Response:
    try:
        customer = await _file(request)
    except _Refused:
        return await forbidden(request)
    return await _show(request, customer)


async def _audit(request: web.Request, customer: Customer, action: str,
                 detail: dict[str, Any]) -> None:
    await AuditLog.create(staff_id=staff_of(request).id, action=action,
                          target=f"customer:{customer.id}", detail=detail,
                          created_at=console_of(request).services.clock.now())


def _parse_contact(form: dict[str, str], customer: Customer
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """The edited contact fields that changed, and the errors by field."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    name = form.get("name", "").strip()
    if not name or len(name) > 100:
        errors["name"] = "customers.bad_name"
    elif name != customer.name:
        changes["name"] = name
    try:
        phone = normalize_phone(form.get("phone", ""))
    except PhoneError:
        errors["phone"] = "customers.bad_phone"
    else:
        if phone != customer.phone:
            changes["phone"] = phone
    lang = form.get("language", "")
    if lang not in LANGUAGES:
        errors["language"] = "customers.bad_language"
    elif lang != customer.language:
        changes["language"] = lang
    birthday_text = form.get("birthday", "").strip()
    birthday: date | None = None
    if birthday_text:
        try:
            birthday = date.fromisoformat(birthday_text)
        except ValueError:
            errors["birthday"] = "customers.bad_birthday"
    if "birthday" not in errors and birthday != customer.birthday:
        changes["birthday"] = birthday
    return changes, errors


async def _edit_contact(request: web.Request, customer: Customer,
                        form: dict[str, str]) -> web.Response:
    """The owner's contact details changed as typed (checked first, audited)."""
    changes, errors = _parse_contact(form, customer)
    if "phone" in changes and await Customer.filter(phone=changes["phone"]) \
            .exclude(id=customer.id).exists():
        errors["phone"] = "customers.phone_taken"
    if errors:
        return await _show(request, customer, status=422, errors=errors, form=form)
    if not changes:
        return await _show(request, customer, notice_key="customers.unchanged")
    detail = {k: [_plain(getattr(customer, k)), _plain(v)] for k, v in changes.items()}
    async with in_transaction():
        for key, value in changes.items():
            setattr(customer, key, value)
        if "birthday" in changes:
            customer.birthday_md = birthday_key(customer.birthday,
                                                bool(customer.birthday_lunar))
        if "phone" in changes:  # a corrected number is no longer "wrong" (the call list)
            customer.phone_wrong_at = None
        await customer.save()
        await _audit(request, customer, "customer.edit", detail)
    return await _show(request, customer, notice_key="customers.saved")


@requires(access.CUSTOMERS)
async def customer_edit(request: web.Request) -> web.Response:
    staff = staff_of(request)
    try:
        customer = await _file(request)
    except _Refused:
        return await forbidden(request)
    if not access.can(staff, access.CUSTOMERS_EDIT):
        return await forbidden(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    action = form.get("action", "")
    now = console_of(request).services.clock.now()
    if action == "contact":
        return await _edit_contact(request, customer, form)
    if action in ("consent_grant", "consent_withdraw"):
        basis = form.get("basis", "").strip()
        if not basis:
            return await _show(request, customer, status=422,
                               errors={"basis": "customers.basis_needed"}, form=form)
        granted = action == "consent_grant"
        source = f"console:{staff.login}"
        wording = f"{'granted' if granted else 'withdrawn'} by {staff.name} in the console: " \
            f"{basis}"
        changed = await consent.record(customer, granted=granted, now=now, source=source,
                                       wording=wording[:2000])
        if changed:
            await _audit(request, customer, f"consent.{'grant' if granted else 'withdraw'}",
                         {"marketing_consent": [not granted, granted], "basis": basis})
        return await _show(request, customer, notice_key="customers.saved" if changed
                           else "customers.unchanged")
    if action == "followups_resume":
        if not customer.followups_refused:
            return await _show(request, customer, notice_key="customers.unchanged")
        basis = form.get("basis", "").strip()
        if not basis:
            return await _show(request, customer, status=422,
                               errors={"resume_basis": "customers.basis_needed"}, form=form)
        customer.followups_refused = False
        customer.followups_refused_at = None
        await customer.save(update_fields=["followups_refused", "followups_refused_at",
                                           "updated_at"])
        await _audit(request, customer, "followups.resume",
                     {"followups_refused": [True, False], "basis": basis})
        return await _show(request, customer, notice_key="customers.saved")
    return await _show(request, customer, status=422, notice_key="customers.bad_action")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/customers", customer_list)
    router.add_get("/customers/{id:\\d{1,9}}", customer_file)
    router.add_post("/customers/{id:\\d{1,9}}", customer_edit)
