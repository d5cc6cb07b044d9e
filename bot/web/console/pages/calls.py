"""The call list (电话回访): the follow-ups owed by phone, worked by CS agents.

An agent sees the calls of the owners they are responsible for (and those assigned to them),
the earliest due first; supervisors see every call and reassign them (``access.CALLS_ALL``).
A call's page shows the owner's file, the car, why Telegram could not carry it, the attempts
so far, the script in its phone wording (the owner's language), and the outcome form: the
answers when the owner was reached (a low score opens a complaint as in Telegram), or no
answer, busy, wrong number, refused. The domain is ``bot.calls``.
"""

from __future__ import annotations

import html
import logging
import re

from aiohttp import web
from tortoise.expressions import Q

from bot import calls, recall, surveys
from bot.calls import Answers, CallError
from bot.delivery.dispatcher import dealer_context
from bot.surveys import answers as survey_answers
from bot.surveys.questionnaire import Questionnaire, overall
from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.forms import Refused, posted_texts
from db.models import (
    CallOutcome,
    Customer,
    PhoneCall,
    PhoneCallAttempt,
    Staff,
    Touchpoint,
    Vehicle,
)

log = logging.getLogger(__name__)

DONE_KEYS = (*tuple(o.value for o in CallOutcome), "assigned")
COMMENT_LIMIT = 2000
_TAG = re.compile(r"<[^>]+>")


def _scope(staff: Staff) -> Q | None:
    return calls.scope_of(staff, see_all=access.can(staff, access.CALLS_ALL))


async def _call_of(request: web.Request) -> PhoneCall:
    """The call named in the path, if this person may work it (else 404: not even whether
    it exists is told)."""
    rows = PhoneCall.filter(id=int(request.match_info["id"]))
    scope = _scope(staff_of(request))
    if scope is not None:
        rows = rows.filter(scope)
    call = await rows.select_related("customer", "vehicle", "assignee", "touchpoint").first()
    if call is None:
        raise web.HTTPNotFound(text="no such call")
    return call


@requires(access.CALLS)
async def call_list(request: web.Request) -> web.Response:
    staff = staff_of(request)
    closed = request.query.get("closed") == "1"
    rows = await calls.call_list(_scope(staff), include_closed=closed)
    if closed:
        rows = [r for r in rows if r.closed_at is not None]
    done = request.query.get("done", "")
    return await render(request, "calls.html", rows=rows, closed=closed,
                        max_attempts=console_of(request).services.settings.call_max_attempts,
                        done=done if done in DONE_KEYS else "")


def phone_script(request: web.Request, call: PhoneCall, agent: str) -> str:
    """The call's script in its phone wording, as plain text (the page escapes it)."""
    services = console_of(request).services
    customer: Customer = call.customer
    tp: Touchpoint = call.touchpoint
    vehicle: Vehicle | None = call.vehicle
    try:
        text = services.scripts.render(
            f"phone_{call.kind}", customer.language, customer=customer, vehicle=vehicle,
            dealer=dealer_context(services.settings), payload=tp.payload, agent=agent)
    except Exception:  # a broken dealer script must not hide the call: the page says so
        log.exception("phone script for call %s could not be rendered", call.id)
        return ""
    return html.unescape(_TAG.sub("", text)).strip()


async def _page(request: web.Request, call: PhoneCall, *, status: int = 200,
                problem: Refused | None = None,
                form: dict[str, str] | None = None) -> web.Response:
    staff = staff_of(request)
    attempts = await PhoneCallAttempt.filter(call_id=call.id).order_by("id") \
        .select_related("staff")
    callers = await Staff.filter(active=True).order_by("name") \
        if access.can(staff, access.CALLS_ALL) else []
    return await render(
        request, "call.html", status=status, call=call, attempts=attempts,
        script=phone_script(request, call, staff.name), problem=problem, form=form or {},
        done="assigned" if request.query.get("done") == "assigned" else "",
        outcomes=[o.value for o in CallOutcome], categories=surveys.CSI_CATEGORIES,
        questions=_questions(request, call),
        reasons=recall.REASONS, is_recall=call.kind == calls.RECALL, callers=callers,
        can_assign=access.can(staff, access.CALLS_ALL), is_open=call.status == "open",
        max_attempts=console_of(request).services.settings.call_max_attempts,
        phone_shown=call.customer.phone if await access.phone_visible(
            staff, call.customer_id) else access.mask_phone(call.customer.phone))


@requires(access.CALLS)
async def call_page(request: web.Request) -> web.Response:
    return await _page(request, await _call_of(request))


def _questionnaire(request: web.Request, call: PhoneCall) -> Questionnaire | None:
    """The questionnaire the call asks (None: one 1-10 score, or a recall)."""
    if call.kind == calls.RECALL:
        return None
    settings = console_of(request).services.settings
    return survey_answers.questionnaire_of(call.touchpoint, call.customer.language, settings)


def _questions(request: web.Request, call: PhoneCall) -> list[tuple[str, str, list[str]]]:
    """The form's questions: (key, text, choices); the page words 满意/一般/不满意."""
    form = _questionnaire(request, call)
    if form is None:
        return []
    return [(q.key, q.text, [c for c, _ in q.choices(form.sat3)]) for q in form.questions]


def _question_answers(form: dict[str, str], questionnaire: Questionnaire
                      ) -> tuple[tuple[tuple[str, str | None], ...], int | None]:
    """Each question's choice ("" or absent: skipped) and the weighted overall."""
    chosen: list[tuple[str, str | None]] = []
    for q in questionnaire.questions:
        choice = form.get(f"q_{q.key}", "").strip() or None
        if choice is not None and questionnaire.value_of(q.key, choice) is None:
            raise Refused("calls.err.score", 422)
        chosen.append((q.key, choice))
    values = {k: (questionnaire.value_of(k, c) if c else None) for k, c in chosen}
    return tuple(chosen), overall(questionnaire, values)


def _answers(form: dict[str, str], is_recall: bool,
             questionnaire: Questionnaire | None = None) -> Answers:
    """The answers of a "reached" outcome, read and checked."""
    comment = form.get("comment", "").replace("\r\n", "\n").strip()
    better = form.get("improvement", "").replace("\r\n", "\n").strip()
    if len(comment) > COMMENT_LIMIT or len(better) > COMMENT_LIMIT:
        raise Refused("calls.err.too_long", 422, limit=COMMENT_LIMIT)
    if is_recall:
        reason = form.get("reason", "")
        if reason not in recall.REASONS:
            raise Refused("calls.err.reason", 422)
        return Answers(reason=reason, comment=comment)
    category = form.get("category") or None
    if category is not None and category not in surveys.CSI_CATEGORIES:
        raise Refused("calls.err.category", 422)
    if questionnaire is not None:
        chosen, score = _question_answers(form, questionnaire)
        if score is None:
            return Answers(comment=comment)
        return Answers(score=score, category=category, comment=comment, improvement=better,
                       questions=chosen, form=questionnaire)
    raw = form.get("score", "").strip()
    if not raw:
        return Answers(comment=comment)
    if not raw.isdigit() or not 1 <= int(raw) <= 10:
        raise Refused("calls.err.score", 422)
    return Answers(score=int(raw), category=category, comment=comment, improvement=better)


@requires(access.CALLS)
async def record_outcome(request: web.Request) -> web.StreamResponse:
    call = await _call_of(request)
    form = await posted_texts(request)
    console = console_of(request)
    try:
        try:
            outcome = CallOutcome(form.get("outcome", ""))
        except ValueError:
            raise Refused("calls.err.outcome", 422) from None
        answers = _answers(form, call.kind == calls.RECALL, _questionnaire(request, call)) \
            if outcome is CallOutcome.REACHED else None
        now = console.services.clock.now()
        await calls.record(call.id, outcome, staff=staff_of(request), now=now,
                           rules=console.services.rules.calls, answers=answers,
                           note=form.get("note", "")[:COMMENT_LIMIT],
                           services=console.services)
    except Refused as refused:
        return await _page(request, call, status=refused.status, form=form, problem=refused)
    except CallError as error:
        return await _page(request, call, status=409, form=form,
                           problem=Refused(f"calls.err.{error.key}"))
    raise web.HTTPSeeOther(f"/calls?done={outcome.value}")


@requires(access.CALLS_ALL)
async def assign(request: web.Request) -> web.StreamResponse:
    call = await _call_of(request)
    form = await request.post()
    raw = str(form.get("assignee", ""))
    assignee = await Staff.get_or_none(id=int(raw), active=True) if raw.isdigit() else None
    await calls.reassign(call, assignee.id if assignee else None)
    raise web.HTTPSeeOther(f"/calls/{call.id}?done=assigned")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/calls", call_list)
    router.add_get(r"/calls/{id:\d{1,9}}", call_page)
    router.add_post(r"/calls/{id:\d{1,9}}", record_outcome)
    router.add_post(r"/calls/{id:\d{1,9}}/assign", assign)
