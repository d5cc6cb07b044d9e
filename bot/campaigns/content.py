"""A campaign's message: the marketer's template checked (sandboxed, Telegram's HTML, the
length) and rendered for one owner with the buttons and the unsubscribe footer, in the
owner's language; the test message a staff member sends themselves."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateError

from bot.campaigns.policy import BUTTON_CODES, BUTTON_KINDS, MAX_BUTTONS, URL, CampaignError
from bot.config import Settings
from bot.delivery.dispatcher import Outgoing, dealer_context
from bot.sandbox.telegram_html import HtmlParseError, parse_html
from bot.templating import (
    OUTPUT_CAP,
    Fields,
    LimitedEnvironment,
    TemplateOverBudget,
    render,
)
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, Scripts, car_fields, owner_fields
from db.models import (
    Campaign,
    Customer,
    Vehicle,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- definition


_ENV = LimitedEnvironment()


@lru_cache(maxsize=64)
def _compiled(template: str) -> Template:
    """A campaign's text compiled once, not once per owner."""
    return _ENV.from_string(template)


def render_message(template: str, **context: Any) -> str:
    """The campaign's own text, rendered like the scripts (sandboxed, escaped, strict, within
    the step budget and Telegram's 4096 characters) from :func:`campaign_context`."""
    return render(_compiled(template), context, max_chars=OUTPUT_CAP)


def campaign_context(customer: Any, vehicle: Any, dealer: Mapping[str, str],
                     campaign: Mapping[str, Any]) -> dict[str, Any]:
    """All a campaign template sees: the owner's name and language, the car's model and
    plate, the dealer, the campaign. Never a phone, a link token, a birthday or a VIN."""
    return {"customer": owner_fields(customer), "vehicle": car_fields(vehicle),
            "dealer": Fields("dealer", dealer),
            "campaign": Fields("campaign", {"name": campaign.get("name", ""),
                                            "event_date": campaign.get("event_date")})}


@dataclass(frozen=True)
class _SampleOwner:
    name: str = "张伟"
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class _SampleCar:
    model: str = "星辰 S7"
    plate: str = "粤A12345"


def sample_context(dealer: Mapping[str, str], *, with_car: bool = True) -> dict[str, Any]:
    """What a campaign template may use, with sample values to check it when it is saved."""
    return campaign_context(_SampleOwner(), _SampleCar() if with_car else None, dealer,
                            {"name": "sample", "event_date": None})


# Telegram takes 4096 characters in one message; the how-to-stop footer (the dealership's
# name and phone, ~100 characters) is added under every campaign text, so a text may take
# what is left after room for it. Counted on the rendered text with its tags, which is never
# shorter than what Telegram counts.
FOOTER_ROOM = 300
TEXT_CAP = OUTPUT_CAP - FOOTER_ROOM


@dataclass(frozen=True)
class MessageProblem:
    """Why a campaign text cannot be saved: ``kind`` is render, budget, html or length
    (``size``: the characters it renders to, over :data:`TEXT_CAP`)."""

    kind: str
    detail: str
    size: int = 0

    def __str__(self) -> str:
        lead = {"render": "the template does not render",
                "budget": "the template is refused",
                "html": "Telegram would refuse this message's HTML",
                "length": "the text is too long"}[self.kind]
        return f"{lead}: {self.detail}"


def check_message(text: str, dealer: Mapping[str, str]) -> MessageProblem | None:
    """None when a campaign text is fit to send: it renders for a sample owner within the
    budget and 4096 characters, and Telegram takes its HTML (also for an owner without a
    car, when it renders for one). Slow for a bad template: call it off the event loop."""
    try:
        bodies = [render_message(text, **sample_context(dealer))]
    except TemplateOverBudget as exc:
        return MessageProblem("budget", str(exc))
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        return MessageProblem("render", str(exc) or exc.__class__.__name__)
    # A text about the car may not render without one: its audience has cars (as when it
    # was first saved).
    with contextlib.suppress(TemplateError, ArithmeticError, LookupError, TypeError,
                             ValueError):
        bodies.append(render_message(text, **sample_context(dealer, with_car=False)))
    longest = max(len(body) for body in bodies)
    if longest > TEXT_CAP:
        return MessageProblem("length", f"it renders to {longest} characters and a campaign "
                              f"takes {TEXT_CAP} (Telegram's 4096 less room for the how-to-stop"
                              f" footer): shorten it by {longest - TEXT_CAP}", size=longest)
    for body in bodies:
        try:
            parse_html(body)
        except HtmlParseError as exc:
            return MessageProblem("html", f"{exc}. Close every tag you open (<b>…</b>) and "
                                  "write a literal < as &lt;")
    return None


def check_messages(texts: Mapping[str, str],
                   dealer: Mapping[str, str]) -> dict[str, MessageProblem]:
    """:func:`check_message` for each language's text; the problems by language."""
    found = {lang: check_message(text, dealer) for lang, text in texts.items()}
    return {lang: problem for lang, problem in found.items() if problem is not None}


def parse_buttons(raw: Any) -> list[dict[str, Any]]:
    """Up to three of interested / book / url (url needs "url"); labels optional per language."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise CampaignError("buttons: give a list, e.g. [{\"kind\": \"interested\"}]")
    if len(raw) > MAX_BUTTONS:
        raise CampaignError(f"buttons: at most {MAX_BUTTONS} (the Unsubscribe button is added)")
    out: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, (str, Mapping)):
            raise CampaignError(f"buttons: {item!r} is neither a kind nor an object, e.g. "
                                "\"interested\" or {\"kind\": \"url\", \"url\": \"https://…\"}")
        spec = {"kind": item} if isinstance(item, str) else dict(item)
        kind = str(spec.get("kind", "")).strip()
        if kind not in BUTTON_KINDS:
            raise CampaignError(f"buttons: kind {kind!r} unknown; use {', '.join(BUTTON_KINDS)}")
        button: dict[str, Any] = {"kind": kind}
        label = spec.get("label")
        if isinstance(label, str) and label.strip():
            button["label"] = {DEFAULT_LANGUAGE: label.strip()}
        elif isinstance(label, Mapping):
            button["label"] = {str(k): str(v) for k, v in label.items() if str(v).strip()}
        if kind == "url":
            url = str(spec.get("url", "")).strip()
            if not URL.match(url):
                raise CampaignError(f"buttons: url {url!r} must start with http:// or https://")
            button["url"] = url
        out.append(button)
    kinds = [b["kind"] for b in out if b["kind"] != "url"]
    if len(kinds) != len(set(kinds)):
        raise CampaignError("buttons: interested and book can each appear once")
    return out




# --------------------------------------------------------------------------- rendering


def button_label(button: Mapping[str, Any], lang: str, scripts: Scripts) -> str:
    labels = button.get("label") or {}
    return str(labels.get(lang) or labels.get(DEFAULT_LANGUAGE)
               or scripts.label(f"campaign_button_{button['kind']}", lang))


def compose_campaign(campaign: Campaign, customer: Customer, vehicle: Vehicle | None,
                     scripts: Scripts, settings: Settings,
                     touchpoint_id: int | None = None) -> Outgoing:
    """The campaign's text in the owner's language (zh_CN fallback), the how-to-stop footer,
    its buttons and the one-tap Unsubscribe, all in the body's language. Book starts the
    booking flow (issue 3's ``bk:s:<touchpoint>``) when there is one, else it tells the
    advisor."""
    lang = customer.language if customer.language in campaign.messages else DEFAULT_LANGUAGE
    dealer = dealer_context(settings)
    body = render_message(campaign.messages[lang], **campaign_context(
        customer, vehicle, dealer, {"name": campaign.name, "event_date": campaign.event_date}))
    # the footer and the buttons in the body's language: one message, one language (an
    # English reader without an English text gets all of it in Chinese, not a mix)
    footer = scripts.render("campaign_footer", lang, dealer=dealer)
    rows: list[list[tuple[str, str]]] = []
    for button in campaign.buttons:
        label = button_label(button, lang, scripts)
        if button["kind"] == "url":
            rows.append([(label, "url:" + str(button["url"]))])
        elif button["kind"] == "book" and touchpoint_id is not None and booking_flow():
            rows.append([(label, f"bk:s:{touchpoint_id}")])
        else:
            rows.append([(label, f"mk:{campaign.id}:{BUTTON_CODES[button['kind']]}")])
    rows.append([(scripts.label("campaign_button_unsubscribe", lang),
                  f"mk:{campaign.id}:{BUTTON_CODES['unsubscribe']}")])
    return Outgoing(text=f"{body}\n\n{footer}", buttons=rows)


def trial_messages(campaign: Campaign, name: str, settings: Settings, scripts: Scripts, *,
                   every_language: bool = False) -> list[Outgoing]:
    """The test messages a staff member sends themselves: the campaign as an owner called
    ``name`` gets it, marked as a test. In Chinese without a car (``carebot campaign test``,
    the API's test send); with ``every_language``, in each of the campaign's languages with a
    sample car (the console's). Raises what a broken template raises; slow for a slow
    template, so callers run it off the loop (``render_off_loop``)."""
    languages = [code for code in LANGUAGES if code in campaign.messages] if every_language \
        else [DEFAULT_LANGUAGE]
    car = _SampleCar()
    vehicle = Vehicle(model=car.model, plate=car.plate) if every_language else None
    out: list[Outgoing] = []
    for lang in languages:
        owner = Customer(name=name, language=lang)
        composed = compose_campaign(campaign, owner, vehicle, scripts, settings)
        out.append(Outgoing(text=scripts.label("campaign_test_prefix", lang) + composed.text,
                            buttons=composed.buttons))
    return out


def booking_flow() -> bool:
    """Is the booking flow (bot.handlers.booking, issue 3) part of this build?"""
    return importlib.util.find_spec("bot.handlers.booking") is not None


async def latest_vehicle(customer_id: int) -> Vehicle | None:
    return await Vehicle.filter(customer_id=customer_id).order_by("-delivered_at", "-id").first()
