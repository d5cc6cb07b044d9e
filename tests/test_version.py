"""One version source: the package metadata, shown by ``carebot --version``, the console's
footer and ``carebot run``'s banner and log (issue 20 point 2; ``/healthz``:
tests/test_telegram_health.py)."""

from __future__ import annotations

import asyncio
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import version
from bot.cli import main
from bot.clock import FakeClock
from tests.browser.conftest import add_staff, free_port
from tests.conftest import make_settings
from tests.test_cli_failures import child_env
from tests.test_console_access import signed_in

VERSION_FOOTER = '<footer class="foot">'


def test_version_is_the_installed_packages() -> None:
    assert metadata.version("carebot") == version.VERSION


def test_cli_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"carebot {version.VERSION}"


def test_checkout_fallback(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "carebot"\nversion = "9.8.7"\n', encoding="utf-8")
    assert version._from_checkout(pyproject) == "9.8.7"
    assert version._from_checkout(tmp_path / "missing.toml") == version.UNKNOWN


async def test_console_footer_shows_the_version_to_staff(db: str, emulator: Any,
                                                         clock: FakeClock) -> None:
    from bot.app import create_app

    settings = make_settings(emulator, database_url=db, web_port=free_port(),
                             session_secret="s" * 32)
    carebot = create_app(settings, clock, pace=emulator.pace)
    await carebot.start(serve_web=True, receive_updates=False, schedule=False)
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        await add_staff("it", "admin", language="zh_CN")
        async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{base}/login") as r:
            assert VERSION_FOOTER not in await r.text()  # not told to whoever asks
        http = await signed_in(base, "it")
        async with http, http.get(f"{base}/") as r:
            page = await r.text()
        assert f'<footer class="foot">carebot 版本 {version.VERSION}</footer>' in page
    finally:
        await carebot.stop()


async def test_run_banner_and_log_name_the_version(tmp_path: Path, sqlite_template: Path,
                                                   emulator: Any) -> None:
    """``carebot run``'s first line (stdout, the journal) and its log say which version runs."""
    db = tmp_path / "carebot.sqlite3"
    db.write_bytes(sqlite_template.read_bytes())
    env = child_env(database_url=f"sqlite://{db}", bot_token=emulator.token,
                    telegram_api_url=emulator.api_url, web_port=str(free_port()),
                    session_secret="s" * 43)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
        assert "carebot is running as @" in line and f"version {version.VERSION};" in line
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert f"carebot {version.VERSION} running as @" in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
