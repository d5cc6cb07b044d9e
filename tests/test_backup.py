"""``carebot backup`` and ``carebot restore`` (issue 20, point 5): a consistent backup into a
folder, files 0640, old ones pruned, and a restore that brings the rows back -- on SQLite
and on PostgreSQL as a role that is no superuser, its password never printed. The commands
exactly as docs/deploy.md gives them are run by tests/test_deploy_doc.py."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.cli import main
from db.setup import _ensure_sqlite_dir
from tests.conftest import PG_SERVER_URL
from tests.test_doctor import private_copy

ROOT = Path(__file__).resolve().parent.parent
DELIVERIES = ROOT / "examples" / "deliveries.csv"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def carebot(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            database_url: str, *argv: str) -> tuple[int, str]:
    """``carebot ARGV`` in this process with only ``CAREBOT_DATABASE_URL`` set; (exit code,
    stdout + stderr)."""
    for name in list(os.environ):
        if name.startswith("CAREBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CAREBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("CAREBOT_LANGUAGE", "en")  # the words these tests read
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def sqlite_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def store(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Path, str]]:
    """A private, migrated SQLite database holding the sample deliveries."""
    path = private_copy(sqlite_template, tmp_path / "lib")
    url = f"sqlite://{path}"
    code, out = carebot(monkeypatch, capsys, url, "import", "deliveries", str(DELIVERIES))
    assert code == 0, out
    assert sqlite_rows(path, "vehicle") == 8
    yield path, url


def test_sqlite_backup_and_restore_round_trip(
        store: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, url = store
    folder = tmp_path / "backups"
    code, out = carebot(monkeypatch, capsys, url, "backup", "--to", str(folder))
    assert code == 0, out
    [backup] = sorted(folder.glob("carebot-*.sqlite3"))
    assert mode(folder) == 0o750 and mode(backup) == 0o640
    assert not list(folder.glob("*.partial"))
    counts = out.strip().rsplit(": ", 1)[1]
    assert "vehicle 8" in counts and "customer 7" in counts, out
    with sqlite3.connect(backup) as conn:  # one self-contained file, whole
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    with sqlite3.connect(path) as conn:  # what happened after the backup
        conn.execute("DELETE FROM touchpoint")
        conn.execute("DELETE FROM vehicle")
    assert sqlite_rows(path, "vehicle") == 0

    code, out = carebot(monkeypatch, capsys, url, "restore", str(backup))
    assert code == 0, out
    assert sqlite_rows(path, "vehicle") == 8 and sqlite_rows(path, "touchpoint") > 0
    assert f"restored {backup} into {url}: {counts}" in out  # the backup's own counts
    assert mode(path) == 0o640  # the live file keeps its mode
    [before] = sorted(folder.glob("before-restore-*.sqlite3"))  # the undo, beside it
    assert mode(before) == 0o640 and sqlite_rows(before, "vehicle") == 0
    assert sorted(folder.glob("carebot-*.sqlite3")) == [backup]


def test_backup_prunes_only_old_carebot_backups(
        store: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, url = store
    folder = tmp_path / "backups"
    folder.mkdir()
    month_ago = time.time() - 31 * 86400
    old = [folder / "carebot-2026-01-01T033000Z.sqlite3", folder / "carebot-2026-01-01.dump",
           folder / "before-restore-2026-01-01T033000Z.sqlite3"]
    kept = [folder / "carebot-2026-12-01T033000Z.sqlite3", folder / "notes.txt",
            folder / "pre-upgrade"]
    for file in old + kept[:2]:
        file.write_bytes(b"x")
    kept[2].mkdir()
    for file in [*old, kept[1]]:
        os.utime(file, (month_ago, month_ago))
    code, out = carebot(monkeypatch, capsys, url, "backup", "--to", str(folder),
                        "--keep-days", "30")
    assert code == 0, out
    assert f"removed 3 backup(s) older than 30 days from {folder}" in out
    assert not any(file.exists() for file in old)
    assert all(file.exists() for file in kept)
    assert len(list(folder.glob("carebot-*.sqlite3"))) == 2  # the new one and December's


def test_restore_refuses_what_is_no_backup_of_this_database(
        store: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, url = store
    dump = tmp_path / "carebot-2026-11-02T033000Z.dump"
    dump.write_bytes(b"PGDMP...")
    code, out = carebot(monkeypatch, capsys, url, "restore", str(dump))
    assert code == 1 and f"{dump} is not a SQLite backup (.sqlite3)" in out, out
    torn = tmp_path / "carebot-2026-11-02T033000Z.sqlite3"
    torn.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    code, out = carebot(monkeypatch, capsys, url, "restore", str(torn))
    assert code == 1 and f"carebot restore: {torn}" in out, out
    [saved] = sorted(tmp_path.glob("before-restore-*.sqlite3"))  # the way back, named
    assert f"what it held is in {saved} (carebot restore {saved})" in out, out
    assert "Traceback" not in out
    assert sqlite_rows(path, "vehicle") == 8  # untouched


def test_backup_of_a_missing_database_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "backups"
    code, out = carebot(monkeypatch, capsys, f"sqlite://{tmp_path}/none.sqlite3", "backup",
                        "--to", str(folder))
    assert code == 1 and "does not exist" in out, out
    assert list(folder.iterdir()) == []


def test_carebot_creates_its_sqlite_file_and_folder_private(tmp_path: Path) -> None:
    """Whatever the umask (a hand-run ``carebot migrate``): folder 0750, file 0640."""
    old = os.umask(0o022)
    try:
        _ensure_sqlite_dir(f"sqlite://{tmp_path}/lib/carebot/carebot.sqlite3")
    finally:
        os.umask(old)
    assert mode(tmp_path / "lib" / "carebot") == 0o750
    assert mode(tmp_path / "lib" / "carebot" / "carebot.sqlite3") == 0o640


# --------------------------------------------------------------------------- PostgreSQL

async def _admin(*sql: str) -> None:
    conn = await asyncpg.connect(PG_SERVER_URL.replace("postgres://", "postgresql://", 1),
                                 timeout=3)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    """A scratch database owned by a scratch login role with a password (no superuser, as
    at a dealer's); (its URL with the password, the password)."""
    name = f"carebot_backup_{os.getpid()}_{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_hex(8)}"
    try:
        asyncio.run(_admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'",
                           f'CREATE DATABASE "{name}" OWNER {name}'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc!r}")
    host = PG_SERVER_URL.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgres://{name}:{password}@{host}/{name}", password
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                           f"DROP ROLE IF EXISTS {name}"))


async def _pg_rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def test_postgres_backup_and_restore_round_trip_as_a_plain_role(
        pg_database: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, password = pg_database
    said = []
    for argv in (["migrate"], ["import", "deliveries", str(DELIVERIES)]):
        code, out = carebot(monkeypatch, capsys, url, *argv)
        said.append(out)
        assert code == 0, out
    folder = tmp_path / "backups"
    code, out = carebot(monkeypatch, capsys, url, "backup", "--to", str(folder))
    said.append(out)
    assert code == 0, out
    [dump] = sorted(folder.glob("carebot-*.dump"))
    assert mode(dump) == 0o640 and dump.read_bytes()[:5] == b"PGDMP"
    counts = out.strip().rsplit(": ", 1)[1]
    assert "vehicle 8" in counts, out

    asyncio.run(_admin_on(url, "DELETE FROM touchpoint", "DELETE FROM vehicle",
                          "CREATE TABLE made_later (id int)"))  # a later migration's table
    code, out = carebot(monkeypatch, capsys, url, "restore", str(dump))
    said.append(out)
    assert code == 0, out
    assert asyncio.run(_pg_rows(url, "vehicle")) == 8
    assert counts in out.splitlines()[-2]  # the restored counts: the backup's
    assert len(list(folder.glob("before-restore-*.dump"))) == 1
    code, out = carebot(monkeypatch, capsys, url, "migrate")  # the schema is whole again
    said.append(out)
    assert code == 0 and "nothing to apply" in out, out
    assert password not in "".join(said)
    assert "***" in said[2]  # the URL is shown masked


async def _admin_on(url: str, *sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()
