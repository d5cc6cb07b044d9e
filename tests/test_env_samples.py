"""The shipped environment files (issue 20, point 1): read the way systemd reads them they
give exactly the values docs/deploy.md documents -- the documentation shows the files
themselves -- and carebot accepts the one-store sample as it stands."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot import envfile
from bot.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
ONE_STORE = ROOT / "examples" / "carebot.env.example"
GROUP = ROOT / "examples" / "carebot-group.env.example"


def documented_block(after: str) -> str:
    """The first ```sh block after the heading ``after`` in deploy.md."""
    start = DEPLOY.index(after)
    block = re.search(r"```sh\n(.*?)```", DEPLOY[start:], re.DOTALL)
    assert block is not None
    return block.group(1)


@pytest.mark.parametrize(("sample", "heading"), [
    (ONE_STORE, "It reads:"),
    (GROUP, "### Environment (every instance the same)"),
])
def test_deploy_md_shows_the_shipped_file_itself(sample: Path, heading: str) -> None:
    assert documented_block(heading) == sample.read_text(encoding="utf-8")


def test_one_store_sample_as_systemd_reads_it() -> None:
    parsed = envfile.read(ONE_STORE)
    assert parsed.values == {
        "CAREBOT_BOT_TOKEN": "123456:PASTE-THE-TOKEN-FROM-BOTFATHER",
        "CAREBOT_DATABASE_URL": "sqlite:///var/lib/carebot/carebot.sqlite3",
        "CAREBOT_STAFF_CHAT_ID": "-1001234567890",
        "CAREBOT_DEALER_NAME": "星辰汽车广州店",
        "CAREBOT_DEALER_PHONE": "020-88886666",
        "CAREBOT_TIMEZONE": "Asia/Shanghai",
        "CAREBOT_API_KEY": "",
        "CAREBOT_SESSION_SECRET": "",
        "CAREBOT_WEB_HOST": "127.0.0.1",
        "CAREBOT_WEB_PORT": "8080",
    }
    assert parsed.ignored == []


def test_group_sample_as_systemd_reads_it() -> None:
    parsed = envfile.read(GROUP)
    assert parsed.values == {
        "CAREBOT_BOT_TOKEN": "123456:PASTE-THE-TOKEN-FROM-BOTFATHER",
        "CAREBOT_DATABASE_URL": "postgres://carebot:PASSWORD@db.internal:5432/carebot",
        "CAREBOT_WEBHOOK_URL": "https://care.example.com/telegram/webhook",
        "CAREBOT_WEBHOOK_SECRET": "",
        "CAREBOT_SESSION_SECRET": "",
        "CAREBOT_API_KEY": "",
        "CAREBOT_METRICS_TOKEN": "",
        "CAREBOT_CONSOLE_SECURE_COOKIE": "true",
        "CAREBOT_WEB_HOST": "127.0.0.1",
        "CAREBOT_STAFF_CHAT_ID": "-1001234567890",
        "CAREBOT_DEALER_NAME": "星辰汽车集团",
        "CAREBOT_DEALER_PHONE": "400-000-0000",
    }
    assert parsed.ignored == []


def test_carebot_takes_the_one_store_sample_as_it_stands(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    for name in list(os.environ):
        if name.startswith("CAREBOT_"):
            monkeypatch.delenv(name)
    settings = load_settings(_env_file=ONE_STORE)
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 8080)
    assert settings.dealer_name == "星辰汽车广州店"
    assert settings.staff_chat_id == -1001234567890
    assert settings.database_url == "sqlite:///var/lib/carebot/carebot.sqlite3"


def test_the_issue_sample_would_have_been_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Yesterday's sample (comments after values) is refused, naming each setting."""
    from bot.config import ConfigError

    monkeypatch.delenv("CAREBOT_WEB_HOST", raising=False)
    monkeypatch.delenv("CAREBOT_API_KEY", raising=False)
    old = tmp_path / "carebot.env"
    old.write_text("CAREBOT_API_KEY=...                # python3 -c 'import secrets'\n"
                   "CAREBOT_WEB_HOST=127.0.0.1         # nginx in front\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=old)
    assert "CAREBOT_WEB_HOST: the value ends in '# nginx in front'" in str(err.value)
    assert "CAREBOT_API_KEY: the value ends in" in str(err.value)
