"""The web server's access log (``CAREBOT_ACCESS_LOG=on``; off by default): one line per
request through carebot's log (the same format, ``CAREBOT_LOG_FORMAT``), logger
``bot.web.access_log``.

A line is the client's address (behind a proxy of ``CAREBOT_TRUSTED_PROXIES``, nginx, the
address it forwarded, as the sign-in throttle reads it), the method, the path, the status,
the bytes sent and the time taken. Never the query string (it may carry a token), never
a header, never a body; the webhook's path is written ``<webhook>``
(``CAREBOT_WEBHOOK_URL``'s path may carry a secret segment), and a path that matched no
route ``<no route>`` (a probe, or an old webhook URL with its secret, would otherwise be
written out whole).
"""

from __future__ import annotations

import functools
import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.config import parse_networks
from bot.web.console.signin import Network, client_address
from bot.web.keys import SERVICES, WEBHOOK_PATH

LOGGER = logging.getLogger(__name__)


def safe_path(request: web.BaseRequest) -> str:
    """The request's path as the log may show it (see the module's docstring)."""
    path = request.path
    app = request.app if isinstance(request, web.Request) else None
    if app is not None and WEBHOOK_PATH in app and path == app[WEBHOOK_PATH]:
        return "<webhook>"
    info = request.match_info if isinstance(request, web.Request) else None
    if info is None or info.http_exception is not None:  # no route: a 404 or 405
        return "<no route>"
    return path


@functools.lru_cache(maxsize=4)
def _networks(text: str) -> tuple[Network, ...]:
    return parse_networks(text)


def client(request: web.BaseRequest) -> str:
    """Who asked: the peer, or the client a trusted proxy forwarded."""
    if isinstance(request, web.Request) and SERVICES in request.app:
        trusted = _networks(request.app[SERVICES].settings.trusted_proxies)
        return client_address(request, trusted) or "-"
    return request.remote or "-"


class AccessLog(AbstractAccessLogger):
    """aiohttp's access logger, made safe (see the module's docstring)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse,
            time: float) -> None:
        self.logger.info("%s %s %s %d %dB %.1fms", client(request), request.method,
                         safe_path(request), response.status, response.body_length,
                         time * 1000)
