"""The inbox: every Telegram update is committed before Telegram is told it arrived.

The webhook answers 200 only once the update is on disk; polling confirms an offset only once
the batch is stored. Workers then handle stored updates: one chat's updates strictly in
arrival order (only the oldest unhandled update of a chat is ever claimed), different chats
at once, across every instance (a claim is a row lock on PostgreSQL, ``SKIP LOCKED``, and a
lease). A handler that raises is tried again after 1 s, 5 s and 30 s, then the update is
*parked*: kept with its error, counted in ``/metrics``, listed by ``carebot inbox`` and the
console's Today page, and tried again when a person says so. A process killed mid-update
leaves it ``handling`` until an instance sees that the claiming instance's slot lock is
gone (PostgreSQL: within seconds; SQLite, one process: at its next start) or its lease runs
out, and it is handled again: at most the updates in flight are handled twice, and the
common handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Min
from tortoise.transactions import in_transaction

from bot.clock import Clock
from bot.locks import Locks
from db.models import InboxStatus, InboxUpdate
from db.sqlite import inline_statements, settle_default

log = logging.getLogger(__name__)

RETRY_AFTER = (timedelta(seconds=1), timedelta(seconds=5), timedelta(seconds=30))
LEASE = timedelta(seconds=120)  # a handler waits at most ~30 s for Telegram, then gives up
RENEW_EVERY = LEASE.total_seconds() / 4  # seconds between renewals of the leases in hand
KEEP_DONE = timedelta(days=2)  # handled updates are kept this long (the message log keeps all)
PURGE_EVERY = 600.0  # seconds between purges of old handled updates
RECLAIM_EVERY = 10.0  # seconds between looks for updates whose worker died
STOP_GRACE = 35.0  # seconds a stop lets updates in hand finish (a reply retries for 30 s)


@dataclass
class _Attempt:
    error: BaseException | None = None


_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("carebot_inbox_attempt", default=None)

ParkedAlert = Callable[[InboxUpdate], Awaitable[None]]


def chat_key(data: dict[str, Any]) -> int:
    """The chat whose order an update keeps: its chat, else its sender (0: none)."""
    for key, value in data.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        chat = value.get("chat") or (value.get("message") or {}).get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
        sender = value.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return 0


def kind_of(data: dict[str, Any]) -> str:
    return next((k for k in data if k != "update_id"), "")[:32]


STORE_COLUMNS = ("update_id", "chat_key", "kind", "payload", "status", "attempts",
                 "next_try_at", "claimed_by", "last_error", "received_at")


async def store(updates: list[dict[str, Any]], now: datetime) -> int:
    """Commit updates (a repeat of a stored ``update_id`` is ignored); how many were given.

    One INSERT written out (the statement every update starts with: built by the ORM it
    cost more CPU than the rest of the inbox's work per update, docs/benchmarks.md)."""
    params: list[Any] = []
    for u in updates:
        if isinstance(u.get("update_id"), int):
            params += [int(u["update_id"]), chat_key(u), kind_of(u),
                       json.dumps(u, ensure_ascii=False, separators=(",", ":")),
                       InboxStatus.PENDING.value, 0, now, 0, "", now]
    if not params:
        return 0
    client = InboxUpdate._meta.db
    width = len(STORE_COLUMNS)
    rows = [f"({', '.join(_marks(client, r * width, width))})"
            for r in range(len(params) // width)]
    with inline_statements():
        await client.execute_query(
            f"INSERT INTO inbox_update ({', '.join(STORE_COLUMNS)}) VALUES {', '.join(rows)} "
            f"ON CONFLICT (update_id) DO NOTHING", params)
    await settle_default()  # on disk (group commit) before Telegram hears "got it"
    return len(params) // width


def _marks(client: Any, start: int, count: int) -> list[str]:
    """Parameter placeholders in the database's style: ``$1``... (PostgreSQL) or ``?``."""
    if client.capabilities.dialect == "postgres":
        return [f"${n}" for n in range(start + 1, start + count + 1)]
    return ["?"] * count


async def mark_done(row: InboxUpdate, now: datetime) -> None:
    """The one statement every update ends with, written out: the ORM's query building cost
    as much CPU as the rest of the inbox's work per update (docs/benchmarks.md, webhook)."""
    client = InboxUpdate._meta.db
    m = _marks(client, 0, 5)
    await client.execute_query(
        f"UPDATE inbox_update SET status = {m[0]}, handled_at = {m[1]}, lease_until = NULL"
        f" WHERE id = {m[2]} AND status = {m[3]} AND attempts = {m[4]}",
        [InboxStatus.DONE.value, now, row.id, InboxStatus.HANDLING.value, row.attempts])


async def claim(now: datetime, *, limit: int, slot: int = 0) -> list[InboxUpdate]:
    """Take up to ``limit`` updates that may be handled now: each the first unhandled one of
    its chat (by Telegram's ``update_id``), due, and not taken by another worker."""
    if limit <= 0:
        return []
    firsts = Subquery(InboxUpdate.filter(status__in=(InboxStatus.PENDING, InboxStatus.HANDLING))
                      .group_by("chat_key").annotate(first=Min("update_id")).values("first"))
    async with in_transaction():
        rows = await (InboxUpdate.filter(update_id__in=firsts, status=InboxStatus.PENDING,
                                         next_try_at__lte=now)
                      .order_by("update_id").limit(limit).select_for_update(skip_locked=True))
        if not rows:
            return []
        await InboxUpdate.filter(id__in=[row.id for row in rows]).update(
            status=InboxStatus.HANDLING, lease_until=now + LEASE, attempts=F("attempts") + 1,
            claimed_by=slot)
    for row in rows:  # ``attempts`` is this claim's token: a stale worker records nothing
        row.status, row.attempts = InboxStatus.HANDLING, row.attempts + 1
    return rows


async def reclaim(now: datetime, *, everything: bool = False,
                  live: set[int] | None = None, starting_slot: int = 0) -> int:
    """Updates whose worker died go back to the queue: their lease ran out, or the instance
    that claimed them is gone (``live``: the slots of the instances alive, on PostgreSQL;
    ``starting_slot``: this instance's slot as it starts, which a dead one may have held),
    or (``everything``: one process, at start) all of them."""
    query = InboxUpdate.filter(status=InboxStatus.HANDLING)
    if live is not None:
        gone = Q(claimed_by__gt=0) & ~Q(claimed_by__in=sorted(live) or [-1])
        if starting_slot:
            gone |= Q(claimed_by=starting_slot)
        query = query.filter(Q(lease_until__lt=now) | gone)
    elif not everything:
        query = query.filter(lease_until__lt=now)
    return await query.update(status=InboxStatus.PENDING, lease_until=None,
                              last_error="its worker stopped (restart?)")


async def retry_parked(ids: list[int] | None) -> int:
    """A person says: try these parked updates again (all of them when ``ids`` is None), at
    once (due since they arrived, whatever clock the running instances read)."""
    query = InboxUpdate.filter(status=InboxStatus.PARKED)
    if ids is not None:
        query = query.filter(id__in=ids)
    return await query.update(status=InboxStatus.PENDING, attempts=0,
                              next_try_at=F("received_at"), handled_at=None)


@dataclass
class InboxStats:
    depth: int
    oldest_seconds: float
    parked: int


async def stats(now: datetime) -> InboxStats:
    waiting = InboxUpdate.filter(status__in=(InboxStatus.PENDING, InboxStatus.HANDLING))
    depth = await waiting.count()
    oldest = await waiting.order_by("id").limit(1).values_list("received_at", flat=True)
    first = oldest[0] if oldest else None
    age = (now - first).total_seconds() if isinstance(first, datetime) else 0.0
    parked = await InboxUpdate.filter(status=InboxStatus.PARKED).count()
    return InboxStats(depth, max(0.0, age), parked)


class Inbox:
    """Handles stored updates with PTB's handlers; see the module's docstring."""

    def __init__(self, application: Application, clock: Clock, *,  # type: ignore[type-arg]
                 concurrency: int, on_parked: ParkedAlert | None = None,
                 locks: Locks | None = None) -> None:
        self.application = application
        self.clock = clock
        self.locks = locks  # PostgreSQL: which instance claimed what, and who is alive
        self.concurrency = concurrency
        self._batch = max(1, concurrency // 4)  # places freed before claiming again when busy
        self.on_parked = on_parked
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._held: dict[int, int] = {}  # the rows being handled: id -> their claim token
        self._task: asyncio.Task[None] | None = None
        application.add_error_handler(note_failure)  # first: a failing handler is ours
        self.handled = 0
        self.failures = 0
        self._draining = 0

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_progress(self) -> int:
        return len(self._running) + self._draining


    async def drain(self) -> int:
        """Handle every update that may be handled now, to completion (tests, the sandbox)."""
        total = 0
        while rows := await claim(self.clock.now(), limit=self.concurrency, slot=self._slot):
            self._draining = len(rows)
            try:
                await asyncio.gather(*(self.handle(row) for row in rows))
            finally:
                self._draining = 0
            total += len(rows)
        return total

    def start(self, *, single_process: bool) -> None:
        self._task = asyncio.create_task(self._run(single_process))

    async def stop(self, *, grace: float = STOP_GRACE) -> None:
        """Stop claiming; let the updates in hand finish for up to ``grace`` seconds (what is
        cut short stays stored and is handled again: a stop loses nothing)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # the worker had died: say so, and stop all the same
                log.exception("the inbox worker had stopped with an error")
            self._task = None
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopping: %d update(s) cut short, handled again at the next "
                            "start", len(late))
                await asyncio.wait(late)

    async def _run(self, single_process: bool) -> None:
        loop = asyncio.get_running_loop()
        purged_at = reclaimed_at = leased_at = loop.time()
        started = False
        while True:
            try:
                if not started:
                    await self._reclaim(everything=single_process, starting=True)
                    started = True
                free = self.concurrency - len(self._running)
                self._wake.clear()  # a wake from here on is seen below
                if self._running and free < self._batch:
                    # busy: one claim for several freed places, not one claim each
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=0.02)
                    continue
                rows = await claim(self.clock.now(), limit=free, slot=self._slot)
                for row in rows:
                    task = asyncio.create_task(self.handle(row))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if rows and len(rows) == free:
                    with contextlib.suppress(TimeoutError):  # a slot frees
                        await asyncio.wait_for(self._wake.wait(), timeout=RENEW_EVERY)
                elif not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                if loop.time() - leased_at > RENEW_EVERY:
                    leased_at = loop.time()
                    await self._keep_leases()
                if loop.time() - reclaimed_at > RECLAIM_EVERY:
                    reclaimed_at = loop.time()
                    await self._reclaim()
                if loop.time() - purged_at > PURGE_EVERY:
                    purged_at = loop.time()
                    await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away: try again, never stop handling
                log.exception("inbox worker: claim failed; trying again in 1 s")
                await asyncio.sleep(1.0)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    @property
    def _slot(self) -> int:
        return self.locks.slot if self.locks is not None else 0

    async def _reclaim(self, *, everything: bool = False, starting: bool = False) -> int:
        live = await self.locks.live_slots() if self.locks is not None else None
        return await reclaim(self.clock.now(), everything=everything, live=live,
                             starting_slot=self._slot if starting else 0)

    async def _housekeeping(self) -> None:
        now = self.clock.now()
        await InboxUpdate.filter(status=InboxStatus.DONE,
                                 handled_at__lt=now - KEEP_DONE).delete()

    async def handle(self, row: InboxUpdate) -> None:
        """Run PTB's handlers on one stored update and record how it went."""
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        self._held[row.id] = row.attempts  # its lease is kept by the worker's loop
        try:
            update = Update.de_json(row.payload, self.application.bot)
            with inline_statements():
                await self.application.process_update(update)
        except Exception as exc:  # a bad payload, or PTB itself: the same as a handler
            attempt.error = exc
        finally:
            _ATTEMPT.reset(token)
            self._held.pop(row.id, None)
        try:
            await self._record(row, attempt.error)
        except Exception:  # the lease brings it back
            log.exception("inbox: could not record the outcome of update %s", row.update_id)

    async def _keep_leases(self) -> None:
        """While handlers run (a reply may wait for Telegram), their claims stay this
        worker's: one UPDATE for all of them every quarter of a lease (a task per update
        would cost every update a timer)."""
        for row_id, attempts in list(self._held.items()):
            await InboxUpdate.filter(id=row_id, status=InboxStatus.HANDLING,
                                     attempts=attempts).update(
                lease_until=self.clock.now() + LEASE)

    @staticmethod
    def _mine(row: InboxUpdate) -> Any:
        """The row, if this worker's claim still holds it (``attempts`` is the claim)."""
        return InboxUpdate.filter(id=row.id, status=InboxStatus.HANDLING, attempts=row.attempts)

    async def _record(self, row: InboxUpdate, error: BaseException | None) -> None:
        now = self.clock.now()
        with inline_statements():
            if error is None:
                self.handled += 1
                await mark_done(row, now)
                return
            self.failures += 1
            why = f"{type(error).__name__}: {error}"[:2000]
            if row.attempts <= len(RETRY_AFTER):
                log.warning("inbox: update %s failed (attempt %d), trying again: %s",
                            row.update_id, row.attempts, type(error).__name__)
                await self._mine(row).update(
                    status=InboxStatus.PENDING, lease_until=None, last_error=why,
                    next_try_at=now + RETRY_AFTER[row.attempts - 1])
                return
            log.error("inbox: update %s parked after %d attempts: %s", row.update_id,
                      row.attempts, type(error).__name__)
            if not await self._mine(row).update(
                    status=InboxStatus.PARKED, lease_until=None, last_error=why, handled_at=now):
                return  # another worker has it now
        row.last_error = why
        if self.on_parked is not None:
            await self.on_parked(row)


async def note_failure(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's first error handler: a handler of a stored update failed. The inbox tries it
    again (or parks it and tells staff), so no other error handler reports it now."""
    attempt = _ATTEMPT.get()
    if attempt is None:
        return  # not an inbox update: the other error handlers report it
    attempt.error = context.error
    raise ApplicationHandlerStop
