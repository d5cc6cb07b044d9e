"""Console sign-in (issue 15): guessing costs the guesser, tells nothing, stalls nothing.

* Every attempt is written down (an audit row) *before* its password is checked, and the
  rows are counted in the database: parallel guesses cannot outrun the lock, and at most
  ``CAREBOT_CONSOLE_LOCK_FAILURES`` passwords are checked per login per lock window
  (``CAREBOT_CONSOLE_LOCK_MINUTES``), on every instance together.
* Unknown logins are counted and answered exactly like real ones: the same rows, a check
  against a dummy hash (the same time), the same messages, the same lock.
* A client address with ``CAREBOT_CONSOLE_ADDRESS_FAILURES`` failures in
  ``CAREBOT_CONSOLE_ADDRESS_MINUTES`` waits (counted per instance, in memory).
* A typed login is stored and logged only as a keyed hash (it may be a password typed in the
  wrong field); a typed password never.
* An admin lifts a lock with ``carebot staff unlock LOGIN`` or the staff page (:func:`unlock`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web
from aiohttp_session import new_session
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot import passwords
from bot.config import Settings, parse_networks
from bot.web.console import STAFF, _password_mark, _safe_next, console_of, render
from db.models import AuditLog, Staff

log = logging.getLogger(__name__)

# Audit actions of a failed sign-in attempt: written as TRIED before the check (a success
# deletes its row); REFUSED when the login was locked (not checked, still counted, so a
# burst of guesses keeps it locked for the window after it); CLEARED once a success or an
# admin's unlock starts the count afresh (kept: the audit log shows the guessing).
TRIED = "signin.failed"
REFUSED = "signin.locked"
CLEARED = "signin.cleared"
COUNTED = (TRIED, REFUSED)
MAX_LOGIN = 200  # characters of a typed login looked at (logins are at most 50)
MAX_PASSWORD = 4096
MAX_ADDRESSES = 50_000  # addresses the throttle remembers (the oldest are forgotten)
Network = IPv4Network | IPv6Network


def signin_key(settings: Settings) -> bytes:
    """The key logins are hashed with: from the session secret (the same on every instance
    and for ``carebot staff unlock``), so a typed name is never stored in clear."""
    return hashlib.sha256(b"carebot sign-in\0" + settings.session_secret.encode()).digest()


def login_tag(key: bytes, login: str) -> str:
    return hmac.new(key, login.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


class AddressThrottle:
    """Failed sign-ins per client address in this process, in a sliding window: an address
    with ``limit`` failures waits until the oldest leaves the window. Bounded memory."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, address: str, now: datetime) -> float:
        """Seconds this address must still wait (0: it may try)."""
        times = self._failures.get(address)
        if not times or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - now.timestamp())

    def failed(self, address: str, now: datetime) -> None:
        times = self._failures.pop(address, None) or deque(maxlen=self.limit)
        start = now.timestamp() - self.window
        while times and times[0] <= start:
            times.popleft()
        times.append(now.timestamp())
        self._failures[address] = times  # now the most recent
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy (nginx on this
    host), the last address in X-Forwarded-For that is not one of the trusted proxies."""
    peer = request.remote or ""
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", [])
            for h in v.split(",")]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer
    return peer


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@dataclass
class SignInGuard:
    """What the sign-in keeps between requests: the hashing key, the lock rule, the throttle."""

    key: bytes
    limit: int
    window: timedelta
    throttle: AddressThrottle
    trusted: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInGuard:
        return cls(signin_key(settings), settings.console_lock_failures,
                   timedelta(minutes=settings.console_lock_minutes),
                   AddressThrottle(settings.console_address_failures,
                                   timedelta(minutes=settings.console_address_minutes)),
                   parse_networks(settings.trusted_proxies))

    def target(self, login: str) -> str:
        return f"signin:{login_tag(self.key, login)}"


@dataclass
class Attempt:
    """One attempt, written down: its row, the failures it sees in the window (itself
    included, at most limit + 1), and when the lock they make ends."""

    row_id: int
    failures: int
    until: datetime


async def count_attempt(guard: SignInGuard, target: str, now: datetime) -> Attempt:
    """Write the attempt down, then count the attempts in the window: of k attempts racing,
    the i-th to count sees at least i rows, so at most ``limit`` of them ever see ``limit``
    or fewer (and may have their password checked)."""
    row = await AuditLog.create(action=TRIED, target=target, detail={}, created_at=now)
    seen = await AuditLog.filter(target=target, action__in=COUNTED,
                                 created_at__gt=now - guard.window) \
        .order_by("-id").limit(guard.limit + 1).values_list("id", "created_at")
    others = [at for row_id, at in seen if row_id != row.id]
    until = (others[guard.limit - 1] if len(others) >= guard.limit else now) + guard.window
    return Attempt(row.id, len(seen), until)


async def clear_attempts(target: str) -> None:
    """The count starts afresh (a success, an unlock); the rows stay for the audit log."""
    await AuditLog.filter(target=target, action__in=COUNTED).update(action=CLEARED)


async def unlock(settings: Settings, login: str, now: datetime) -> int:
    """Lift a login's sign-in lock (staff page, ``carebot staff unlock``): attempts count
    afresh from now. Returns how many staff accounts have that login."""
    n = await Staff.filter(login=login).update(failed_logins=0, locked_until=None)
    if n:
        await clear_attempts(f"signin:{login_tag(signin_key(settings), login)}")
    return n


def guard_of(request: web.Request) -> SignInGuard:
    console = console_of(request)
    guard = console.state.get(__name__)
    if not isinstance(guard, SignInGuard):
        guard = console.state[__name__] = SignInGuard.from_settings(console.services.settings)
    return guard


# --------------------------------------------------------------------------- views


async def login_form(request: web.Request) -> web.StreamResponse:
    if request.get(STAFF) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next", "/")))
    return await render(request, "login.html", error_key="", login="",
                        next=_safe_next(request.query.get("next", "/")), minutes=0)


async def login_submit(request: web.Request) -> web.StreamResponse:
    """Throttle by address, count the attempt, then (unless locked) check the password."""
    console = console_of(request)
    guard = guard_of(request)
    form = await request.post()
    login = str(form.get("login", "")).strip()[:MAX_LOGIN]
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    target = _safe_next(str(form.get("next", "/")))
    now = console.services.clock.now()

    async def again(error_key: str, minutes: int = 0, status: int = 401) -> web.Response:
        return await render(request, "login.html", status=status, error_key=error_key,
                            login=login, next=target, minutes=minutes)

    address = client_address(request, guard.trusted)
    wait = guard.throttle.wait(address, now)
    if wait > 0:
        log.warning("console sign-in: address #%s waits %d s after %d failures",
                    login_tag(guard.key, address)[:8], wait, guard.throttle.limit)
        return await again("login.throttled", math.ceil(wait / 60), status=429)
    tag = login_tag(guard.key, login)
    staff = await Staff.get_or_none(login=login, active=True) if login else None
    attempt = await count_attempt(guard, f"signin:{tag}", now)
    if attempt.failures > guard.limit:
        await AuditLog.filter(id=attempt.row_id).update(action=REFUSED)
        await Staff.filter(login=login).update(locked_until=attempt.until)  # for /staff
        guard.throttle.failed(address, now)
        log.info("console sign-in refused, locked: login #%s", tag[:8])
        return await again("login.locked", _minutes(attempt.until - now))
    hashed = staff.password_hash if staff is not None and staff.password_hash else None
    # An unknown login is checked against a dummy hash: the time of a real check.
    right = await _verify(console.hasher, hashed or passwords.dummy_hash(), password)
    if staff is None or hashed is None or not right:
        guard.throttle.failed(address, now)
        if attempt.failures >= guard.limit:  # this failure completes the lock
            await Staff.filter(login=login).update(locked_until=now + guard.window)
            log.warning("console sign-in locked for login #%s after %d failures", tag[:8],
                        guard.limit)
            return await again("login.locked", _minutes(guard.window))
        log.info("console sign-in refused: wrong password or unknown login #%s", tag[:8])
        return await again("login.wrong")
    await AuditLog.filter(id=attempt.row_id).delete()  # not a failure
    await clear_attempts(f"signin:{tag}")
    return await _signed_in(request, staff, password, now, target)


def _minutes(left: timedelta) -> int:
    return max(1, math.ceil(left.total_seconds() / 60))


async def _signed_in(request: web.Request, staff: Staff, password: str, now: datetime,
                     target: str) -> web.StreamResponse:
    """The right password: a fresh session (no fixation), the lock lifted."""
    hasher = console_of(request).hasher
    if staff.password_hash and hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = await asyncio.to_thread(hasher.hash, password)
    staff.failed_logins = 0
    staff.locked_until = None
    staff.last_login_at = now
    await staff.save(update_fields=["failed_logins", "locked_until", "last_login_at",
                                    "password_hash"])
    session = await new_session(request)
    session["staff_id"] = staff.id
    session["auth_at"] = now.timestamp()
    session["pw"] = _password_mark(staff)
    session["epoch"] = staff.session_epoch
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("staff %s (%s) signed in to the console", staff.id, staff.role)
    raise web.HTTPSeeOther(target)


async def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    """argon2 takes tens of milliseconds of CPU on purpose: off the event loop, so a flood
    of sign-ins cannot stall the bot, the dispatcher or the webhook."""
    def check() -> bool:
        try:
            return hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
