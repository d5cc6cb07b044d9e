"""The booking dialogue's parts: what a button's data says (``Pick``), where and in which
language to answer (``Flow``), and the wording of days, slots, jobs and cars, from the
scripts (``bot/scripts/<lang>/booking.toml``). Other features use the labels and buttons
too: the reminder's composers, a conversation booked by staff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime

from telegram import CallbackQuery

from bot import booking_news as news
from bot import bookings, owners
from bot.bookings import BookingRules
from bot.delivery import notices
from bot.handlers import buttons
from bot.journeys.timing import local_date
from bot.keyboards import Rows, keyboard_or_none
from bot.services import Services
from bot.texts import DEFAULT_LANGUAGE
from db.models import Booking, BookingKind, Customer, Direction, Vehicle

log = logging.getLogger(__name__)

PREFIX = "bk"
JOB_CODES = {"m": BookingKind.MAINTENANCE, "r": BookingKind.REPAIR,
             "i": BookingKind.INSPECTION, "f": BookingKind.FIRST_SERVICE,
             "o": BookingKind.OTHER}
_CODE_OF = {kind: code for code, kind in JOB_CODES.items()}
# the job picker's order: what owners book most first
JOB_ORDER = (BookingKind.MAINTENANCE, BookingKind.REPAIR, BookingKind.INSPECTION,
             BookingKind.FIRST_SERVICE, BookingKind.OTHER)


@dataclass(frozen=True)
class Pick:
    """What the owner has chosen so far (the button's data, parsed and checked)."""

    src: int = 0
    car: int = 0
    job: BookingKind | None = None
    day: date | None = None
    slot: str = ""

    def data(self, step: str) -> str:
        parts = [PREFIX, step, str(self.src), str(self.car), _CODE_OF.get(self.job, "")
                 if self.job else "", f"{self.day:%Y%m%d}" if self.day else "",
                 self.slot.replace(":", "")]
        return ":".join(parts).rstrip(":")


def parse_pick(fields: list[str]) -> Pick | None:
    """``src:car:job:day:slot`` (any tail left out); None when any part is malformed."""
    fields = ([*fields, "", "", "", "", ""])[:5]
    src, car, job, day, slot = fields
    if not src.isdigit() or not car.isdigit() or (job and job not in JOB_CODES) \
            or (slot and not (len(slot) == 4 and slot.isdigit())):
        return None
    parsed = parse_day(day) if day else None
    if day and parsed is None:
        return None
    return Pick(int(src), int(car), JOB_CODES[job] if job else None, parsed,
                f"{slot[:2]}:{slot[2:]}" if slot else "")


def parse_day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass
class Flow:
    """One owner's step in the dialogue: where to answer, in their language, now."""

    svc: Services
    customer: Customer
    chat_id: int
    query: CallbackQuery | None
    now: datetime
    rules: BookingRules

    @property
    def lang(self) -> str:
        return self.customer.language

    def label(self, key: str, **fmt: object) -> str:
        return self.svc.scripts.label(key, self.lang, phone=self.svc.settings.dealer_phone,
                                      **fmt)

    @property
    def today(self) -> date:
        return local_date(self.now, self.rules.tz)

    async def say(self, text: str, rows: Rows | None = None, *, new: bool = False) -> None:
        """Edit the message the button is on, or (``new``, a command, a note) send one;
        either way it is kept in the owner's message log."""
        markup = keyboard_or_none(rows)
        message_id: int | None = None
        if self.query is not None and self.query.message is not None and not new:
            await buttons.edit_text(self.svc, self.query, text, reply_markup=markup)
            message_id = self.query.message.message_id
        else:
            sent = await self.svc.sender.text(self.chat_id, text, reply_markup=markup)
            if sent is None:
                return
            message_id = sent.message_id
        await owners.log_message(direction=Direction.OUT, chat_id=self.chat_id, text=text,
                                 now=self.now, kind="booking", customer_id=self.customer.id,
                                 telegram_message_id=message_id)


def flow_of(svc: Services, customer: Customer, chat_id: int,
          query: CallbackQuery | None) -> Flow:
    return Flow(svc, customer, chat_id, query, svc.clock.now(), svc.rules.bookings)




# --------------------------------------------------------------------------- wording


def book_button(svc: Services, lang: str, touchpoint_id: int) -> Rows:
    """The "Book a visit" row a reminder carries, as (label, data)."""
    return [[(svc.scripts.label("bk_book_button", lang), f"{PREFIX}:s:{touchpoint_id}")]]


def cancel_button(svc: Services, lang: str, booking_id: int) -> Rows:
    return [[(svc.scripts.label("bk_cancel_button", lang), f"{PREFIX}:x:{booking_id}")]]


def manage_buttons(svc: Services, lang: str, booking_id: int) -> Rows:
    """Change the time, cancel: under a confirmation and the reminder the day before."""
    return [[(svc.scripts.label("bk_change_button", lang), f"{PREFIX}:r:{booking_id}"),
             (svc.scripts.label("bk_cancel_button", lang), f"{PREFIX}:x:{booking_id}")]]


def not_now(flow: Flow) -> tuple[str, str]:
    return flow.label("bk_never_mind_button"), f"{PREFIX}:n"


def kind_rows(flow: Flow, pick: Pick) -> Rows:
    choices = [(kind_label(flow.svc, flow.lang, k), replace(pick, job=k).data("k"))
               for k in JOB_ORDER]
    return [choices[i:i + 2] for i in range(0, len(choices), 2)] + [[not_now(flow)]]


def day_label(svc: Services, lang: str, day: date) -> str:
    return news.day_text(svc.scripts, lang, day)


def slot_label(svc: Services, lang: str, code: str, rules: BookingRules | None = None) -> str:
    return news.slot_text(svc.scripts, lang, code, rules or svc.rules.bookings)


def kind_label(svc: Services, lang: str, kind: BookingKind) -> str:
    return news.kind_text(svc.scripts, lang, kind)


car_name = news.car_name


def vehicle_text(svc: Services, lang: str, vehicle: Vehicle | None) -> str:
    return svc.scripts.label("bk_vehicle", lang, vehicle=car_name(vehicle)) if vehicle else ""


def note_text(flow: Flow, note: str) -> str:
    return flow.label("bk_note_line", note=note) if note else ""


def booking_fmt(flow: Flow, day: date, slot: str, kind: BookingKind,
                vehicle: Vehicle | None) -> dict[str, object]:
    return {"day": day_label(flow.svc, flow.lang, day),
            "slot": slot_label(flow.svc, flow.lang, slot, flow.rules),
            "kind": kind_label(flow.svc, flow.lang, kind),
            "vehicle": vehicle_text(flow.svc, flow.lang, vehicle)}


def manage_rows(flow: Flow, booking_id: int) -> Rows:
    return manage_buttons(flow.svc, flow.lang, booking_id)


async def tell_staff(flow: Flow, booking: Booking, vehicle: Vehicle | None, key: str,
                     **extra: object) -> None:
    """A plain message to the owner's advisor (or the staff chat), owed as a row: sent once,
    tried again until it is; the booking stands either way."""
    await tell_staff_of(flow.svc, flow.customer, booking, vehicle, key, **extra)


async def tell_staff_of(svc: Services, customer: Customer, booking: Booking,
                        vehicle: Vehicle | None, key: str, **extra: object) -> None:
    chat_id = await bookings.staff_recipient(customer.advisor, svc.settings.staff_chat_id)
    if chat_id is None:
        log.warning("booking %s: no advisor on Telegram and no CAREBOT_STAFF_CHAT_ID; "
                    "staff were not told", booking.id)
        return
    lang = DEFAULT_LANGUAGE
    text = svc.scripts.label(
        key, lang, id=booking.id, name=customer.name, phone=customer.phone,
        vehicle=vehicle_text(svc, lang, vehicle), day=day_label(svc, lang, booking.day),
        slot=slot_label(svc, lang, booking.slot), kind=kind_label(svc, lang, booking.kind),
        advisor=customer.advisor or "-",
        note=svc.scripts.label("bk_note_line", lang, note=booking.note) if booking.note else "",
        **extra)
    stamp = f"{booking.day:%Y%m%d}{booking.slot}" if key == "bk_staff_moved" else ""
    if not await notices.tell(svc, f"booking:{booking.id}:{key}{stamp}", [chat_id], text):
        log.warning("booking %s: staff not told yet (%s); tried again", booking.id, key)
