"""Typed settings, read once at start-up and passed down.

Everything comes from environment variables prefixed ``CAREBOT_`` or an environment file
(``.env``, or ``carebot --env-file PATH``) read exactly as systemd's ``EnvironmentFile=``
reads it (bot/envfile.py), so the service and a command run by hand agree. A value that
looks like it swallowed a comment, blanks or the next lines is refused, naming the setting.
Handlers and domain code receive a :class:`Settings`; nothing reads the environment later.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from bot import envfile
from bot.booking_calendar import parse_capacity, parse_closed_days, parse_slots
from bot.config_values import (
    QuietHours,
    mask_url,
    parse_networks,
    parse_quiet_hours,
    shown,
    valid_host,
)
from bot.journeys.mileage import parse_intervals
from bot.journeys.timing import parse_day_list, parse_hhmm, parse_holidays, parse_weekdays
from bot.kpi_targets import parse_targets
from bot.startup import StartupError
from bot.terminal_words import t

# The settings, and the values behind their fields that callers reach here (bot.config_values).
__all__ = ["DEFAULT_WEBHOOK_PATH", "TELEGRAM_API_URL", "ConfigError", "QuietHours", "Settings",
           "config_problems", "load_settings", "mask_url", "parse_networks", "parse_quiet_hours"]

TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class SystemdEnvFile(DotEnvSettingsSource):
    """pydantic-settings' env-file source, reading files the way systemd does (envfile)."""

    def _read_env_file(self, file_path: Path) -> Any:
        return parse_env_vars(envfile.read(file_path).values, self.case_sensitive,
                              self.env_ignore_empty, self.env_parse_none_str)


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
    web_host: str = "127.0.0.1"  # an IP address or a host name, nothing else
    web_port: int = Field(8080, ge=1, le=65535)
    api_key: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    metrics_token: str = ""  # when set, /metrics wants "Authorization: Bearer <token>"
    update_concurrency: int = Field(
        64, ge=1, le=4096, description="Telegram updates handled at once (1 = one by one)")
    quiet_hours: str = "21:00-09:00"
    exchange_gap_hours: float = Field(
        12.0, gt=0, description="hours without a message to the owner after which the next "
        "script greets and introduces itself again (a new exchange)")
    scripts_dir: Path | None = None  # the dealership's own templates, overriding ours
    # The sandbox's Telegram emulator listens here (0: any free port).
    sandbox_telegram_port: int = Field(8081, ge=0, le=65535)
    # Dispatcher tuning (Telegram's documented limits by default).
    send_rate: float = Field(30.0, gt=0, description="messages per second, all chats")
    per_chat_interval: float = Field(
        1.0, ge=0, description="seconds between two messages to one chat"
    )
    per_chat_burst: int = Field(3, ge=1, le=20, description="messages to one chat at once, "
                                "then one per interval")
    group_per_minute: int = Field(20, ge=1, le=600, description="messages per minute to a group")
    reply_deadline: float = Field(30.0, gt=0, description="seconds a reply or a staff post is "
                                  "retried before it is recorded as failed")
    dispatch_batch: int = Field(200, ge=1, le=10000)
    dispatch_concurrency: int = Field(16, ge=1, le=512)
    dispatch_interval: float = Field(2.0, gt=0, description="seconds between dispatcher ticks")
    max_attempts: int = Field(5, ge=1, le=50)
    lease_seconds: int = Field(300, ge=10)
    checkin_expiry_hours: float = Field(12.0, gt=0)
    # Satisfaction surveys (issue 4): answer window, low-score threshold, re-asks, review link.
    survey_questionnaires: bool = Field(
        True, description="ask each follow-up's questionnaire question by question")
    survey_open_days: float = Field(7.0, gt=0, description="a survey accepts answers this long")
    survey_low_threshold: int = Field(6, ge=1, le=10, description="at or below: complaint")
    survey_change_hours: float = Field(24.0, ge=0, description="an answer may change this long")
    survey_max_reasks: int = Field(2, ge=0, le=10, description="re-asks after a non-score")
    survey_handover_minutes: float = Field(
        30.0, gt=0, description="a low score goes to complaints at the latest after this"
    )
    review_url: str = ""  # optional public review page offered after a 9 or 10
    # Complaint tickets (issue 5): the 211 deadlines, counted on a business-hours calendar.
    ticket_business_hours: str = "08:30-18:00"  # local HH:MM-HH:MM, or "off" for plain hours
    ticket_business_days: str = "1-7"  # ISO weekdays, "1-5" or "1,2,3,4,5,6"
    ticket_first_answer_hours: float = Field(2.0, gt=0, description="first answer to the owner")
    ticket_handler_answer_days: float = Field(
        1.0, gt=0, description="handler's answer, business days"
    )
    ticket_level_answer_hours: float = Field(2.0, gt=0, description="an escalated level must act")
    ticket_followup_days: float = Field(1.0, gt=0, description="rating asked after Resolve")
    handling_score_threshold: int = Field(6, ge=1, le=10, description="at or below reopens")

    # Conversations (issue 14): what owners write outside a dialogue reaches a person. Who
    # gets each kind: "advisor" (the owner's advisor, else the agents' queue), a role
    # (agent, supervisor...: that role's queue) or a staff login (that person).
    route_inquiry: str = "advisor"
    route_insurance_lead: str = "advisor"
    route_booking_request: str = "advisor"
    route_campaign_lead: str = "advisor"
    conversation_first_answer_hours: float = Field(
        2.0, gt=0, description="first answer, business hours on the complaints calendar")
    # per kind, when it differs (empty: the one above)
    first_answer_hours_inquiry: float | None = Field(None, gt=0)
    first_answer_hours_insurance_lead: float | None = Field(None, gt=0)
    first_answer_hours_booking_request: float | None = Field(None, gt=0)
    first_answer_hours_campaign_lead: float | None = Field(None, gt=0)
    conversation_remind_minutes: float = Field(
        30.0, ge=0, description="the assignee is reminded this long before the due")
    reply_window_hours: float = Field(
        48.0, ge=0, description="an owner's next message this soon after a touchpoint answers it")

    # Scheduled touchpoints (issue 3): journey days (local days after the cause) and local
    # send times, the daily occasions scan, booking. See docs/touchpoints.md.
    checkin_after_hours: float = Field(2.0, gt=0, description="delivery check-in: hours after")
    followup_day: int = Field(3, ge=1, le=30, description="3-day follow-up: day after delivery")
    followup_time: str = "10:00"
    followup_grace_days: int = Field(1, ge=0, le=14, description="valid this many days after")
    visit_day: int = Field(7, ge=1, le=60, description="7-day care visit: day after delivery")
    visit_time: str = "10:00"
    visit_grace_days: int = Field(1, ge=0, le=14)
    first_service_day: int = Field(18, ge=1, le=120, description="走合保养 reminder day")
    first_service_time: str = "10:00"
    first_service_deadline_day: int = Field(21, ge=1, le=180, description="valid until this day")
    service_followup_day: int = Field(2, ge=0, le=14, description="day after the car left")
    service_followup_time: str = "10:00"
    service_followup_deadline_day: int = Field(3, ge=0, le=30, description="valid until this day")
    major_repair_followup_days: int = Field(7, ge=0, le=60, description="major repair: valid until")
    service_interval_months: int = Field(6, ge=0, le=60, description="next service; 0 = unknown")
    service_interval_km: int = Field(10000, ge=0, le=100000)
    service_due_lead_days: int = Field(7, ge=0, le=60, description="service-due reminder lead")
    service_due_time: str = "10:00"
    service_due_grace_days: int = Field(14, ge=0, le=120, description="valid after the date")
    # per model, when it differs: "MODEL:MONTHS:KM, ..." (e.g. "CS75:6:5000"); see
    # docs/touchpoints.md, service due by time or mileage
    service_intervals: str = ""
    repair_reminder_days: int = Field(30, ge=1, le=365, description="postponed work reminded after")
    # The dealership's figures (issue 17, docs/kpi.md): targets over the manuals' defaults
    # ("first_service_rate:>=90, repeat_repair_rate:<=1.5"), the 首保率 window, 返修率's days.
    kpi_targets: str = ""
    kpi_first_service_days: int = Field(90, ge=1, le=365, description="首保率: done within")
    kpi_repeat_repair_days: int = Field(30, ge=1, le=365, description="返修率: back within")
    # Reports that arrive by themselves (日结周报, docs/kpi.md): to the staff group (or this
    # chat), local times; "" / 0 turns one off. Advisors on Telegram get their own in private.
    report_chat_id: int | None = None
    report_daily_time: str = "08:30"
    report_weekly_day: int = Field(1, ge=0, le=7, description="ISO weekday, 0 = none")
    report_weekly_time: str = "08:45"
    report_monthly_day: int = Field(1, ge=0, le=28, description="day of month, 0 = none")
    report_monthly_time: str = "09:00"
    report_to_advisors: bool = True
    scan_time: str = "09:30"  # the daily occasions scan; birthdays and holidays go out then
    scan_catchup_days: int = Field(31, ge=0, le=366, description="days a scan looks back")
    insurance_lead_days: str = "30,7"
    licence_lead_days: str = "30"
    holidays: str = "01-01:元旦,L01-01:春节,L08-15:中秋节,10-01:国庆节"  # "L": lunar date
    holidays_file: Path | None = None  # one "MM-DD:name" a line, added to ``holidays``
    booking_weekdays: str = "1-7"  # ISO weekdays the workshop takes bookings
    booking_horizon_days: int = Field(14, ge=1, le=90)
    booking_reminder_time: str = "18:00"  # local time the day before the booking
    # Bookings with capacity (issue 17, docs/bookings.md): the day's slots, the places each
    # slot has per job kind, the days the workshop is shut (besides CAREBOT_HOLIDAYS when
    # booking_closed_on_holidays), the staff group's morning list, and how many days a
    # visit may leave the workshop after its booked day and still count as booked (预约率).
    booking_slots: str = "09:00-12:00,13:30-17:30"
    booking_capacity: str = "maintenance:4,first_service:2,repair:2,inspection:2,other:1"
    booking_closed_days: str = ""  # MM-DD, LMM-DD (lunar), YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD
    booking_closed_on_holidays: bool = True
    booking_digest_time: str = "08:00"  # local; "off": no morning list to the staff group
    booking_visit_days: int = Field(7, ge=0, le=60, description="visit counts as booked")

    # The call list and lost-owner recall (issue 16, docs/followup.md): a survey left
    # unanswered this long is owed by phone; no-answer calls are tried again at another of
    # ``call_times`` up to ``call_max_attempts`` times; a car with no workshop visit for
    # ``recall_after_months`` (0: off) gets the recall; a second contact
    # ``second_followup_day`` days after a visit (0: off).
    call_unanswered_days: float = Field(3.0, gt=0, description="unanswered survey: call after")
    call_max_attempts: int = Field(3, ge=1, le=10, description="no answer this often: unreachable")
    call_times: str = "10:00,15:00,19:00"  # local times of day calls are retried at
    recall_after_months: int = Field(9, ge=0, le=60, description="no visit this long: recall")
    recall_time: str = "10:00"  # local time the recall goes out
    recall_valid_days: int = Field(14, ge=1, le=90, description="the recall stays valid")
    second_followup_day: int = Field(0, ge=0, le=60, description="day after a visit; 0 = off")
    second_followup_time: str = "10:00"

    # Marketing campaigns (issue 6): the weekly cap, how long an unsent message stays
    # valid, the event notice lead, how often scheduled campaigns are launched.
    marketing_weekly_cap: int = Field(2, ge=1, le=50, description="per owner, rolling 7 days")
    campaign_valid_days: float = Field(3.0, gt=0, description="unsent messages expire after")
    campaign_event_lead_days: int = Field(14, ge=0, le=365, description="notice before event")
    campaign_tick_seconds: float = Field(30.0, gt=0, description="launch/finish check interval")

    # The web console (issue 7): the key that encrypts session cookies (any long random
    # string; the same on every instance), sign-in lock, cookie flags. See docs/console.md.
    session_secret: str = ""
    session_hours: float = Field(12.0, gt=0, description="a console session lasts this long")
    console_lock_failures: int = Field(5, ge=1, le=100, description="wrong passwords before lock")
    console_lock_minutes: float = Field(15.0, gt=0, description="how long a sign-in stays locked")
    console_secure_cookie: bool = False  # set true behind HTTPS (nginx); see docs/deploy.md
    # Hardening (issue 15, docs/security.md): failed sign-ins from one client address (per
    # instance) before it must wait; the proxies whose X-Forwarded-For names the client;
    # /metrics without a token only when said so.
    console_address_failures: int = Field(
        20, ge=1, le=100000, description="failed sign-ins from one address, then it waits")
    console_address_minutes: float = Field(
        15.0, gt=0, description="the window those failures are counted in")
    trusted_proxies: str = "127.0.0.1,::1"  # addresses or networks, comma-separated; "" = none
    metrics_open: bool = False  # true: /metrics answers anyone when no token is set
    # Operations (docs/deploy.md, "Health and alerts", "Logs")
    telegram_degraded_after: float = Field(
        60.0, gt=0, description="seconds of failing Bot API calls before /healthz says degraded")
    log_format: Literal["text", "json"] = "text"  # json: one object per line
    access_log: bool = False  # on: one line per web request (no query strings, no secrets)
    error_alert_minutes: float = Field(
        10.0, gt=0, le=1440, description="errors of one kind after the first are counted this "
        "long, then told once with their number")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The env file is read as systemd reads it (one parser for both)."""
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        systemd = SystemdEnvFile(settings_cls, env_file=dotenv_settings.env_file,
                                 env_file_encoding="utf-8")
        return init_settings, env_settings, systemd, file_secret_settings

    @field_validator("*", mode="before")
    @classmethod
    def _nothing_swallowed(cls, v: Any) -> Any:
        """``CAREBOT_WEB_HOST=127.0.0.1   # nginx in front`` is, for systemd, a host name
        with a comment in it: refused here, naming the setting, not half-working later."""
        if isinstance(v, str):
            why = envfile.swallowed(v)
            if why is not None:
                raise ValueError(why)
        return v

    @field_validator("web_host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not valid_host(v):
            raise ValueError(t("config.bad_host"))
        return v

    @field_validator("bot_token")
    @classmethod
    def _token(cls, v: str) -> str:
        if v and not _TOKEN.match(v):
            raise ValueError(t("config.bad_token"))
        return v

    @field_validator("followup_time", "visit_time", "first_service_time", "service_followup_time",
                     "service_due_time", "scan_time", "booking_reminder_time",
                     "recall_time", "second_followup_time", "report_weekly_time",
                     "report_monthly_time")
    @classmethod
    def _touchpoint_time(cls, v: str) -> str:
        parse_hhmm(v)
        return v

    @field_validator("call_times")
    @classmethod
    def _call_times(cls, v: str) -> str:
        times = [part.strip() for part in v.split(",") if part.strip()]
        if not times:
            raise ValueError("name at least one time of day, e.g. 10:00,15:00,19:00")
        for part in times:
            parse_hhmm(part)
        return v

    @field_validator("insurance_lead_days", "licence_lead_days")
    @classmethod
    def _lead_days(cls, v: str) -> str:
        parse_day_list(v)
        return v

    @field_validator("holidays")
    @classmethod
    def _holiday_list(cls, v: str) -> str:
        parse_holidays(v)
        return v

    @field_validator("report_daily_time")
    @classmethod
    def _daily_report_time(cls, v: str) -> str:
        if v.strip():
            parse_hhmm(v)
        return v

    @field_validator("kpi_targets")
    @classmethod
    def _kpi_targets(cls, v: str) -> str:
        parse_targets(v)
        return v

    @field_validator("service_intervals")
    @classmethod
    def _service_intervals(cls, v: str) -> str:
        parse_intervals(v)
        return v

    @field_validator("booking_weekdays")
    @classmethod
    def _weekdays(cls, v: str) -> str:
        parse_weekdays(v)
        return v

    @field_validator("booking_slots")
    @classmethod
    def _booking_slots(cls, v: str) -> str:
        parse_slots(v)
        return v

    @field_validator("booking_capacity")
    @classmethod
    def _booking_capacity(cls, v: str) -> str:
        parse_capacity(v)
        return v

    @field_validator("booking_closed_days")
    @classmethod
    def _booking_closed_days(cls, v: str) -> str:
        parse_closed_days(v)
        return v

    @field_validator("booking_digest_time")
    @classmethod
    def _digest_time(cls, v: str) -> str:
        if v.strip().lower() != "off":
            parse_hhmm(v)
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_list(cls, v: str) -> str:
        parse_networks(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(t("config.bad_timezone", value=repr(v))) from exc
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
            raise ValueError(t("config.bad_url"))
        return v.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError(t("config.bad_database_url"))
        if not v.startswith("sqlite://"):
            try:  # found here, not as a traceback where the database is first reached
                port = urlsplit(v).port
            except ValueError:
                port = -1
            if port is not None and not 1 <= port <= 65535:
                raise ValueError(t("config.bad_database_port"))
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, v: str) -> str:
        if v and not _SECRET.match(v):
            raise ValueError(t("config.bad_secret"))
        return v

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(t("config.webhook_needs_secret"))
        return self

    @property
    def webhook_endpoint(self) -> str:
        """The URL given to setWebhook; a URL without a path gets /telegram/webhook."""
        if not self.webhook_url:
            return ""
        parsed = urlsplit(self.webhook_url)
        return self.webhook_url if parsed.path not in ("", "/") else \
            self.webhook_url.rstrip("/") + DEFAULT_WEBHOOK_PATH

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet(self) -> QuietHours | None:
        return parse_quiet_hours(self.quiet_hours)

    @property
    def has_token(self) -> bool:
        return bool(self.bot_token)


class ConfigError(StartupError):
    """Start-up configuration is wrong; the message names each variable to fix."""


def config_problems(exc: ValidationError) -> list[str]:
    """One line per wrong setting, naming its ``CAREBOT_`` variable; secrets not shown."""
    lines = []
    for err in exc.errors():
        msg = _why(err)
        if not err["loc"]:  # a rule across several variables names them itself
            lines.append(msg)
            continue
        field = "_".join(str(p) for p in err["loc"])
        got = "" if envfile.swallowed(str(err.get("input", ""))) else \
            t("config.got", value=shown(field, err.get("input")))
        lines.append(t("config.problem", name=field.upper(), why=msg, got=got))
    return lines


# pydantic's own refusals said in the terminal's language (bot/cli/i18n/*/startup.toml);
# a rule of carebot's (a value_error) says its own words.
OWN_WORDS = ("int_parsing", "float_parsing", "bool_parsing", "greater_than_equal",
             "less_than_equal", "greater_than", "less_than", "literal_error", "missing")


def _why(err: Any) -> str:
    kind = str(err.get("type", ""))
    if kind in OWN_WORDS:
        ctx = {k: str(v) for k, v in (err.get("ctx") or {}).items()}
        try:
            return t(f"config.{kind}", **ctx)
        except (KeyError, IndexError):  # a context this catalogue's text does not expect
            pass
    return str(err["msg"]).removeprefix("Value error, ")


def load_settings(**overrides: Any) -> Settings:
    """Build Settings; a wrong value is a :class:`ConfigError` of one line naming each
    ``CAREBOT_`` variable to fix (what start-up prints before it stops, exit code 2)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(t("config.separator").join(config_problems(exc))) from None
    except (envfile.EnvFileError, OSError) as exc:
        raise ConfigError(t("config.env_file", why=exc)) from None
