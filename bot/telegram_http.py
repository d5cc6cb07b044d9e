"""python-telegram-bot's HTTP requests over aiohttp instead of httpx.

PTB sends every Bot API call through a ``BaseRequest``; its default, ``HTTPXRequest``, costs
about 1.9 ms of CPU per call here, this one about 0.7 ms (measured against the emulator:
``sendMessage``, keep-alive connections). An owner's reply takes two or three calls (answer
the button, tick the keyboard, say thank you), so under a burst of replies the HTTP client
was the largest cost of the whole process. aiohttp is already a dependency (the web side).

Same behaviour as ``HTTPXRequest`` where carebot relies on it: form-encoded parameters, or
multipart when files are uploaded; per-call timeouts (``getUpdates`` long polls pass a longer
read timeout); a timeout raises ``TimedOut``, any other transport failure ``NetworkError``;
status codes and bodies are judged by PTB's ``BaseRequest.post`` as before.

Every call's outcome (the HTTP status, or ``timeout`` / ``network`` when no answer came) is
told to an optional observer, :class:`bot.delivery.health.TelegramHealth`: the one place that
knows whether Telegram is reachable. The observer gets the method's name, never the URL
(it carries the bot token).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# httpcore (still used by PTB's own HTTPXRequest, e.g. for file downloads elsewhere) asks for
# ``sniffio`` on every request; when it is not installed each ask is a failed import that
# scans sys.path. Recording it as absent makes that answer instant.
if "sniffio" not in sys.modules:
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class CallObserver(Protocol):
    """Told how each Bot API call ended (``bot.delivery.health.TelegramHealth``)."""

    def answered(self, method: str, status: int) -> None: ...

    def failed(self, method: str, kind: str) -> None: ...


def _method(url: str) -> str:
    """``getUpdates`` of ``https://api.telegram.org/bot<token>/getUpdates``."""
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def _default(value: object) -> bool:
    """PTB passes a ``DefaultValue`` (``BaseRequest.DEFAULT_NONE``) for "not given"."""
    return isinstance(value, type(BaseRequest.DEFAULT_NONE))


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` with one ``aiohttp.ClientSession`` (keep-alive connection pool)."""

    __slots__ = ("_connect_timeout", "_media_write_timeout", "_observer", "_pool_size",
                 "_pool_timeout", "_read_timeout", "_session", "_write_timeout")

    def __init__(self, *, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 observer: CallObserver | None = None) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._observer = observer

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        read = self._read_timeout if _default(read_timeout) else read_timeout
        write = (self._media_write_timeout if files else self._write_timeout) \
            if _default(write_timeout) else write_timeout
        connect = self._connect_timeout if _default(connect_timeout) else connect_timeout
        pool = self._pool_timeout if _default(pool_timeout) else pool_timeout
        # aiohttp has no separate write timeout: the body is small or counted in sock_read's
        # first wait; "connect" covers waiting for a pooled connection plus connecting.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect,
            connect=None if connect is None or pool is None else connect + pool,
            sock_read=None if read is None else read + (write or 0.0) * bool(files),
        )
        data: aiohttp.FormData | dict[str, str] | None = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename or name, content_type=mimetype)
            data = form
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as resp:
                answer = resp.status, await resp.read()
        except TimeoutError as err:
            self._tell(url, None, "timeout")
            raise TimedOut from err
        except aiohttp.ClientError as err:
            self._tell(url, None, "network")
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
        self._tell(url, answer[0], "")
        return answer

    def _tell(self, url: str, status: int | None, kind: str) -> None:
        if self._observer is None:
            return
        if status is None:
            self._observer.failed(_method(url), kind)
        else:
            self._observer.answered(_method(url), status)
