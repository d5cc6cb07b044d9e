"""Several `carebot run` processes on one PostgreSQL database, and crash safety (issue 8).

The processes are real (``python -m bot.cli run`` and ``… import deliveries FILE``) with
``CAREBOT_*`` settings in their environment; the Telegram emulator runs in the test process
over real HTTP, and webhook updates reach the instances through a round-robin balancer in
the test process (as nginx would spread them). The emulator keeps Telegram's limits as in
every test (30 messages/s overall, a burst of 3 then 1/s per chat, 20/min per group) and the
instances send with their default limits, so the sending tests use a few hundred messages
(about ten seconds at 30/s) and check that Telegram never had to say 429. PostgreSQL only:
skipped, with the reason, when it does not answer. Every wait is on a condition (database
or emulator counts) with a deadline, never a fixed sleep.

In-process tests at the end pin the pieces: the lock module, resuming an interrupted
campaign launch and the once-per-scheduled-time daily scan (these also run on SQLite).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from tortoise import Tortoise

from bot import locks
from bot.sandbox.emulator import TelegramEmulator
from db.setup import close_database, open_database
from tests.conftest import _postgres_test_url, _truncate_all

ROOT = Path(__file__).resolve().parent.parent
SECRET = "scaleout-hook-secret"
FIRST_CHAT = 900_000_000  # owners' Telegram ids (= private chat ids) start here
DISPATCH_OWNERS = 300  # at Telegram's 30 messages/s: about ten seconds of sending
CONCURRENCY = 16  # CAREBOT_DISPATCH_CONCURRENCY: at most this many sends in flight
DEADLINE = 240.0  # seconds any one condition may take on a slow, shared machine


# --------------------------------------------------------------------------- plumbing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate: Callable[[], Awaitable[bool]], what: str, *,
                timeout: float = DEADLINE, every: float = 0.05,
                alive: list[Proc] | None = None) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` or when a process in
    ``alive`` has exited, showing the end of the processes' logs."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        for proc in alive or ():
            if proc.returncode is not None:
                raise AssertionError(f"{proc.name} exited ({proc.returncode}) while waiting "
                                     f"for {what}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.tail(15)}" for p in alive or ())
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        await asyncio.sleep(every)  # poll interval: the condition decides, not the time


async def sql(query: str, *args: Any) -> list[dict[str, Any]]:
    _, rows = await Tortoise.get_connection("default").execute_query(query, list(args))
    return [dict(r) for r in rows]


async def scalar(query: str, *args: Any) -> Any:
    rows = await sql(query, *args)
    return next(iter(rows[0].values()))


@dataclass
class Proc:
    """A carebot process started by the test, its output in a file."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    web_port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        """The end of the log, without the scheduler's "skipped: still running" noise."""
        kept = [line for line in self.output().splitlines()
                if "maximum number of running instances" not in line]
        return "\n".join(kept[-lines:])

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output()))

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)


class Balancer:
    """Round-robin in front of the instances' webhook routes, like nginx's upstream: an
    instance that does not answer is skipped for the next one."""

    def __init__(self) -> None:
        self.backends: list[Proc] = []
        self.routed: list[str] = []  # which instance took each update
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/telegram/webhook", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")}
        live = [b for b in self.backends if b.returncode is None]
        for _ in range(len(live)):
            backend = live[self._next % len(live)]
            self._next += 1
            try:
                async with self._http.post(
                    f"http://127.0.0.1:{backend.web_port}/telegram/webhook", data=body,
                    headers=headers,
                ) as answer:
                    text = await answer.text()
                    self.routed.append(backend.name)
                    return web.Response(status=answer.status, text=text)
            except aiohttp.ClientError:
                continue
        return web.Response(status=502, text="no instance answered")


class Cluster:
    """The emulator, the balancer and the carebot processes of one test."""

    def __init__(self, db_url: str, tmp_path: Path, emu: TelegramEmulator,
                 balancer: Balancer) -> None:
        self.db_url = db_url
        self.tmp_path = tmp_path
        self.emu = emu
        self.balancer = balancer
        self.procs: list[Proc] = []

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBOT_")}
        env.update({
            "PYTHONUNBUFFERED": "1",
            "CAREBOT_LANGUAGE": "en",  # what the test reads of their output
            "PYTHONPATH": str(ROOT),
            "CAREBOT_BOT_TOKEN": self.emu.token,
            "CAREBOT_TELEGRAM_API_URL": self.emu.api_url,
            "CAREBOT_DATABASE_URL": self.db_url,
            "CAREBOT_TIMEZONE": "UTC",
            "CAREBOT_QUIET_HOURS": "off",
            "CAREBOT_HOLIDAYS": "",
            "CAREBOT_WEBHOOK_URL": f"http://127.0.0.1:{self.balancer.port}/telegram/webhook",
            "CAREBOT_WEBHOOK_SECRET": SECRET,
            "CAREBOT_METRICS_OPEN": "true",  # staff_sends() reads each instance's /metrics
            "CAREBOT_DISPATCH_INTERVAL": "0.2",
            "CAREBOT_DISPATCH_CONCURRENCY": str(CONCURRENCY),
            "CAREBOT_LEASE_SECONDS": "10",
            "CAREBOT_CAMPAIGN_TICK_SECONDS": "0.2",
        })
        env.update(overrides)
        return env

    async def start(self, name: str, *args: str, **overrides: str) -> Proc:
        """Start ``python -m bot.cli ARGS`` (default ``run``) with the cluster's settings."""
        args = args or ("run",)
        port = _free_port()
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", *args, stdout=out,
                stderr=asyncio.subprocess.STDOUT, cwd=self.tmp_path,
                env=self.env(CAREBOT_WEB_PORT=str(port), **overrides),
            )
        proc = Proc(name, process, log, web_port=port if args[0] == "run" else None)
        self.procs.append(proc)
        if proc.web_port is not None:
            self.balancer.backends.append(proc)
        return proc

    async def running(self, *procs: Proc) -> None:
        """Wait until each instance says it runs (bot, scheduler and web are up)."""
        async def up() -> bool:
            return all("carebot is running" in p.output() for p in procs)

        await until(up, "the instances to start", alive=list(procs))

    async def holder(self) -> Proc:
        """The instance holding the dispatcher lock, from pg_locks and the lock session's
        application_name (``carebot <host>:<pid>``), in this run's database."""
        rows = await sql(
            "SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
            # this run's database only: another run on the server holds the same key
            "a.datname = current_database() AND "
            f"l.classid::bigint = {locks.NAMESPACE} AND l.objid::bigint = "
            f"{locks.JOBS[locks.DISPATCHER]}")
        assert len(rows) == 1, rows
        pid = int(str(rows[0]["app"]).rsplit(":", 1)[1])
        return next(p for p in self.procs if p.pid == pid)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.process.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.process.wait()


TELEGRAM_LIMITS = {"global_rate": 30, "per_chat_interval": 1.0, "per_chat_burst": 3,
                   "group_per_minute": 20}


def strict_emulator() -> TelegramEmulator:
    """The emulator as every test has it: Telegram's limits (the defaults), on real time as
    the processes it serves; pinned here so that a relaxed default cannot slip in."""
    emu = TelegramEmulator()
    limits = {name: getattr(emu, name) for name in TELEGRAM_LIMITS}
    assert limits == TELEGRAM_LIMITS, f"the emulator must keep Telegram's limits: {limits}"
    return emu


@pytest.fixture
def pg_url() -> str:
    url, why = _postgres_test_url()
    if url is None:
        pytest.skip(why)
    return url


@pytest_asyncio.fixture
async def cluster(pg_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    """An empty PostgreSQL database (this test run's), the emulator and the balancer."""
    await open_database(pg_url, apply_migrations=False)
    await _truncate_all()
    emu = strict_emulator()
    await emu.start()
    balancer = Balancer()
    await balancer.start()
    cl = Cluster(pg_url, tmp_path, emu, balancer)
    try:
        yield cl
    finally:
        await cl.stop()
        await balancer.stop()
        await emu.stop()
        await close_database()


# --------------------------------------------------------------------------- seeding


async def seed_owners(count: int, *, first_chat: int = FIRST_CHAT, linked: bool = True,
                      consent: bool = False, birthday_md: str | None = None) -> None:
    """``count`` owners in one INSERT … SELECT (ids 1..count on an empty table)."""
    chat = f"{first_chat} + i" if linked else "NULL"
    await sql(
        'INSERT INTO "customer" ("name", "phone", "link_token", "telegram_user_id", '
        '"telegram_chat_id", "linked_at", "language", "advisor", "birthday_lunar", '
        '"birthday_md", "followups_refused", "marketing_consent", "marketing_consent_at", '
        '"marketing_consent_source", "title", "created_at", "updated_at") '
        f"SELECT 'owner ' || i, '+86139' || lpad(i::text, 8, '0'), 'tok' || i, {chat}, "
        f"{chat}, now(), 'zh_CN', '', false, $2, false, $3, now(), 'import', '', now(), "
        "now() "
        "FROM generate_series(1, $1) AS i",
        count, birthday_md, consent,
    )


async def seed_due_touchpoints(count: int) -> None:
    """One due birthday greeting per owner 1..count."""
    await sql(
        'INSERT INTO "touchpoint" ("customer_id", "kind", "occasion_key", "priority", '
        '"due_at", "status", "status_reason", "attempts", "last_error", "payload", '
        '"created_at", "updated_at") '
        "SELECT i, 'birthday', 'birthday:scaleout', 5, now() - interval '1 minute', "
        "'pending', '', 0, '', '{}'::jsonb, now(), now() FROM generate_series(1, $1) AS i",
        count,
    )


def open_chats(emu: TelegramEmulator, count: int, first_chat: int = FIRST_CHAT) -> None:
    for i in range(1, count + 1):
        emu.user(first_chat + i)


def sends(emu: TelegramEmulator, count: int, first_chat: int = FIRST_CHAT) -> list[int]:
    """Messages the emulator accepted for each owner's chat, in owner order."""
    return [len(emu.send_times.get(first_chat + i, ())) for i in range(1, count + 1)]


async def sent_rows(kind: str = "birthday") -> int:
    return int(await scalar("SELECT COUNT(*) AS n FROM touchpoint WHERE kind = $1 AND "
                            "status = 'sent'", kind))


# --------------------------------------------------------------------------- dispatch


async def test_two_instances_send_each_due_touchpoint_once(cluster: Cluster) -> None:
    """300 due touchpoints, two instances: each message reaches Telegram exactly once, all
    from the instance holding the dispatcher lock, within Telegram's limits (no 429); and an
    owner's dialogue continues when consecutive updates land on different instances."""
    await seed_owners(DISPATCH_OWNERS)
    await seed_due_touchpoints(DISPATCH_OWNERS)
    open_chats(cluster.emu, DISPATCH_OWNERS)
    a = await cluster.start("a")
    b = await cluster.start("b")
    await cluster.running(a, b)
    started = time.monotonic()

    async def all_sent() -> bool:
        return await sent_rows() == DISPATCH_OWNERS

    await until(all_sent, "every touchpoint to be sent", alive=[a, b])
    seconds = time.monotonic() - started
    counts = sends(cluster.emu, DISPATCH_OWNERS)
    assert counts == [1] * DISPATCH_OWNERS, "each owner gets the message exactly once"
    assert cluster.emu.stats["429"] == 0
    reported = r"dispatched: DispatchReport\(sent=[1-9]"

    async def run_reported() -> bool:  # logged when its run returns, just after the writes
        return any(p.count(reported) for p in (a, b))

    await until(run_reported, "the sender to report its run", alive=[a, b])
    senders = [p for p in (a, b) if p.count(reported)]
    holder = await cluster.holder()
    assert senders == [holder], "only the instance holding the dispatcher lock sends"
    standby = b if holder is a else a
    assert standby.count("dispatcher lock taken") == 0
    print(f"\n{DISPATCH_OWNERS} touchpoints sent in {seconds:.1f}s by {holder.name}; "
          f"{standby.name} stood by")

    # An owner's dialogue (the complaint flow, state in the database) with each step
    # posted to the other instance in turn.
    user_id = FIRST_CHAT + DISPATCH_OWNERS + 1
    await sql(
        'INSERT INTO "customer" ("name", "phone", "link_token", "telegram_user_id", '
        '"telegram_chat_id", "linked_at", "language", "advisor", "birthday_lunar", '
        '"followups_refused", "marketing_consent", "marketing_consent_source", "title", '
        "\"created_at\", \"updated_at\") VALUES ('张伟', '+8613800138000', 'tok-dialogue', $1, $1, "
        "now(), 'zh_CN', '', false, false, false, '', '', now(), now())", user_id)
    owner = cluster.emu.user(user_id, "张伟")
    routed_before = len(cluster.balancer.routed)

    async def step(action: Callable[[], Any], replies: int) -> None:
        action()
        await owner.wait_for_bot_messages(replies, timeout=DEADLINE)

    await step(lambda: owner.send_text("/complain"), 1)
    await step(lambda: owner.press("维修质量"), 2)
    await step(lambda: owner.send_text("刹车有异响"), 3)
    await step(lambda: owner.press("✅ 提交"), 4)
    route = cluster.balancer.routed[routed_before:]
    assert len(route) == 4 and all(x != y for x, y in itertools.pairwise(route)), route

    async def ticket() -> bool:
        return bool(await scalar("SELECT COUNT(*) AS n FROM ticket WHERE description LIKE "
                                 "'%刹车有异响%' AND category = 'repair_quality'"))

    await until(ticket, "the complaint to be recorded")
    # Each instance paces only its own sends: a chat's replies from two instances can pass
    # Telegram's burst of 3; the sender then waits the 429's retry_after (the steps above).
    print(f"dialogue over {' → '.join(route)}: {cluster.emu.stats['429']} 429s")


STAFF_GROUP = -1009000000123
RELAYED = 30


async def staff_sends(proc: Proc) -> int:
    """What one instance posted in the staff lane, from its own /metrics."""
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{proc.web_port}/metrics") as r:
        text = await r.text()
    m = re.search(r'^carebot_sends_total\{lane="staff"\} (\d+)', text, re.M)
    assert m, text[:500]
    return int(m.group(1))


async def test_two_instances_one_staff_side_one_topic_one_relay(cluster: Cluster) -> None:
    """Two instances, one staff group: an owner's complaint, then 30 messages, each update
    posted to the other instance in turn. Only one instance posts to the staff group (the
    staff side's lock): so the ticket gets one topic, each message is relayed exactly once,
    and the group's 20 a minute hold."""
    group = cluster.emu.group(STAFF_GROUP, "客服中心", is_forum=True)
    staff_env = {"CAREBOT_STAFF_CHAT_ID": str(STAFF_GROUP)}
    a = await cluster.start("a", **staff_env)
    b = await cluster.start("b", **staff_env)
    await cluster.running(a, b)
    user_id = FIRST_CHAT + 1
    await sql(
        'INSERT INTO "customer" ("name", "phone", "link_token", "telegram_user_id", '
        '"telegram_chat_id", "linked_at", "language", "advisor", "birthday_lunar", '
        '"followups_refused", "marketing_consent", "marketing_consent_source", "title", '
        "\"created_at\", \"updated_at\") VALUES ('张伟', '+8613800138000', 'tok-staff', $1, $1, "
        "now(), 'zh_CN', '', false, false, false, '', '', now(), now())", user_id)
    owner = cluster.emu.user(user_id, "张伟")

    async def step(action: Callable[[], Any], replies: int) -> None:
        action()
        await owner.wait_for_bot_messages(replies, timeout=DEADLINE)

    await step(lambda: owner.send_text("/complain"), 1)
    await step(lambda: owner.press("维修质量"), 2)
    await step(lambda: owner.send_text("刹车有异响"), 3)
    await step(lambda: owner.press("✅ 提交"), 4)
    number = str(await scalar("SELECT number AS n FROM ticket"))
    routed_before = len(cluster.balancer.routed)
    texts = [f"补充说明第{n}条" for n in range(1, RELAYED + 1)]
    for text in texts:
        owner.send_text(text)

    def relayed() -> Counter[str]:
        said = "\n".join(str(m.get("text") or m.get("caption") or "")
                         for m in group.messages())
        return Counter({t: said.count(t) for t in texts})

    async def all_relayed() -> bool:
        return all(relayed().values())

    await until(all_relayed, "every owner message relayed to the staff group", alive=[a, b])
    route = cluster.balancer.routed[routed_before:]
    assert {"a", "b"} <= set(route), route  # the owner's updates reached both instances
    posted = {p.name: await staff_sends(p) for p in (a, b)}
    assert sorted(n > 0 for n in posted.values()) == [False, True], posted
    assert len([t for t in group.topics.values() if number in t["name"]]) == 1
    assert set(relayed().values()) == {1}, "each message relayed exactly once"
    times = sorted(cluster.emu.send_times.get(STAFF_GROUP, []))
    busiest = max(sum(1 for u in times if t - 60 < u <= t) for t in times)
    assert busiest <= 20, f"{busiest} messages to the group within a minute"
    print(f"\n{RELAYED} owner messages over both instances; staff posts by instance: "
          f"{posted}; one topic, each relayed once, at most {busiest} in a minute")


async def test_sigkill_of_the_sending_instance_the_other_finishes(cluster: Cluster) -> None:
    """The instance sending is killed (SIGKILL) half-way: the other takes the dispatcher
    lock and finishes. Duplicates are at most the messages in flight at the kill."""
    await seed_owners(DISPATCH_OWNERS)
    await seed_due_touchpoints(DISPATCH_OWNERS)
    open_chats(cluster.emu, DISPATCH_OWNERS)
    a = await cluster.start("a")
    b = await cluster.start("b")
    await cluster.running(a, b)

    async def half() -> bool:
        return cluster.emu.stats["calls"]["sendMessage"] >= DISPATCH_OWNERS // 2

    await until(half, "half of the messages", every=0.005, alive=[a, b])
    victim = await cluster.holder()
    victim.kill()
    at_kill = cluster.emu.stats["calls"]["sendMessage"]
    await victim.process.wait()
    survivor = b if victim is a else a
    # The owners whose message was recorded as sent when the victim died (the survivor can
    # send only rows still pending now; the victim's own rows wait for their lease).
    recorded = {int(r["chat"]) for r in await sql(
        "SELECT c.telegram_chat_id AS chat FROM touchpoint t JOIN customer c ON "
        "c.id = t.customer_id WHERE t.kind = 'birthday' AND t.status = 'sent'")}
    assert 0 < len(recorded) < DISPATCH_OWNERS, f"the kill landed after {len(recorded)} rows"

    async def all_sent() -> bool:
        return await sent_rows() == DISPATCH_OWNERS

    await until(all_sent, "the survivor to send the rest", alive=[survivor])
    counts = sends(cluster.emu, DISPATCH_OWNERS)
    assert min(counts) == 1, "every owner got the message"
    duplicates = sum(counts) - DISPATCH_OWNERS
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicates > {CONCURRENCY} in flight"
    twice = {FIRST_CHAT + i for i, n in enumerate(counts, start=1) if n > 1}
    assert not twice & recorded, "a message recorded as sent before the kill went out again"
    assert survivor.count("dispatcher lock taken") == 1
    assert (await cluster.holder()) is survivor
    print(f"\nkilled {victim.name} after {at_kill} messages ({len(recorded)} recorded as "
          f"sent); {survivor.name} finished; duplicates: {duplicates} (bound: {CONCURRENCY} "
          f"in flight); 429s: {cluster.emu.stats['429']}")


# --------------------------------------------------------------------------- import


def _vin(i: int) -> str:
    from bot.vin import check_digit

    body = f"LSVAU2180T9{i:06d}"
    return body[:8] + check_digit(body) + body[9:]


def write_deliveries(path: Path, rows: int, now: datetime) -> list[datetime]:
    """A DMS export of ``rows`` deliveries of the last weeks; returns their times."""
    times = []
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(("vin", "plate", "model", "owner_name", "phone", "delivered_at"))
        for i in range(rows):
            at = (now - timedelta(minutes=60 + 37 * i)).replace(second=0, microsecond=0)
            times.append(at)
            out.writerow((_vin(i), f"粤A{i:05d}", "星辰 S7", f"车主{i}", f"139{i:08d}",
                          f"{at:%Y-%m-%d %H:%M}"))
    return times


async def test_sigkill_during_import_then_rerun_completes(cluster: Cluster) -> None:
    """`carebot import deliveries` killed mid-way, run again: every row stored once, every
    journey touchpoint written once."""
    from bot.config import Settings
    from bot.journeys.plans import journey_rules, plan_delivery

    rows = 6_000
    now = datetime.now(UTC)
    path = cluster.tmp_path / "deliveries.csv"
    times = write_deliveries(path, rows, now)
    first = await cluster.start("import-1", "import", "deliveries", str(path))

    async def partly_stored() -> bool:
        return int(await scalar("SELECT COUNT(*) AS n FROM vehicle")) > 0

    await until(partly_stored, "the import to store its first rows", every=0.005,
                alive=[first])
    first.kill()
    await first.process.wait()
    at_kill = int(await scalar("SELECT COUNT(*) AS n FROM vehicle"))
    assert 0 < at_kill < rows, f"the kill landed after {at_kill} of {rows} rows"

    second = await cluster.start("import-2", "import", "deliveries", str(path))
    assert await asyncio.wait_for(second.process.wait(), DEADLINE) == 0, second.tail()
    rules = journey_rules(Settings(_env_file=None, timezone="UTC", quiet_hours="off"))
    planned = sum(len(plan_delivery(customer_id=1, vehicle_id=1, vin=_vin(i),
                                    delivered_at=at, rules=rules))
                  for i, at in enumerate(times))
    counts = (await sql(
        "SELECT (SELECT COUNT(*) FROM customer) AS customers, "
        "(SELECT COUNT(*) FROM vehicle) AS vehicles, "
        "(SELECT COUNT(*) FROM touchpoint) AS touchpoints, "
        "(SELECT COUNT(DISTINCT (customer_id, kind, occasion_key)) FROM touchpoint) AS keys"))[0]
    assert counts == {"customers": rows, "vehicles": rows, "touchpoints": planned,
                      "keys": planned}
    print(f"\nimport killed after {at_kill} of {rows} rows; the re-run stored the rest: "
          f"{second.output().strip().splitlines()[-1]}")


# --------------------------------------------------------------------------- campaigns


def _quiet_now() -> str:
    """Quiet hours (UTC) around now: launched rows wait instead of being sent."""
    hour = datetime.now(UTC).hour
    return f"{(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"


async def test_sigkill_during_campaign_launch_then_restart_completes(cluster: Cluster) -> None:
    """An instance killed while launching a campaign; two instances restart: one of them
    finishes the launch, every owner queued exactly once."""
    from bot.campaigns import policy, promotions
    from bot.config import Settings

    owners = 15_000
    await seed_owners(owners, consent=True)
    settings = Settings(_env_file=None, timezone="UTC", quiet_hours=_quiet_now())
    rules = policy.campaign_rules(settings)
    now = datetime.now(UTC)
    campaign = await promotions.create_campaign(
        name="scale-out", messages={"zh_CN": "{{ customer.name }}，秋季保养八折"}, now=now,
        dealer={"name": "星辰汽车", "phone": "020-88886666"})
    quiet = {"CAREBOT_QUIET_HOURS": settings.quiet_hours}
    first = await cluster.start("launch-1", **quiet)
    await promotions.schedule_campaign(campaign, send_at=now, now=now, rules=rules)

    async def launching() -> bool:
        return await scalar("SELECT status FROM campaign WHERE id = $1",
                            campaign.id) == "sending"

    await until(launching, "the launch to begin", every=0.005, alive=[first])
    first.kill()
    await first.process.wait()
    rows_at_kill = int(await scalar("SELECT COUNT(*) AS n FROM touchpoint"))
    interrupted = await scalar("SELECT launched_at IS NULL AS i FROM campaign WHERE id = $1",
                               campaign.id)

    a = await cluster.start("launch-2a", **quiet)
    b = await cluster.start("launch-2b", **quiet)

    async def launched() -> bool:
        return bool(await scalar("SELECT launched_at IS NOT NULL AS done FROM campaign "
                                 "WHERE id = $1", campaign.id)) and \
            sum(p.count("its launch was interrupted") for p in (a, b)) >= int(interrupted)

    await until(launched, "the launch to complete", alive=[a, b])
    result = (await sql(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT customer_id) AS owners FROM touchpoint "
        "WHERE kind = 'campaign' AND occasion_key = $1", policy.occasion_key(campaign.id)))[0]
    assert result == {"n": owners, "owners": owners}
    done = await promotions.get_campaign(campaign.id)
    assert done.status == "sending" and done.launch["queued"] == owners
    resumers = [p.name for p in (a, b) if p.count("its launch was interrupted")]
    assert len(resumers) == int(interrupted), resumers
    print(f"\nlaunch killed with {rows_at_kill} of {owners} rows written "
          f"({'before' if interrupted else 'after'} it was marked launched); "
          f"resumed by {resumers or 'nobody (not needed)'}")


# --------------------------------------------------------------------------- daily scan


async def test_two_instances_one_daily_scan(cluster: Cluster) -> None:
    """Two instances start at once: the occasions scan runs on one of them only."""
    owners = 20_000
    today = datetime.now(UTC).date()
    await seed_owners(owners, linked=False, birthday_md=f"G{today:%m%d}")
    # The scan time is in the past today, so both start-up scans are due.
    a = await cluster.start("scan-a", CAREBOT_SCAN_TIME="00:00")
    b = await cluster.start("scan-b", CAREBOT_SCAN_TIME="00:00")
    await cluster.running(a, b)
    scanned = r"bot\.journeys\.occasions: occasions scan "
    skipped = r"occasions scan skipped"

    async def both_decided() -> bool:
        return all(p.count(scanned) + p.count(skipped) >= 1 for p in (a, b))

    await until(both_decided, "both start-up scans", alive=[a, b])
    assert sorted(p.count(scanned) for p in (a, b)) == [0, 1], (a.tail(), b.tail())
    birthdays = await sql("SELECT COUNT(*) AS n, COUNT(DISTINCT customer_id) AS owners "
                          "FROM touchpoint WHERE kind = 'birthday'")
    assert birthdays == [{"n": owners, "owners": owners}]


# --------------------------------------------------------------------------- in process


async def test_locks_exclude_each_other_and_die_with_their_session(pg_url: str) -> None:
    """Two processes' Locks on one database: one holder at a time; a name is not granted
    twice in one process; a holder whose session ends loses its locks to the other."""
    one, two = locks.Locks(pg_url), locks.Locks(pg_url)
    try:
        assert await one.try_lock("test-job") and not await two.try_lock("test-job")
        assert not await one.try_lock("test-job"), "not twice in one process either"
        await one.unlock("test-job")
        async with two.singleton("test-job") as mine:
            assert mine and not await one.try_lock("test-job")
        assert await one.try_lock("test-job")
        await one.unlock("test-job")

        assert await one.keep(locks.DISPATCHER) and await one.keep(locks.DISPATCHER)
        assert not await two.keep(locks.DISPATCHER)
        import asyncpg

        holder = one._conn
        assert holder is not None
        admin = await asyncpg.connect(pg_url.replace("postgres://", "postgresql://", 1))
        try:  # the holder's session ends, as when its process is killed
            assert await admin.fetchval("SELECT pg_terminate_backend($1)",
                                        holder.get_server_pid())
        finally:
            await admin.close()

        async def taken_over() -> bool:
            return await two.keep(locks.DISPATCHER)

        await until(taken_over, "the standby to take the dispatcher lock")
        assert not await one.keep(locks.DISPATCHER), "the old holder knows it lost the lock"
        assert not one.holds(locks.DISPATCHER) and two.holds(locks.DISPATCHER)
    finally:
        await one.close()
        await two.close()


async def test_exclusive_waits_for_the_holder(pg_url: str) -> None:
    """``locks.exclusive`` (migrations at start-up): a second instance waits for the first
    to finish instead of doing the same work at the same time."""
    import asyncpg

    order: list[str] = []
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with locks.exclusive(pg_url, "test-exclusive"):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with locks.exclusive(pg_url, "test-exclusive"):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    admin = await asyncpg.connect(pg_url.replace("postgres://", "postgresql://", 1))
    try:
        async def second_waits() -> bool:
            return bool(await admin.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                "NOT granted AND classid::bigint = $1 AND objid::bigint = $2 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()))",
                locks.NAMESPACE, locks.lock_key("test-exclusive")))

        await until(second_waits, "the second instance to wait for the lock")
    finally:
        await admin.close()
    assert order == ["first in"]
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]


async def test_sqlite_locks_are_granted_once_per_process(tmp_path: Path) -> None:
    lk = locks.Locks(f"sqlite://{tmp_path}/x.sqlite3")
    assert not lk.enabled
    async with lk.singleton(locks.OCCASIONS_SCAN) as mine:
        assert mine
        async with lk.singleton(locks.OCCASIONS_SCAN) as again:
            assert not again
    assert await lk.keep(locks.DISPATCHER) and await lk.keep(locks.DISPATCHER)
    await lk.close()


async def test_an_interrupted_launch_is_finished_by_the_next_tick(env: Any) -> None:
    """The state a kill mid-launch leaves (claimed, some rows written, not marked launched)
    is finished by the next campaign tick: every owner once; later ticks change nothing."""
    from bot.campaigns import policy, promotions
    from bot.handlers.marketing import campaign_tick
    from db.models import Campaign, CampaignStatus, Customer, Touchpoint

    now = env.clock.now()
    svc = env.carebot.services
    await Customer.bulk_create([
        Customer(name=f"owner {i}", phone=f"+86139{i:08d}", link_token=f"t{i}",
                 telegram_user_id=FIRST_CHAT + i, telegram_chat_id=FIRST_CHAT + i,
                 marketing_consent=True) for i in range(30)])
    campaign = await promotions.create_campaign(
        name="resume", messages={"zh_CN": "秋季保养八折"}, now=now,
        dealer={"name": "星辰汽车", "phone": "020"})
    rules = policy.campaign_rules(svc.settings)
    await promotions.schedule_campaign(campaign, send_at=now, now=now, rules=rules)
    # what launch_due's claim and the first rows of launch() leave behind
    await Campaign.filter(id=campaign.id).update(status=CampaignStatus.SENDING)
    key = policy.occasion_key(campaign.id)
    first = await Customer.all().order_by("id").limit(10)
    await Touchpoint.bulk_create([
        Touchpoint(customer_id=c.id, kind=policy.KIND, occasion_key=key,
                   priority=policy.PRIORITY, due_at=now,
                   payload={"campaign_id": campaign.id}) for c in first])

    await campaign_tick(svc)
    resumed = await promotions.get_campaign(campaign.id)
    assert resumed.launched_at is not None and resumed.launch["queued"] == 30
    assert await Touchpoint.filter(occasion_key=key).count() == 30
    env.clock.advance(timedelta(minutes=1))
    await campaign_tick(svc)
    again = await promotions.get_campaign(campaign.id)
    assert again.launched_at == resumed.launched_at
    assert await Touchpoint.filter(occasion_key=key).count() == 30


async def test_the_daily_scan_runs_once_per_scheduled_time(env: Any) -> None:
    """A second scan since the latest scheduled time (another instance's, or a restart's)
    is skipped; the next scheduled time runs again."""
    from bot import touchpoints
    from db.models import Customer, ScanState, Touchpoint

    svc = env.carebot.services
    env.clock.set(datetime(2026, 11, 3, 1, 40, tzinfo=UTC))  # 09:40 in Asia/Shanghai
    await touchpoints.scan_now(svc)
    first = await ScanState.get(name=touchpoints.SCAN_RUN)
    await Customer.create(name="寿星", phone="+8613900000001", link_token="b1",
                          birthday=date(1990, 11, 3), birthday_md="G1103")
    env.clock.advance(timedelta(hours=2))
    await touchpoints.scan_now(svc)  # already scanned since 09:30 today: skipped
    assert (await ScanState.get(name=touchpoints.SCAN_RUN)).updated_at == first.updated_at
    assert await Touchpoint.filter(kind="birthday").count() == 0
    env.clock.set(datetime(2026, 11, 4, 1, 31, tzinfo=UTC))  # 09:31 the next day
    await touchpoints.scan_now(svc)
    assert (await ScanState.get(name=touchpoints.SCAN_RUN)).updated_at > first.updated_at
