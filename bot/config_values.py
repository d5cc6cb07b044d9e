"""The values behind Settings' fields that are more than a type: quiet hours, networks,
host names, and how a setting may be shown (secrets hidden, database passwords masked)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_network
from urllib.parse import urlsplit, urlunsplit

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
#: Settings whose values are never shown: not in an error, a report or a log.
SECRETS = frozenset({"bot_token", "api_key", "webhook_secret", "metrics_token",
                     "session_secret"})


@dataclass(frozen=True)
class QuietHours:
    """A daily local window in which scheduled messages are held back."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: str) -> QuietHours | None:
    """``"21:00-09:00"`` -> QuietHours; ``""`` or ``"off"`` -> None."""
    value = value.strip()
    if value.lower() in ("", "off", "none"):
        return None
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError("use HH:MM-HH:MM, for example 21:00-09:00, or 'off'")
    bounds = []
    for part in parts:
        m = _HHMM.match(part.strip())
        if not m:
            raise ValueError(f"{part.strip()!r} is not a time of day; use HH:MM-HH:MM")
        bounds.append(time(int(m.group(1)), int(m.group(2))))
    if bounds[0] == bounds[1]:
        raise ValueError("start and end are the same; use 'off' for no quiet hours")
    return QuietHours(bounds[0], bounds[1])


def parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; a bad entry names itself."""
    out: list[IPv4Network | IPv6Network] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            out.append(ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or network (10.0.0.0/8)") from None
    return tuple(out)


def mask_url(url: str) -> str:
    """``postgres://carebot:s3cret@db/carebot`` -> ``postgres://carebot:***@db/carebot``:
    what carebot prints or logs of a database URL (the password never)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a database URL that cannot be parsed>"
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def shown(field: str, value: object) -> str:
    """A setting's value as carebot may print it: secrets hidden, passwords masked."""
    if field in SECRETS:
        return f"<hidden, {len(str(value))} characters>" if value else "<empty>"
    if field == "database_url":
        return repr(mask_url(str(value)))
    return repr(value)


def valid_host(value: str) -> bool:
    """An IP address or a DNS host name (what a listening socket can be bound to)."""
    try:
        ip_network(value)
        return "/" not in value
    except ValueError:
        pass
    name = value.removesuffix(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(p) for p in name.split("."))
