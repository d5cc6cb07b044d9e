"""PTB over aiohttp (``bot.telegram_http``): uploads, downloads, timeouts, network errors."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.telegram_http import AiohttpRequest


async def test_upload_and_download_through_the_emulator(emulator: Any) -> None:
    from bot.sandbox.emulator import _TINY_JPEG

    emulator.user(5)
    bot = Bot(emulator.token, base_url=f"{emulator.api_url}/bot",
              base_file_url=f"{emulator.api_url}/file/bot", request=AiohttpRequest())
    async with bot:
        sent = await bot.send_message(5, "您好 <b>", reply_markup=None)
        assert sent.text == "您好 <b>"
        photo = await bot.send_photo(5, _TINY_JPEG, caption="照片")  # multipart upload
        assert photo.caption == "照片"
        file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == _TINY_JPEG


async def test_a_slow_answer_is_a_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.4)  # answers after the client gave up (read_timeout 0.2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
    finally:
        await request.shutdown()
        await runner.cleanup()


async def test_nobody_listening_is_a_network_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
        assert not isinstance(caught.value, TimedOut)
    finally:
        await request.shutdown()
    with pytest.raises(NetworkError, match="not initialized"):  # shut down (as with httpx)
        await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
