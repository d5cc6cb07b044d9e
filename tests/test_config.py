from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CAREBOT_TIMEZONE", "CAREBOT_QUIET_HOURS", "CAREBOT_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(_env_file=None)
    assert s.timezone == "Asia/Shanghai"
    assert str(s.quiet) == "21:00-09:00"
    assert s.database_url == "sqlite://data/carebot.sqlite3"
    assert (s.web_host, s.web_port) == ("127.0.0.1", 8080)
    assert s.telegram_api_url == "https://api.telegram.org"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CAREBOT_TIMEZONE", "Mars/Olympus"),
        ("CAREBOT_QUIET_HOURS", "late"),
        ("CAREBOT_WEB_PORT", "eighty"),
        ("CAREBOT_STAFF_CHAT_ID", "staff"),
        ("CAREBOT_DATABASE_URL", "mysql://x"),
        ("CAREBOT_TELEGRAM_API_URL", "api.telegram.org"),
    ],
)
def test_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str,
                                        value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert var in str(err.value)


def test_env_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CAREBOT_DEALER_NAME", raising=False)
    env = tmp_path / ".env"
    env.write_text("CAREBOT_DEALER_NAME=广州之星\n", encoding="utf-8")
    assert load_settings(_env_file=env).dealer_name == "广州之星"


def test_webhook_needs_a_valid_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_WEBHOOK_URL", "https://bot.example.com/telegram/webhook")
    monkeypatch.delenv("CAREBOT_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert "CAREBOT_WEBHOOK_SECRET" in str(err.value)
    monkeypatch.setenv("CAREBOT_WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert "CAREBOT_WEBHOOK_SECRET" in str(err.value)
    monkeypatch.setenv("CAREBOT_WEBHOOK_SECRET", "Ab_3-xyz")
    assert load_settings(_env_file=None).webhook_secret == "Ab_3-xyz"


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://bot.example.com", "https://bot.example.com/telegram/webhook"),
        ("https://bot.example.com/", "https://bot.example.com/telegram/webhook"),
        ("https://bot.example.com/hooks/tg", "https://bot.example.com/hooks/tg"),
    ],
)
def test_webhook_endpoint_and_route_agree(monkeypatch: pytest.MonkeyPatch, url: str,
                                          endpoint: str) -> None:
    from bot.web.server import webhook_path

    monkeypatch.setenv("CAREBOT_WEBHOOK_URL", url)
    monkeypatch.setenv("CAREBOT_WEBHOOK_SECRET", "abc")
    s = load_settings(_env_file=None)
    assert s.webhook_endpoint == endpoint
    assert endpoint.endswith(webhook_path(s))


@pytest.mark.parametrize("port", ["notaport", "70000", "0"])
def test_a_database_port_that_is_no_number_is_named_not_a_traceback(port: str) -> None:
    """Issue 20 point 1: one line naming the setting (it was a traceback at the first
    connection, from the migration lock); the password stays hidden."""
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, database_url=f"postgres://u:S3cret-pw@db.internal:{port}/c")
    assert str(err.value).startswith("CAREBOT_DATABASE_URL: the port after the host is not a "
                                     "number from 1 to 65535")
    assert "S3cret-pw" not in str(err.value)
