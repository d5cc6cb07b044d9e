"""Which instance does what: PostgreSQL session advisory locks for the singleton jobs.

Several ``carebot run`` processes may share one PostgreSQL database. A job that must run on
one of them at a time (the daily occasions scan, the ticket deadline check and relay,
campaign launches) tries a named lock first and skips its turn when another instance holds
it (:meth:`Locks.singleton`). The dispatcher keeps its lock for as long as the process can
(:meth:`Locks.keep`), so exactly one instance sends and the global Telegram rate holds; the
others stand by and take the lock on their next tick after the holder is gone.

The locks live on **one dedicated connection per process** (``asyncpg.connect``), not on a
connection borrowed from Tortoise's pool: a session lock belongs to the connection that
took it, so that connection must stay out of the pool for as long as the lock is held; a
pooled connection would also be silently replaced if it broke, taking the lock with it
unnoticed. The dedicated connection's ``application_name`` names the host and process
(``carebot <host>:<pid>``), so ``pg_locks`` joined with ``pg_stat_activity`` shows who holds
what. When a process dies (even SIGKILL), PostgreSQL ends its session and releases its
locks; TCP keepalives on the session bound how long a vanished host keeps them.

On SQLite (one process) every lock is granted; within one process a name is never granted
twice at once either way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
from tortoise.backends.base.config_generator import expand_db_url

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

# pg_locks.classid of every carebot lock ("care"); objid is the job's number below.
NAMESPACE = 0x63617265
DISPATCHER = "dispatcher"
OCCASIONS_SCAN = "occasions_scan"
TICKET_DEADLINES = "ticket_deadlines"
TICKET_RELAY = "ticket_relay"
CAMPAIGNS = "campaigns"
MIGRATIONS = "migrations"
FOLLOWUP_SCAN = "followup_scan"
JOBS: dict[str, int] = {DISPATCHER: 1, OCCASIONS_SCAN: 2, TICKET_DEADLINES: 3,
                        TICKET_RELAY: 4, CAMPAIGNS: 5, MIGRATIONS: 6, FOLLOWUP_SCAN: 7}
# One slot lock per running instance (objids clear of JOBS and of hashed names, >= 1000):
# how many are held is how many instances share Telegram's global rate.
INSTANCE_SLOTS = range(100, 164)
# What a lock statement may fail with: the connection is then dropped and its locks lost.
# (InternalClientError: asyncpg's protocol confused by a session the server just ended.)
_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
             asyncpg.InternalClientError)

# A host that vanishes (no FIN, no RST) keeps its session until TCP keepalive gives up;
# these bound that to about idle + interval * count seconds.
KEEPALIVE = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
             "tcp_keepalives_count": "3"}


def lock_key(name: str) -> int:
    """The lock's number within carebot's namespace: fixed for known jobs, else a hash."""
    return JOBS.get(name) or 1000 + zlib.crc32(name.encode()) % 1_000_000_000


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres://", "postgresql://", "asyncpg://"))


def _connect_kwargs(database_url: str) -> dict[str, Any]:
    """asyncpg.connect arguments from a Tortoise URL (its own query options left out)."""
    url = database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url[len("postgresql://"):]
    creds = expand_db_url(url)["credentials"]
    kwargs: dict[str, Any] = {k: creds[k] for k in ("host", "port", "user", "password",
                                                    "database") if creds.get(k) is not None}
    if "ssl" in creds:
        kwargs["ssl"] = creds["ssl"]
    return kwargs


class Locks:
    """This process's named locks: PostgreSQL session advisory locks, or always granted."""

    def __init__(self, database_url: str, *, timeout: float = 5.0) -> None:
        self.enabled = is_postgres(database_url)
        self._url = database_url
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None
        self._io = asyncio.Lock()  # one statement at a time on the connection
        self._instances = 1  # the last count of running instances (instances())
        self._held: set[str] = set()
        self.name = f"carebot {socket.gethostname()}:{os.getpid()}"[:63]

    def holds(self, name: str) -> bool:
        return name in self._held

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._held.clear()  # a new session holds nothing
            self._conn = await asyncpg.connect(
                **_connect_kwargs(self._url), timeout=self._timeout,
                command_timeout=self._timeout,
                server_settings={"application_name": self.name, **KEEPALIVE},
            )
        return self._conn

    async def _drop_connection(self, why: BaseException) -> None:
        """The lock connection failed: whatever it held is lost (PostgreSQL ends the session
        when it notices; closing it here makes sure it does)."""
        if self._held:
            log.warning("lock connection failed (%r): no longer holding %s", why,
                        ", ".join(sorted(self._held)))
        else:
            log.warning("lock connection failed: %r", why)
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _query(self, sql: str, *args: Any) -> Any:
        async with self._io:
            conn = await self._connection()
            return await conn.fetchval(sql, *args)

    async def try_lock(self, name: str) -> bool:
        """Take ``name`` if nobody (this process included) holds it; never raises."""
        if name in self._held:
            return False
        if not self.enabled:
            self._held.add(name)
            return True
        try:
            got = bool(await self._query("SELECT pg_try_advisory_lock($1, $2)",
                                         NAMESPACE, lock_key(name)))
        except _FAILURES as exc:
            await self._drop_connection(exc)
            return False
        if got:
            self._held.add(name)
        return got

    async def unlock(self, name: str) -> None:
        if name not in self._held:
            return
        self._held.discard(name)
        if not self.enabled or self._conn is None or self._conn.is_closed():
            return
        try:
            await self._query("SELECT pg_advisory_unlock($1, $2)", NAMESPACE, lock_key(name))
        except _FAILURES as exc:
            await self._drop_connection(exc)

    async def _still_held(self, name: str) -> bool:
        try:
            return bool(await self._query(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                "pid = pg_backend_pid() AND classid = $1 AND objid = $2 AND objsubid = 2 "
                "AND granted)", NAMESPACE, lock_key(name)))
        except _FAILURES as exc:
            await self._drop_connection(exc)
            return False

    async def instances(self) -> int:
        """How many carebot instances share this database now (1 on SQLite): each holds one
        slot lock while it lives, taken here on first use. Telegram's global rate is theirs
        to share. On a failed query, the last count (never a higher rate by mistake)."""
        if not self.enabled:
            return 1
        try:
            if not any(name.startswith("instance-slot-") for name in self._held):
                for objid in INSTANCE_SLOTS:
                    if await self._query("SELECT pg_try_advisory_lock($1, $2)",
                                         NAMESPACE, objid):
                        self._held.add(f"instance-slot-{objid}")
                        break
        except _FAILURES as exc:
            await self._drop_connection(exc)
            return self._instances
        live = await self.live_slots()
        if live is None:
            return self._instances
        self._instances = max(1, len(live))
        return self._instances

    @property
    def slot(self) -> int:
        """This instance's slot (0 until :meth:`instances` took one, and on SQLite)."""
        held = [n for n in self._held if n.startswith("instance-slot-")]
        return int(held[0].rsplit("-", 1)[1]) if held else 0

    async def live_slots(self) -> set[int] | None:
        """The slots of the instances alive now (their sessions hold them); None when that
        cannot be known (SQLite: one process; or the query failed)."""
        if not self.enabled:
            return None
        try:
            rows = await self._query(
                "SELECT array_agg(objid::int) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = $1 AND objid >= $2 AND objid < $3 AND objsubid = 2 AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                NAMESPACE, INSTANCE_SLOTS.start, INSTANCE_SLOTS.stop)
        except _FAILURES as exc:
            await self._drop_connection(exc)
            return None
        return set(rows or [])

    async def keep(self, name: str) -> bool:
        """Hold ``name`` from now on: confirm it if this process has it, else try to take it.

        For a role one instance plays for as long as it lives (the dispatcher). Each call
        checks the session is still there, so a process whose lock connection broke stops
        at its next call, while another instance takes over."""
        if not self.enabled:
            self._held.add(name)
            return True
        if name in self._held:
            if await self._still_held(name):
                return True
            self._held.discard(name)
            log.warning("lost the %s lock; trying to take it again", name)
        if await self.try_lock(name):
            log.info("%s lock taken: this instance (%s) does it now", name, self.name)
            return True
        return False

    @asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """``async with locks.singleton("occasions_scan") as mine: if mine: ...``: true when
        this process got the lock (released on exit), false when someone else has it."""
        got = await self.try_lock(name)
        try:
            yield got
        finally:
            if got:
                await self.unlock(name)

    async def close(self) -> None:
        """Release everything (closing the session does) and close the connection."""
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), self._timeout)
            except _FAILURES:
                conn.terminate()


def locks_of(services: Services) -> Locks:
    """The process's Locks from the services (``create_app`` puts one there); a Services
    built some other way gets its own, on its settings' database."""
    if services.locks is None:
        services.locks = Locks(services.settings.database_url)
    return services.locks


@asynccontextmanager
async def exclusive(database_url: str, name: str, *, wait: float = 600.0) -> AsyncIterator[None]:
    """Wait (up to ``wait`` seconds) for ``name`` and hold it for the block, on a connection
    of its own; for one-off work every instance does at start-up, such as migrations (two
    instances started together after an upgrade must not both apply one). SQLite: no-op."""
    if not is_postgres(database_url):
        yield
        return
    conn = await asyncpg.connect(**_connect_kwargs(database_url), timeout=10,
                                 server_settings={"application_name": f"carebot {name}"})
    try:
        await conn.execute("SELECT pg_advisory_lock($1, $2)", NAMESPACE, lock_key(name),
                           timeout=wait)
        yield
    finally:
        await conn.close()  # ends the session: the lock goes with it
