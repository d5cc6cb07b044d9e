"""Typed settings, read once at start-up and passed down.

Everything comes from environment variables prefixed ``CAREBOT_`` or a ``.env`` file.
Handlers and domain code receive a :class:`Settings`; nothing reads the environment later.
"""

from __future__ import annotations

import re
from pathlib import Path
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API_URL = "https://api.telegram.org"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


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


class Settings(BaseSettings):
    """carebot's configuration. Field names map to ``CAREBOT_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="CAREBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: str = ""
    telegram_api_url: str = TELEGRAM_API_URL
    database_url: str = "sqlite://data/carebot.sqlite3"
    timezone: str = "Asia/Shanghai"
    dealer_name: str = "carebot demo dealership"
    dealer_phone: str = "400-000-0000"
    staff_chat_id: int | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=1, le=65535)
    api_key: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    quiet_hours: str = "21:00-09:00"
    scripts_dir: Path | None = None  # the dealership's own templates, overriding ours
    # Dispatcher tuning (Telegram's documented limits by default).
    send_rate: float = Field(30.0, gt=0, description="messages per second, all chats")
    per_chat_interval: float = Field(1.0, ge=0, description="seconds between two messages to one chat")
    dispatch_batch: int = Field(200, ge=1, le=10000)
    dispatch_concurrency: int = Field(16, ge=1, le=512)
    dispatch_interval: float = Field(2.0, gt=0, description="seconds between dispatcher ticks")
    max_attempts: int = Field(5, ge=1, le=50)
    lease_seconds: int = Field(300, ge=10)
    checkin_expiry_hours: float = Field(12.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}; use an IANA name like Asia/Shanghai") from exc
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _valid_quiet_hours(cls, v: str) -> str:
        parse_quiet_hours(v)
        return v

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("use sqlite://PATH or postgres://user@host:port/db")
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, v: str) -> str:
        if v and not _SECRET.match(v):
            raise ValueError("Telegram accepts 1-256 characters of A-Z a-z 0-9 _ -")
        return v

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "CAREBOT_WEBHOOK_URL is set but CAREBOT_WEBHOOK_SECRET is empty: every webhook "
                "must check its secret; set one, e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet(self) -> QuietHours | None:
        return parse_quiet_hours(self.quiet_hours)

    @property
    def has_token(self) -> bool:
        return bool(self.bot_token)


class ConfigError(Exception):
    """Start-up configuration is wrong; the message names each variable to fix."""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's errors into one message naming CAREBOT_ variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across several variables names them itself
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = "CAREBOT_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
