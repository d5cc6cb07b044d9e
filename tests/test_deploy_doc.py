"""docs/deploy.md tried as written (issue 20, point 6): its shell commands, run in a sandbox
in the page's order (tests/deploy_doc.py swaps the machine's folders for temporary ones and
lists the lines it cannot run there, with why), each must succeed; the data survives the
documented backup and restore (issue 20, point 5) on SQLite and on PostgreSQL; the shipped
systemd units are the ones the page shows and pass ``systemd-analyze verify``."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.conftest import PG_SERVER_URL
from tests.deploy_doc import BIN, DEPLOY, ROOT, SKIPS, Line, Sandbox, base_swaps, documented_lines

pytestmark = pytest.mark.slow  # processes: carebot, pg_dump, bash

UNITS = sorted([*(ROOT / "examples").glob("*.service"), *(ROOT / "examples").glob("*.timer")])
PASSWORD = "correct horse battery"  # the first admin's (read -rsp … PASSWORD)
GROUP = "A dealer group: PostgreSQL, several instances, nginx, webhook"  # the rest: SQLite
EXAMPLE_BACKUP = r"carebot-2026-11-02T033000Z\.(sqlite3|dump)"


def test_every_line_is_run_or_skipped_with_a_reason() -> None:
    lines = documented_lines()
    assert any(line.part == GROUP for line in lines)
    for pattern in SKIPS:  # no stale excuse
        assert any(re.search(pattern, line.text) for line in lines), pattern
    assert not any("sudo " in line.text for line in lines)  # sudo-free, as the top says
    run = [line for line in lines if line.skipped() is None]
    assert len(run) > 20, run


def test_the_page_shows_the_shipped_units() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    shown = re.findall(r"```ini\n(.*?)```", text, flags=re.DOTALL)
    for unit in UNITS:
        assert unit.read_text(encoding="utf-8") in shown, unit.name


def test_units_keep_owners_data_private() -> None:
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8")
        if unit.suffix == ".service":
            assert "\nUMask=0027\n" in text and "\nUser=carebot\n" in text, unit.name


def test_shipped_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    names = []
    for unit in UNITS:  # the installed carebot's path swapped for this checkout's
        text = unit.read_text(encoding="utf-8").replace("/opt/carebot/bin/", f"{BIN}/")
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
        names.append(unit.name.replace("@.service", "@8081.service"))
        if "@." in unit.name:
            (tmp_path / names[-1]).write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    # A setting systemd cannot parse is only a warning ("…, ignoring"): none may appear.
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", \
        done.stdout + done.stderr


# ------------------------------------------------------------------------- the sandbox

def _sandbox(root: Path, emulator, database_url: str) -> Sandbox:  # type: ignore[no-untyped-def]
    env = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(root / "var/lib/carebot"),
           "LANG": "C.UTF-8",
           "CAREBOT_LANGUAGE": "en",  # the words the checks below read (Chinese by default)
           # what the operator fills into /etc/carebot/carebot.env
           "CAREBOT_DATABASE_URL": database_url, "CAREBOT_BOT_TOKEN": emulator.token,
           "CAREBOT_TELEGRAM_API_URL": emulator.api_url,
           "CAREBOT_SESSION_SECRET": secrets.token_urlsafe(32),
           "CAREBOT_API_KEY": secrets.token_urlsafe(32)}
    box = Sandbox(root, env, base_swaps())
    box.swaps.append((EXAMPLE_BACKUP, lambda m: _newest(box, m.group(1)).name))
    return box


def _newest(box: Sandbox, suffix: str) -> Path:
    """The backup a restore line names by example: the newest one made so far."""
    found = sorted(box.path("/var/backups/carebot").glob(f"carebot-*.{suffix}"),
                   key=lambda p: p.stat().st_mtime)
    assert found, f"no carebot-*.{suffix} backup to restore"
    return found[-1]


async def _walk(box: Sandbox, lines: list[Line], hooks: dict[tuple[str, str], object]
                ) -> list[str]:
    """Run each line; a hook for (section, line pattern) checks its result instead of the
    default (exit code 0). The lines run."""
    done = []
    for line in lines:
        if line.skipped() is not None:
            continue
        hook = next((h for (sec, pat), h in hooks.items()
                     if sec == line.section and re.search(pat, line.text)), None)
        if hook is not None and hasattr(hook, "before"):
            await hook.before()
        code, out = await box.run(line)
        if hook is not None and hasattr(hook, "after"):
            await hook.after(code, out)
        else:
            assert code == 0, f"{line.section}: {line.text}\n{box.command(line)}\n{out}"
        done.append(line.text)
    return done


class Hook:
    """What the test does around one documented line."""

    def __init__(self, before=None, after=None) -> None:  # type: ignore[no-untyped-def]
        if before is not None:
            self.before = before
        if after is not None:
            self.after = after


def _sqlite_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _sqlite_forget(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM touchpoint")
        conn.execute("DELETE FROM vehicle")


async def _import_deliveries(box: Sandbox) -> None:
    proc = await asyncio.create_subprocess_exec(
        f"{BIN}/carebot", "--env-file", str(box.path("/etc/carebot/carebot.env")), "import",
        "deliveries", str(ROOT / "examples" / "deliveries.csv"), env=box.env, cwd=box.root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


def _counts(out: str) -> str:
    """The row counts a backup or restore printed (``33 tables, 68 rows (…)``)."""
    found = re.search(r"\d+ tables, \d+ rows \([^)]*\)", out)
    assert found, out
    return found.group(0)


async def test_one_store_as_documented(tmp_path: Path, sqlite_template: Path,
                                       emulator) -> None:  # type: ignore[no-untyped-def]
    box = _sandbox(tmp_path, emulator, f"sqlite://{tmp_path}/var/lib/carebot/carebot.sqlite3")
    box.stdin = PASSWORD + "\n"  # the first admin's, typed at `read -rsp … PASSWORD`
    db = box.path("/var/lib/carebot/carebot.sqlite3")
    seen: dict[str, str] = {}

    async def seed_database(code: int, out: str) -> None:
        assert code == 0, out
        # The migrated database as `carebot migrate` leaves it (0640, tests/test_backup.py),
        # copied: replaying every migration takes 10-20 s here.
        if db.parent.is_dir() and not db.exists():
            fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.write(fd, sqlite_template.read_bytes())
            os.close(fd)

    async def backed_up(code: int, out: str) -> None:
        assert code == 0, out
        seen["backup"] = _counts(out)
        assert "vehicle 8" in seen["backup"]
        _sqlite_forget(db)  # what happened after the backup

    async def restored(code: int, out: str) -> None:
        assert code == 0, out
        assert _sqlite_rows(db, "vehicle") == 8 and _counts(out) == seen["backup"]

    async def doctor(code: int, out: str) -> None:
        assert code == 0 and "ready: no problems" in out, out
        assert "ok    data folder" in out and "1 admin account(s) can sign in" in out, out

    async def pre_upgrade(code: int, out: str) -> None:
        assert code == 0, out
        seen["pre-upgrade"] = _counts(out)
        _sqlite_forget(db)  # what the new version did before it was rolled back

    async def rolled_back(code: int, out: str) -> None:
        assert code == 0, out
        assert _sqlite_rows(db, "vehicle") == 8 and _counts(out) == seen["pre-upgrade"]

    async def version(code: int, out: str) -> None:
        assert code == 0 and re.fullmatch(r"carebot \S+\n", out), out

    hooks: dict[tuple[str, str], object] = {
        ("", r"install -d .* /var/lib/carebot$"): Hook(after=seed_database),
        ("Checking an installation: `carebot doctor`", r" doctor$"): Hook(after=doctor),
        ("Backups", r" backup --to "): Hook(before=lambda: _import_deliveries(box),
                                            after=backed_up),
        ("Restore", r" restore "): Hook(after=restored),
        ("", r" backup --to /var/backups/carebot/pre-upgrade$"): Hook(after=pre_upgrade),
        ("Rolling back an upgrade", r" restore "): Hook(after=rolled_back),
        ("Rolling back an upgrade", r" --version "): Hook(after=version),
    }
    lines = [line for line in documented_lines() if line.part != GROUP]
    done = await _walk(box, lines, hooks)
    assert any(" staff passwd admin --stdin" in text for text in done)
    assert (box.path("/etc/systemd/system") / "carebot-backup.timer").is_file()
    assert oct(os.stat(box.path("/var/lib/carebot")).st_mode & 0o777) == "0o750"
    assert oct(os.stat(box.path("/etc/carebot/carebot.env")).st_mode & 0o777) == "0o640"
    for backup in box.path("/var/backups/carebot").rglob("*.sqlite3"):
        assert backup.stat().st_mode & 0o777 == 0o640, backup


# ------------------------------------------------------------------------- PostgreSQL

async def _admin(*sql: str) -> None:
    conn = await asyncpg.connect(PG_SERVER_URL.replace("postgres://", "postgresql://", 1),
                                 timeout=3)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def pg_role() -> AsyncIterator[tuple[str, str]]:
    """A login role with a password, no superuser, standing for ``carebot`` (what
    ``createuser --pwprompt carebot`` makes); dropped with its databases afterwards."""
    name = f"carebot_doc_{os.getpid()}_{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_hex(8)}"
    try:
        await _admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc!r}")
    try:
        yield name, password
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                     f'DROP DATABASE IF EXISTS "{name}_drill" WITH (FORCE)',
                     f"DROP ROLE IF EXISTS {name}")


async def _pg(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await conn.fetchval(sql) or 0)
    finally:
        await conn.close()


async def _pg_exec(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_dealer_group_as_documented(tmp_path: Path, pg_role: tuple[str, str],
                                          emulator) -> None:  # type: ignore[no-untyped-def]
    role, password = pg_role
    server = PG_SERVER_URL.split("@", 1)[1].rsplit("/", 1)[0]  # host:port
    host, port = server.split(":")
    url = f"postgres://{role}:{password}@{server}/{role}"
    box = _sandbox(tmp_path, emulator, url)
    box.stdin = password + "\n"  # what the operator types for ~/.pgpass
    box.swaps[:0] = [  # the database server and the role's names, for the page's examples
        (r"runuser -u postgres -- ", f"env PGHOST={host} PGPORT={port} PGUSER=postgres "),
        (r"--owner carebot\b", f"--owner {role}"),
        (r"(createdb --owner \S+) carebot$", rf"\1 {role}"),
        (r"carebot_drill\b", f"{role}_drill"),
        (r"postgres://carebot@db\.internal:5432/", f"postgres://{role}@{server}/"),
        (r"db\.internal:5432:\*:carebot:", f"{host}:{port}:*:{role}:"),
    ]
    seen: dict[str, str] = {}

    async def backed_up(code: int, out: str) -> None:
        assert code == 0, out
        seen["backup"] = _counts(out)
        assert "vehicle 8" in seen["backup"]
        await _pg_exec(url, "DELETE FROM touchpoint; DELETE FROM vehicle")

    async def restored(code: int, out: str) -> None:
        assert code == 0, out
        assert await _pg(url, "SELECT count(*) FROM vehicle") == 8
        assert _counts(out) == seen["backup"]

    async def drill_restored(code: int, out: str) -> None:
        assert code == 0, out
        assert _counts(out) == seen["backup"]  # what the drill compares

    async def drill_doctor(code: int, out: str) -> None:
        # No console admin in this database (the first admin step is the one store's):
        # doctor may fail for that, never for the database.
        assert code in (0, 1) and "schema up to date" in out, out
        assert not re.search(r"FAIL\s+database", out), out

    hooks: dict[tuple[str, str], object] = {
        ("Backups", r" backup --to "): Hook(before=lambda: _import_deliveries(box),
                                            after=backed_up),
        ("Restore", r" restore "): Hook(after=restored),
        ("A restore drill", r" restore "): Hook(after=drill_restored),
        ("A restore drill", r" doctor$"): Hook(after=drill_doctor),
    }
    lines = [line for line in documented_lines()
             if line.part == "Installing"
             or (line.section == "The environment file" and line.text.startswith("install "))
             or line.part == GROUP]
    done = await _walk(box, lines, hooks)
    assert any(text.startswith("runuser -u postgres -- dropdb ") for text in done)
    assert await _pg(PG_SERVER_URL, f"SELECT count(*) FROM pg_database WHERE datname = "
                                    f"'{role}_drill'") == 0  # the drill cleaned up
    assert password not in "".join(box.said)  # never printed, by carebot or pg_dump
    [dump] = [p for p in box.path("/var/backups/carebot").glob("carebot-*.dump")]
    assert dump.stat().st_mode & 0o777 == 0o640
