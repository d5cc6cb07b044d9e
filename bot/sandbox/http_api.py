"""The emulator's HTTP side: ``/bot<token>/<method>`` as Telegram answers it, file downloads,
the sandbox's stats page, and the failures a test injects with ``fail_next``.

A request is authorised by its token, its method named case-insensitively, its parameters
read from the query, a JSON body or a multipart form (``attach://`` uploads resolved),
coerced and checked against the Bot API schema, then handed to the method's implementation.
Every refusal is Telegram's JSON error body; an emulator bug answers 500, never hangs the bot.
"""

from __future__ import annotations

import hmac
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ApiError, bad_request
from .schema import (
    UploadedFile,
    ValidationError,
    canonical_method,
    coerce_params,
    validate_params,
)

if TYPE_CHECKING:
    from .emulator import TelegramEmulator

logger = logging.getLogger(__name__)

Params = dict[str, Any]
#: Bot API method name -> its implementation, taking the checked parameters.
MethodTable = dict[str, Callable[[Params], Awaitable[Any]]]


@dataclass
class Injected:
    """One failure asked for with ``fail_next``, for its next ``remaining`` calls."""

    error_code: int  # 0: no answer at all, the connection is dropped (a network failure)
    description: str
    retry_after: int | None
    remaining: int


class Dropped(Exception):
    """An injected network failure: the request's connection is closed without an answer."""


class Faults:
    """Failures tests asked for, per canonical method, raised after a request is validated."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[Injected]] = {}

    def add(
        self, method: str, error_code: int, description: str | None, retry_after: int | None,
        count: int,
    ) -> None:
        """Queue a failure; a 429 gets ``retry_after`` 1 and Telegram's wording by default."""
        canonical = canonical_method(method)
        if canonical is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                400: "Bad Request: injected failure",
                403: "Forbidden: bot was blocked by the user",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, f"Error {error_code}: injected failure")
        self.queues.setdefault(canonical, deque()).append(
            Injected(error_code, description, retry_after, count)
        )

    def raise_next(self, method: str) -> None:
        """Raise the failure queued for this call of ``method``, if any."""
        queue = self.queues.get(method)
        if not queue:
            return
        injected = queue[0]
        injected.remaining -= 1
        if injected.remaining <= 0:
            queue.popleft()
        if injected.error_code == 0:
            raise Dropped(method)
        raise ApiError(injected.error_code, injected.description, injected.retry_after)


def _outage(method: str, error_code: int) -> None:
    """An outage's answer to any call: no answer at all (0), or a server error."""
    if error_code == 0:
        raise Dropped(method)
    raise ApiError(error_code, {500: "Internal Server Error", 502: "Bad Gateway",
                                503: "Service Unavailable"}.get(error_code,
                                                                 f"Error {error_code}: outage"))


class HttpApi:
    """The aiohttp handlers of the emulator's routes; state stays in the emulator."""

    def __init__(self, emulator: TelegramEmulator, methods: MethodTable) -> None:
        self.emu = emulator
        self.methods = methods

    def routes(self, app: web.Application) -> None:
        """Add the Bot API, file download and sandbox stats routes to ``app``."""
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self.handle_file)
        app.router.add_get("/_sandbox/bot{token}/stats", self.handle_stats)

    async def handle(self, request: web.Request) -> web.Response:
        """One Bot API call, answered as Telegram answers it."""
        emu = self.emu
        if not self._authorised(request):
            return self.error(ApiError(401, "Unauthorized"))
        method = canonical_method(request.match_info["method"])
        if method is None:
            return self.error(ApiError(404, "Not Found"))
        emu.stats["calls"][method] += 1
        try:
            if emu.outage is not None:  # go_down(): nothing gets through
                _outage(method, emu.outage)
            result = await self._call(method, request)
        except ValidationError as exc:
            return self.error(ApiError(400, exc.description))
        except ApiError as exc:
            return self.error(exc)
        except Dropped:
            emu.stats["errors"][0] += 1
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the bot: the connection is gone
        except Exception:  # an emulator bug must answer, not hang the bot
            logger.exception("emulator failed on %s", method)
            return self.error(ApiError(500, "Internal Server Error: emulator failure"))
        logger.debug("emulator: %s ok", method)
        emu.notify()
        return web.json_response({"ok": True, "result": result})

    async def _call(self, method: str, request: web.Request) -> Any:
        """Read, coerce and check the parameters, then run the method (or answer true)."""
        raw = await self._read_params(request)
        params = coerce_params(method, raw)
        if self.emu.validate:
            validate_params(method, params)
        self.emu.faults.raise_next(method)
        impl = self.methods.get(method)
        if impl is None:
            logger.info("emulator: %s is not emulated; answering true", method)
            return True
        return await impl(params)

    def error(self, error: ApiError) -> web.Response:
        """Telegram's error body with the error's status, counted in ``stats``."""
        stats = self.emu.stats
        if error.error_code == 429:
            stats["429"] += 1
        stats["errors"][error.error_code] += 1
        logger.debug("emulator: %s %s", error.error_code, error.description)
        return web.json_response(error.body(), status=error.error_code)

    def _authorised(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.match_info["token"].encode(), self.emu.token.encode())

    async def _read_params(self, request: web.Request) -> dict[str, object]:
        params: dict[str, object] = dict(request.query)
        if not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise bad_request("can't parse JSON request body") from exc
            if not isinstance(body, dict):
                raise bad_request("JSON request body must be an object")
            params.update(body)
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
        for key, item in list(params.items()):
            if isinstance(item, str) and item.startswith("attach://"):
                part = params.get(item[len("attach://") :])
                if isinstance(part, UploadedFile):
                    params[key] = part
        return params

    async def handle_file(self, request: web.Request) -> web.Response:
        """A file download by file_path, as PTB's ``File.download_*`` asks for it."""
        if not self._authorised(request):
            return self.error(ApiError(401, "Unauthorized"))
        path = request.match_info["path"]
        for stored in self.emu.files.values():
            if stored.file_path == path and stored.data is not None:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return self.error(ApiError(404, "Not Found"))

    async def handle_stats(self, request: web.Request) -> web.Response:
        """Not Telegram's: ``stats_report()`` as JSON, for a bot or benchmark that runs the
        emulator in another process (``python -m bot.sandbox.serve``)."""
        if not self._authorised(request):
            return self.error(ApiError(401, "Unauthorized"))
        return web.json_response(self.emu.stats_report())
