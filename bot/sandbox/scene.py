"""`carebot sandbox`: try carebot without a bot token.

Starts the Telegram emulator on localhost, a demo dealership with a few owners in a fresh
SQLite file, plays a short scene (owners link, two hours pass, check-ins arrive) printed as
a transcript, then keeps serving: the bot polls the emulator, the scheduler ticks and the
web side answers, until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.campaigns.journeys import journey_rules
from bot.clock import OffsetClock
from bot.config import Settings
from bot.intake import import_deliveries_records
from bot.sandbox.emulator import TelegramEmulator
from db.models import Customer, Touchpoint
from db.setup import close_database, open_database

log = logging.getLogger(__name__)

SANDBOX_DB = Path("data/sandbox.sqlite3")
EMULATOR_PORT = 8081
_TAG = re.compile(r"<[^>]+>")


def demo_deliveries(now_local: str) -> list[dict[str, Any]]:
    """Three owners who took delivery just now."""
    return [
        {
            "vin": "LSVAU218XN2183294",
            "plate": "粤A12345",
            "model": "星辰 S7",
            "owner_name": "王芳",
            "phone": "13800138000",
            "delivered_at": now_local,
            "sales_advisor": "李娜",
            "birthday": "1988-03-12",
            "insurance_expiry": "2027-11-20",
        },
        {
            "vin": "LSGPC52UXKF123456",
            "plate": "粤B88888",
            "model": "星辰 X3",
            "owner_name": "Tom Lee",
            "phone": "+8613900139000",
            "delivered_at": now_local,
            "sales_advisor": "李娜",
            "language": "en",
        },
        {
            "vin": "LFV2A21K6M3012345",
            "plate": "粤A67890",
            "model": "星辰 S7",
            "owner_name": "陈强",
            "phone": "13700137000",
            "delivered_at": now_local,
            "sales_advisor": "赵磊",
        },
    ]


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def print_transcript(title: str, transcript: list[dict[str, Any]]) -> None:
    print(f"\n── {title} " + "─" * max(0, 60 - len(title)))
    for msg in transcript:
        who = "bot " if msg.get("from_bot") else "you "
        body = msg.get("text") or msg.get("caption") or ""
        if msg.get("contact"):
            body = f"[shares contact {msg['contact'].get('phone_number')}]"
        lines = _plain(body).splitlines() or [""]
        print(f"  {who}│ {lines[0]}")
        for line in lines[1:]:
            print(f"      │ {line}")
        markup = msg.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            print("      │ " + "  ".join(f"[{b.get('text')}]" for b in row))


async def _answer_surveys(owner1: Any, owner2: Any, poll: Any) -> None:
    """The owners answer the 3-day satisfaction question: one presses, one types."""
    last1 = owner1.last_bot_message() or {}
    rows = (last1.get("reply_markup") or {}).get("inline_keyboard") or []
    if any(b.get("callback_data", "").startswith("sv:") for row in rows for b in row):
        owner1.press("9")
        await poll()
    last2 = owner2.last_bot_message() or {}
    rows = (last2.get("reply_markup") or {}).get("inline_keyboard") or []
    if any(b.get("callback_data", "").startswith("sv:") for row in rows for b in row):
        owner2.send_text("8 points")
        await poll()


async def play_scene(
    carebot: Any, emu: TelegramEmulator, clock: OffsetClock, settings: Settings
) -> None:
    """The scripted scene: link two owners two ways, refuse a forwarded contact, then walk
    the delivery journey (check-in, 3-day survey answered, 7-day visit, first service)."""
    now_local = clock.now().astimezone(settings.tz)
    result = await import_deliveries_records(
        demo_deliveries(f"{now_local:%Y-%m-%d %H:%M}"),
        rules=journey_rules(settings),
        now=clock.now(),
    )
    print(f"Imported the demo deliveries: {result.summary()}")

    async def poll() -> None:
        while await carebot.poll_once():
            pass

    wang = await Customer.get(phone="+8613800138000")
    owner1 = emu.user(1001, first_name="芳", last_name="王")
    owner1.send_text(f"/start {wang.link_token}")  # tapped her personal link
    await poll()

    owner2 = emu.user(1002, first_name="Tom", last_name="Lee", language_code="en")
    owner2.send_text("/start")
    await poll()
    owner2.share_contact("+8613900139000")
    await poll()

    stranger = emu.user(1999, first_name="Mallory")
    stranger.send_text("/start")
    await poll()
    stranger.share_contact("+8613700137000", user_id=1003)  # someone else's contact card
    await poll()

    # Walk the delivery journey: each time something falls due, move the clock there.
    steps = sorted({tp.due_at for tp in await Touchpoint.filter(status="pending")})
    for due in steps:
        if due > clock.now():
            clock.advance(due - clock.now() + timedelta(minutes=1))
        report = await carebot.dispatcher.dispatch_due()
        if report.sent:
            print(f"… {clock.now().astimezone(settings.tz):%Y-%m-%d %H:%M} "
                  f"({settings.timezone}): {report.sent} message(s) sent")
        await _answer_surveys(owner1, owner2, poll)

    print_transcript("王芳 (linked with her personal deep link)", owner1.transcript())
    print_transcript("Tom Lee (shared his phone number, English)", owner2.transcript())
    print_transcript("A stranger forwarding 陈强's contact (refused)", stranger.transcript())
    print("\n陈强 has not linked yet: his check-in waits for him, and expires if he never does.")


async def run_sandbox(settings: Settings) -> int:
    from bot.app import create_app

    emu = TelegramEmulator(global_rate=30, per_chat_interval=None)
    try:
        await emu.start(port=EMULATOR_PORT)
    except OSError:
        await emu.start(port=0)
    SANDBOX_DB.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SANDBOX_DB}{suffix}").unlink(missing_ok=True)
    sandbox_settings = settings.model_copy(
        update={
            "bot_token": emu.token,
            "telegram_api_url": emu.api_url,
            "database_url": f"sqlite://{SANDBOX_DB}",
            "webhook_url": "",
        }
    )
    clock = OffsetClock()
    await open_database(sandbox_settings.database_url)
    carebot = create_app(sandbox_settings, clock)
    try:
        await carebot.initialize()
        print(
            f"Sandbox: Telegram emulator at {emu.api_url}, "
            f"dealership '{settings.dealer_name}', database {SANDBOX_DB}"
        )
        await play_scene(carebot, emu, clock, sandbox_settings)
        await carebot.start()
        print(
            f"\nStill serving: web on http://{settings.web_host}:{settings.web_port} "
            f"(health: /healthz), emulator at {emu.api_url}. Ctrl-C stops."
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await carebot.stop()
        await close_database()
        await emu.stop()
    return 0
