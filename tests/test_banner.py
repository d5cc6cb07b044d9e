"""The start-up banner reaches a pipe (systemd's journal) while carebot runs, not only at exit
(issue 20 point 4): no PYTHONUNBUFFERED here, on purpose."""

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest


@pytest.mark.asyncio
async def test_first_line_arrives_while_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAREBOT_") and k != "PYTHONUNBUFFERED"}
    env["CAREBOT_DATABASE_URL"] = f"sqlite://{tmp_path / 'c.sqlite3'}"
    env["CAREBOT_LANGUAGE"] = "en"  # the line the test reads
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        env["CAREBOT_WEB_PORT"] = str(s.getsockname()[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert b"CAREBOT_BOT_TOKEN" in line, line
        assert proc.returncode is None  # still running: the line did not wait for the exit
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
