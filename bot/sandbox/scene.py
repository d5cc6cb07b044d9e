"""`carebot sandbox`: try carebot without a bot token.

Starts the Telegram emulator on localhost, a demo dealership with a few owners in a fresh
SQLite file and two demo console accounts, plays a short scene (owners link, the delivery
journey unfolds) printed as a transcript, then keeps serving: the bot polls the emulator,
the scheduler ticks and the web side answers (the console, with its sandbox chat page where
you act as a demo owner and move time forward), until Ctrl-C.

The pieces (settings, demo data, demo staff, the console's hook, "run the due jobs now")
are functions the browser tests reuse, so a test and ``carebot sandbox`` build the same thing.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import re
import secrets
import signal
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import surveys, touchpoints
from bot.app import CareBot, create_app
from bot.campaigns import promotions
from bot.clock import OffsetClock
from bot.config import Settings
from bot.handlers import marketing, staff
from bot.intake import ImportResult, import_deliveries_records
from bot.journeys.plans import journey_rules
from bot.sandbox.emulator import TelegramEmulator
from bot.sandbox.live import DemoOwner, DueReport, MovableClock, Sandbox
from bot.schedule import in_quiet_hours
from bot.startup import StartupError
from bot.terminal_words import ljust, t, width
from bot.web.console import hash_password
from db.models import Customer, Staff, StaffRole, Touchpoint
from db.setup import close_database, open_database

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

SANDBOX_DB = Path("data/sandbox.sqlite3")
# The sandbox signs its scripts with this unless CAREBOT_DEALER_NAME says otherwise.
DEMO_DEALER_NAME = "星辰汽车4S店（演示）"
_TAG = re.compile(r"<[^>]+>")

# The demo owners' Telegram accounts in the emulator (user id = private chat id) and the
# phones of their files. The first three take part in the scene; the last two take delivery
# when it ends, so the sandbox chat can walk a fresh journey.
SCENE_OWNERS = (
    DemoOwner(1001, "+8613800138000", "芳", "王"),
    DemoOwner(1002, "+8613900139000", "Tom", "Lee", "en"),
    DemoOwner(1003, "+8613700137000", "强", "陈"),
)
FRESH_OWNERS = (
    DemoOwner(1004, "+8613600136000", "敏", "赵"),
    DemoOwner(1005, "+8613500135000", "Anna", "Smith", "en"),
)
DEMO_OWNERS = SCENE_OWNERS + FRESH_OWNERS


def demo_deliveries(now_local: str) -> list[dict[str, Any]]:
    """Three owners who took delivery just now (the scene's)."""
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
            "title": "女士",
            "marketing_consent": "是",  # so a campaign can be tried in the demo
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
            "title": "Mr",
            "marketing_consent": "yes",
        },
        {
            "vin": "LFV2A21K6M3012345",
            "plate": "粤A67890",
            "model": "星辰 S7",
            "owner_name": "陈强",
            "phone": "13700137000",
            "delivered_at": now_local,
            "sales_advisor": "赵磊",
            "title": "先生",
        },
    ]


def fresh_deliveries(now_local: str) -> list[dict[str, Any]]:
    """Two owners who take delivery when the scene ends: not linked yet, journey ahead."""
    return [
        {
            "vin": "LSVNV2185N2004321",
            "plate": "粤A24680",
            "model": "星辰 X3",
            "owner_name": "赵敏",
            "phone": "13600136000",
            "delivered_at": now_local,
            "sales_advisor": "李娜",
            "marketing_consent": "是",
        },
        {
            "vin": "LSJW74U30NZ135790",
            "plate": "粤B13579",
            "model": "星辰 S7",
            "owner_name": "Anna Smith",
            "phone": "+8613500135000",
            "delivered_at": now_local,
            "sales_advisor": "赵磊",
            "language": "en",
        },
    ]


async def import_demo(
    records: list[dict[str, Any]] | None, clock: MovableClock, settings: Settings
) -> ImportResult:
    """Import demo deliveries (default: the scene's three) delivered at the clock's now."""
    now_local = f"{clock.now().astimezone(settings.tz):%Y-%m-%d %H:%M}"
    return await import_deliveries_records(
        records if records is not None else demo_deliveries(now_local),
        rules=journey_rules(settings),
        now=clock.now(),
    )


DEMO_CAMPAIGN: dict[str, Any] = {
    "name": "双十一保养特惠（演示）",
    "messages": {
        "zh_CN": "{{ customer.name }}您好！双十一期间到店保养享工时八折，"
                 "{{ vehicle.model or '爱车' }}的常规保养还送免费检测。"
                 "名额有限，点“我感兴趣”我们会联系您。",
        "en": "Hello {{ customer.name }}! During Double 11, servicing your "
              "{{ vehicle.model or 'car' }} costs 20 % less labour, with a free check. "
              "Tap Interested and we will call you.",
    },
    "buttons": [{"kind": "interested"}, {"kind": "book"}],
    "audience": {},
    "marketer": "王芳",
}


async def create_demo_campaign(clock: MovableClock, settings: Settings) -> None:
    """A draft campaign to the owners who said yes to offers, so a marketer can try the
    editor, the confirmation and the press lists at once (issue 18)."""
    await promotions.create_campaign(
        now=clock.now(), dealer={"name": settings.dealer_name, "phone": settings.dealer_phone},
        **DEMO_CAMPAIGN)


@dataclass(frozen=True)
class DemoLogin:
    """A demo console account and its password (printed at start-up; the sandbox only)."""

    login: str
    name: str
    role: StaffRole
    password: str


async def create_demo_staff() -> list[DemoLogin]:
    """An admin (login ``admin``) and a CS agent (login ``agent``, 李娜: the advisor of
    three demo owners) with fresh random passwords. The sandbox database is new at every
    start, so are the passwords; nothing here is used outside the sandbox."""
    logins = [
        DemoLogin("admin", "周管理员", StaffRole.ADMIN, secrets.token_urlsafe(9)),
        DemoLogin("agent", "李娜", StaffRole.AGENT, secrets.token_urlsafe(9)),
    ]
    for demo in logins:
        await Staff.update_or_create(
            login=demo.login,
            defaults={"name": demo.name, "role": demo.role, "active": True,
                      "password_hash": hash_password(demo.password)},
        )
    return logins


async def run_due_jobs(services: Services) -> DueReport:
    """Run now what the scheduler would have run by the clock's time: the occasions scan,
    the campaign, ticket-deadline, relay and survey hand-over ticks, then the dispatcher."""
    await touchpoints.scan_now(services)
    await marketing.campaign_tick(services)
    await staff.deadline_tick(services)
    await staff.relay_tick(services)
    try:
        await surveys.hand_over_stale(now=services.clock.now(), services=services)
    except Exception:  # as the scheduled tick: log, the next run retries
        log.exception("survey hand-over failed; the next run retries")
    report = await services.dispatcher.dispatch_due()
    settings = services.settings
    return DueReport(
        sent=report.sent, failed=report.failed, unreachable=report.unreachable,
        expired=report.expired, skipped=report.skipped,
        quiet=in_quiet_hours(services.clock.now(), settings.tz, settings.quiet),
    )


def attach_sandbox(carebot: CareBot, emu: TelegramEmulator, clock: MovableClock,
                   owners: tuple[DemoOwner, ...] = DEMO_OWNERS) -> Sandbox:
    """Give the console the running sandbox: the demo owners' accounts in the emulator,
    message dates on the sandbox clock, and ``services.sandbox``."""
    for owner in owners:
        emu.user(owner.user_id, first_name=owner.first_name, last_name=owner.last_name,
                 language_code=owner.language_code)
    emu.wall_clock = lambda: clock.now().timestamp()
    sandbox = Sandbox(emulator=emu, clock=clock, owners=owners,
                      run_due=functools.partial(run_due_jobs, carebot.services))
    carebot.services.sandbox = sandbox
    return sandbox


def sandbox_settings(settings: Settings, emu: TelegramEmulator, database_url: str) -> Settings:
    """The given settings pointed at the emulator and the sandbox database (no webhook);
    the scripts sign with a Chinese demo dealership unless ``CAREBOT_DEALER_NAME`` is set,
    since the English default reads oddly inside Chinese sentences (issue 18)."""
    update: dict[str, Any] = {
        "bot_token": emu.token,
        "telegram_api_url": emu.api_url,
        "database_url": database_url,
        "webhook_url": "",
    }
    if "dealer_name" not in settings.model_fields_set:
        update["dealer_name"] = DEMO_DEALER_NAME
    return settings.model_copy(update=update)


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def import_line(result: ImportResult) -> str:
    """An import's counts in the terminal's language (the demo data has no problems to list;
    ``carebot import`` prints them)."""
    return t("import.summary", total=result.total, created=result.created,
             updated=result.updated, unchanged=result.unchanged, failed=result.failed) + (
        t("import.superseded", n=result.superseded) if result.superseded else "")


def print_transcript(title: str, transcript: list[dict[str, Any]]) -> None:
    print(f"\n── {title} " + "─" * max(0, 60 - width(title)))
    bot, you = t("sandbox.bot"), t("sandbox.you")
    columns = max(width(bot), width(you)) + 1
    gap = " " * (columns + 2)
    for msg in transcript:
        who = ljust(bot if msg.get("from_bot") else you, columns)
        body = msg.get("text") or msg.get("caption") or ""
        if msg.get("contact"):
            body = t("sandbox.shares_contact", phone=msg["contact"].get("phone_number"))
        lines = _plain(body).splitlines() or [""]
        print(f"  {who}│ {lines[0]}")
        for line in lines[1:]:
            print(f"{gap}│ {line}")
        markup = msg.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            print(f"{gap}│ " + "  ".join(f"[{b.get('text')}]" for b in row))


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


def _driver(emu: TelegramEmulator, owner: DemoOwner) -> Any:
    return emu.user(owner.user_id, first_name=owner.first_name, last_name=owner.last_name,
                    language_code=owner.language_code)


async def play_scene(
    carebot: Any, emu: TelegramEmulator, clock: MovableClock, settings: Settings
) -> None:
    """The scripted scene: link two owners two ways, refuse a forwarded contact, then walk
    the delivery journey (check-in, 3-day survey answered, 7-day visit, first service)."""
    result = await import_demo(None, clock, settings)
    print(t("sandbox.imported", summary=import_line(result)))

    async def poll() -> None:
        while await carebot.poll_once():
            pass

    wang_owner, tom_owner, chen_owner = SCENE_OWNERS
    wang = await Customer.get(phone=wang_owner.phone)
    owner1 = _driver(emu, wang_owner)
    owner1.send_text(f"/start {wang.link_token}")  # tapped her personal link
    await poll()

    owner2 = _driver(emu, tom_owner)
    owner2.send_text("/start")
    await poll()
    owner2.share_contact(tom_owner.phone)
    await poll()

    stranger = emu.user(1999, first_name="Mallory")
    stranger.send_text("/start")
    await poll()
    # someone else's contact card
    stranger.share_contact(chen_owner.phone, user_id=chen_owner.user_id)
    await poll()

    # Walk the delivery journey: each time something falls due, move the clock there.
    steps = sorted({tp.due_at for tp in await Touchpoint.filter(status="pending")})
    for due in steps:
        if due > clock.now():
            clock.advance(due - clock.now() + timedelta(minutes=1))
        report = await carebot.dispatcher.dispatch_due()
        if report.sent:
            print(t("sandbox.sent", when=f"{clock.now().astimezone(settings.tz):%Y-%m-%d %H:%M}",
                    zone=settings.timezone, n=report.sent))
        await _answer_surveys(owner1, owner2, poll)

    print_transcript(t("sandbox.wang"), owner1.transcript())
    print_transcript(t("sandbox.tom", name="Tom Lee"), owner2.transcript())
    print_transcript(t("sandbox.stranger"), stranger.transcript())
    print("\n" + t("sandbox.chen_waits"))


def print_console_access(settings: Settings, logins: list[DemoLogin]) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    print("\n" + t("sandbox.console", base=base))
    for demo in logins:
        print(t("sandbox.login", login=f"{demo.login:<6}", password=demo.password,
                role=t(f"sandbox.role.{demo.role.value}"), name=demo.name))
    print(t("sandbox.chat", url=f"{base}/sandbox/chat"))


async def start_emulator(port: int, host: str = "127.0.0.1") -> TelegramEmulator:
    """The Telegram emulator on ``port`` (CAREBOT_SANDBOX_TELEGRAM_PORT; 0: any free one),
    Telegram-strict; a port already taken is said in one line, never silently moved."""
    emu = TelegramEmulator()
    try:
        await emu.start(host=host, port=port)
    except OSError as exc:
        await emu.stop()
        raise StartupError(t("startup.emulator_port_taken", host=host, port=port,
                             why=exc.strerror or exc)) from exc
    return emu


async def run_sandbox(settings: Settings) -> int:
    emu = await start_emulator(settings.sandbox_telegram_port)
    SANDBOX_DB.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SANDBOX_DB}{suffix}").unlink(missing_ok=True)
    config = sandbox_settings(settings, emu, f"sqlite://{SANDBOX_DB}")
    clock = OffsetClock()
    await open_database(config.database_url)
    carebot = create_app(config, clock)
    try:
        await carebot.initialize()
        print(t("sandbox.started", api=emu.api_url, dealer=config.dealer_name,
                database=SANDBOX_DB))
        attach_sandbox(carebot, emu, clock)
        logins = await create_demo_staff()
        await play_scene(carebot, emu, clock, config)
        fresh = await import_demo(
            fresh_deliveries(f"{clock.now().astimezone(config.tz):%Y-%m-%d %H:%M}"),
            clock, config)
        await create_demo_campaign(clock, config)
        print("\n" + t("sandbox.imported_more", summary=import_line(fresh)))
        print(t("sandbox.not_linked_yet", first="赵敏", second="Anna Smith") + "\n")
        await carebot.start()
        print_console_access(config, logins)
        print("\n" + t("sandbox.serving", api=emu.api_url,
                        web=f"http://{settings.web_host}:{settings.web_port}"))
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
