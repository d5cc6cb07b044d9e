"""``crash``: acknowledged webhook updates survive a SIGKILL (issue 13), beside the same
without the inbox.

``carebot run`` in webhook mode, its own process, against the emulator at Telegram's limits
(30 messages/s overall; carebot at its default rates). Owners not yet linked each tap their
link (``/start <token>``); the updates, as Telegram would post them, are POSTed over 40
connections (Telegram's default ``max_connections``). As soon as every one was answered 200
the process is SIGKILLed and started again at once; every owner must get the reply, twice
only if their update was being handled at the kill. The approach of tests/test_inbox_crash.py.

Baseline: the same process with the webhook route handing each update straight to PTB and
answering 200 at once, as PTB's own webhook server does and carebot did before the inbox
(the update handled after the answer, up to ``CAREBOT_UPDATE_CONCURRENCY`` at once), killed
and restarted the same way: what was not handled by the kill is lost, as Telegram never
posts an acknowledged update again. (A route answering only after handling loses nothing
to a kill, as nothing acknowledged is unhandled: its cost is the answer's latency, which
the ``webhook`` benchmark measures without the inbox.)
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import CHILD_CODE, Databases, Figure, child_env
from benchmarks.webhook import WEBHOOK_CONNECTIONS, free_port, take_updates
from benchmarks.webhook_child import SECRET_HEADER
from bot.config import DEFAULT_WEBHOOK_PATH, Settings

CRASH_UPDATES = 2_000
FIRST_CHAT = 7_000_000
RATE = 30.0  # messages a second: Telegram's, the emulator's and carebot's default
RECOVERY_SLACK = 15.0  # seconds beyond the rate's floor a restart may take to catch up
START_TIMEOUT = 120.0  # seconds a process may take to answer /healthz
STOP_GRACE = 40.0  # seconds a SIGTERM may take (carebot lets updates in hand finish)


@dataclass
class _Process:
    process: asyncio.subprocess.Process
    port: int
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace")
                         .splitlines()[-30:])


@dataclass
class _Run:
    """One crash run: ours (``inbox``) or the baseline."""

    inbox: bool
    owners: int
    statuses: dict[int, int]
    posted: float = 0.0  # seconds the posts took
    at_kill: int = 0  # owners answered when the process died
    stored: int = 0  # acknowledged updates stored (ours)
    pending: int = 0
    in_flight: set[int] | None = None  # chats whose update was being handled (ours)
    answered: int = 0
    twice: set[int] | None = None
    recovery: float | None = None  # restart to the last reply
    too_late: bool = False  # the wait for every reply ran out
    limited: int = 0  # 429 answers the emulator gave


class _Crash:
    """The emulator, one database and the carebot process of one run."""

    def __init__(self, emu: Any, db_url: str, folder: Path, settings: Settings, inbox: bool
                 ) -> None:
        self.emu, self.db_url, self.folder, self.inbox = emu, db_url, folder, inbox
        self.settings = settings
        self.secret = secrets.token_urlsafe(24)
        self.starts = 0

    def _env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in child_env().items() if not k.startswith("CAREBOT_")}
        return {**env, "PYTHONUNBUFFERED": "1", "CAREBOT_BOT_TOKEN": self.emu.token,
                "CAREBOT_TELEGRAM_API_URL": self.emu.api_url,
                "CAREBOT_DATABASE_URL": self.db_url, "CAREBOT_TIMEZONE": self.settings.timezone,
                "CAREBOT_QUIET_HOURS": "off", "CAREBOT_HOLIDAYS": "",
                "CAREBOT_WEB_HOST": "127.0.0.1", "CAREBOT_WEB_PORT": str(port),
                "CAREBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}{DEFAULT_WEBHOOK_PATH}",
                "CAREBOT_WEBHOOK_SECRET": self.secret}

    async def start(self) -> _Process:
        """``carebot run`` (ours) or the baseline's process; returns once /healthz is 200."""
        port = free_port()
        self.starts += 1
        log = self.folder / f"crash_{'inbox' if self.inbox else 'direct'}_{self.starts}.log"
        command = ("-m", "bot.cli", "run") if self.inbox else \
            ("-c", CHILD_CODE, "crash_direct", "{}")
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *command, stdout=out, stderr=asyncio.subprocess.STDOUT,
                cwd=str(self.folder), env=self._env(port))
        proc = _Process(process, port, log)
        await _healthy(proc)
        return proc


async def _healthy(proc: _Process) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while True:
            if proc.process.returncode is not None:
                raise RuntimeError(f"carebot exited ({proc.process.returncode}) at start:\n"
                                   f"{proc.tail()}")
            try:
                async with http.get(f"http://127.0.0.1:{proc.port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"carebot never answered /healthz:\n{proc.tail()}")
            await asyncio.sleep(0.05)  # polling a process that is starting


async def _stop(proc: _Process) -> None:
    if proc.process.returncode is None:
        proc.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.process.wait(), STOP_GRACE)
    except TimeoutError:
        proc.process.kill()
        await proc.process.wait()


async def _post_all(port: int, secret: str, updates: list[dict[str, Any]]
                    ) -> tuple[dict[int, int], float]:
    """Every update POSTed as Telegram would (40 connections); (answers by status, seconds)."""
    import aiohttp

    hook = f"http://127.0.0.1:{port}{DEFAULT_WEBHOOK_PATH}"
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=WEBHOOK_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=120),
    ) as http:
        async def post(update: dict[str, Any]) -> int:
            async with http.post(hook, json=update, headers={SECRET_HEADER: secret}) as r:
                await r.read()
                return r.status

        started = loop.time()
        answers = await asyncio.gather(*(post(u) for u in updates))
        posted = loop.time() - started
    statuses: dict[int, int] = {}
    for status in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return statuses, posted


def _replies(emu: Any, owners: int) -> list[int]:
    """Messages the emulator accepted for each owner's chat, in owner order."""
    return [len(emu.send_times.get(FIRST_CHAT + i, ())) for i in range(owners)]


async def _queue_links(emu: Any, owners: int) -> list[dict[str, Any]]:
    """``owners`` owners, none linked yet, each tapping their link; the updates."""
    from db.models import Customer

    await Customer.bulk_create([
        Customer(name=f"车主{i}", phone=f"+86135{i:08d}", link_token=f"crash-{i}")
        for i in range(owners)], batch_size=1000)
    for i in range(owners):
        emu.user(FIRST_CHAT + i, first_name=f"车主{i}").send_text(f"/start crash-{i}")
    updates = await take_updates(emu)
    if len(updates) != owners:
        raise RuntimeError(f"{len(updates)} updates queued for {owners} owners")
    return updates


async def _inbox_at_kill(run: _Run) -> None:
    """What the kill left in the inbox: stored, not yet handled, being handled."""
    from db.models import InboxStatus, InboxUpdate

    run.stored = await InboxUpdate.all().count()
    run.pending = await InboxUpdate.filter(status=InboxStatus.PENDING).count()
    handling = await InboxUpdate.filter(status=InboxStatus.HANDLING).values_list(
        "chat_key", flat=True)
    run.in_flight = {int(str(chat)) for chat in handling}


async def _all_handled(emu: Any, run: _Run, timeout: float) -> None:
    """Wait until every owner has the reply and the inbox holds nothing unhandled."""
    from db.models import InboxStatus, InboxUpdate

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = (InboxStatus.PENDING, InboxStatus.HANDLING)
    while not (all(_replies(emu, run.owners))
               and not await InboxUpdate.filter(status__in=waiting).exists()):
        if loop.time() > deadline:
            run.too_late = True
            return
        await asyncio.sleep(0.05)  # polling the emulator's counts and the database


async def _kill_and_restart(crash: _Crash, owners: int) -> _Run:
    """Post, SIGKILL once every post is answered, restart at once, wait for the replies."""
    emu = crash.emu
    updates = await _queue_links(emu, owners)
    first = await crash.start()
    try:
        statuses, posted = await _post_all(first.port, crash.secret, updates)
    finally:
        first.process.kill()  # SIGKILL, as soon as the last post is answered
        await first.process.wait()
    run = _Run(crash.inbox, owners, statuses, posted,
               at_kill=sum(1 for n in _replies(emu, owners) if n))
    if crash.inbox:
        await _inbox_at_kill(run)
    restarted = asyncio.get_running_loop().time()
    second = await crash.start()
    try:
        if crash.inbox:
            left = owners - run.at_kill
            await _all_handled(emu, run, timeout=120 + 3 * left / RATE)
        # The baseline has nothing left to handle once it is up: no update was stored, and
        # the emulator holds none (Telegram does not post an acknowledged update again).
    finally:
        await _stop(second)
    counts = _replies(emu, owners)
    run.answered = sum(1 for n in counts if n)
    run.twice = {FIRST_CHAT + i for i, n in enumerate(counts) if n > 1}
    last = max((t for i in range(owners) for t in emu.send_times.get(FIRST_CHAT + i, ())),
               default=restarted)
    run.recovery = max(0.0, last - restarted) if crash.inbox else None
    run.limited = int(emu.stats["429"])
    return run


async def _crash_run(settings: Settings, *, inbox: bool, owners: int) -> _Run:
    """One run on a database and an emulator of its own."""
    from bot.sandbox.emulator import TelegramEmulator
    from db.setup import close_database, open_database

    emu = TelegramEmulator()  # Telegram's limits: 30/s, a burst of 3 then 1/s per chat
    await emu.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = await Databases(folder).fresh(f"crash_{'inbox' if inbox else 'direct'}")
            await open_database(url, apply_migrations=False)
            try:
                return await _kill_and_restart(_Crash(emu, url, folder, settings, inbox),
                                               owners)
            finally:
                await close_database()
    finally:
        await emu.stop()


async def bench_crash(settings: Settings, *, updates: int) -> list[Figure]:
    """``updates`` acknowledged, SIGKILL, restart: ours (the inbox), then the baseline."""
    ours = await _crash_run(settings, inbox=True, owners=updates)
    base = await _crash_run(settings, inbox=False, owners=updates)
    return _figures(ours, base)


def _problems(ours: _Run, base: _Run) -> str:
    n, in_flight, twice = ours.owners, ours.in_flight or set(), ours.twice or set()
    problems = [f"{who} answered {run.statuses}" for who, run in (("ours", ours),
                                                                   ("baseline", base))
                if run.statuses != {200: n}]
    if ours.stored != n:
        problems.append(f"{ours.stored:,} of {n:,} acknowledged updates stored")
    if ours.too_late:
        problems.append("the wait for every reply ran out")
    if not twice <= in_flight:
        problems.append(f"{len(twice - in_flight)} owners answered twice without their "
                        "update in flight at the kill")
    if ours.limited:
        problems.append(f"{ours.limited} answers 429")
    return f"; CHECK: {'; '.join(problems)}" if problems else ""


def _figures(ours: _Run, base: _Run) -> list[Figure]:
    n, in_flight, twice = ours.owners, ours.in_flight or set(), ours.twice or set()
    left = n - ours.at_kill
    floor = left / RATE
    recovery = ours.recovery or 0.0
    return [
        Figure(f"crash: owners answered after a SIGKILL and a restart ({n:,} acknowledged "
               "updates)", ours.answered, "", f"= {n:,}", ours.answered == n,
               float(base.answered),
               f"carebot run in webhook mode, killed as soon as the last of {n:,} POSTs "
               f"(over {WEBHOOK_CONNECTIONS} connections, {ours.posted:.1f} s) was answered "
               f"200: {ours.stored:,} stored, {ours.pending:,} pending and {len(in_flight)} "
               f"being handled, {ours.at_kill:,} owners answered; restarted at once; "
               f"baseline: the route hands each update to PTB and answers 200 at once, killed "
               f"the same way ({base.at_kill:,} answered by the kill): {n - base.answered:,} "
               f"of {n:,} lost{_problems(ours, base)}"),
        Figure("crash: owners answered twice", len(twice), "",
               f"≤ in flight at the kill ({len(in_flight)})", twice <= in_flight,
               float(len(base.twice or ())),
               "an update being handled at the kill may have had its reply sent before it "
               "was marked done; the /start is idempotent (the second reply says welcome "
               "back)"),
        Figure("crash: time to recover (restart to the last reply)", recovery, "s",
               f"≤ {floor + RECOVERY_SLACK:.0f} s", recovery <= floor + RECOVERY_SLACK, None,
               f"{left:,} owners unanswered at the kill; their replies at Telegram's "
               f"{RATE:g} msg/s take {floor:.1f} s at least (target: that + "
               f"{RECOVERY_SLACK:g} s for the start); {ours.limited} answers 429"),
    ]


async def child_crash_direct(params: dict[str, Any]) -> dict[str, Any]:
    """The baseline's process: carebot as ``carebot run`` has it (settings from the
    environment), its webhook route handing each update straight to PTB and answering at
    once (a bench-only middleware, not a setting); runs until SIGTERM."""
    from benchmarks.webhook_child import direct_route
    from bot.app import create_app
    from bot.config import load_settings
    from db.setup import close_database, open_database

    settings = load_settings()
    await open_database(settings.database_url)
    carebot = create_app(settings)
    carebot.web_app.middlewares.append(direct_route(carebot, answer_first=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await carebot.start()
        await stop.wait()
    finally:
        await carebot.stop()
        await close_database()
    return {}
