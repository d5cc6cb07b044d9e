"""Bearer-token checks of the machine routes: the intake and campaign API
(``CAREBOT_API_KEY``) and the ``/metrics`` scrape (``CAREBOT_METRICS_TOKEN``). People sign in
to the console instead (``bot.web.console``)."""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.web.keys import SERVICES


def bearer_matches(request: web.Request, expected: str) -> bool:
    """Does the request carry ``Authorization: Bearer <expected>``? Compared in constant
    time; never true for an empty ``expected`` (a key not configured opens nothing)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


def api_key_ok(request: web.Request) -> bool:
    """The API's bearer key (``CAREBOT_API_KEY``): intake and campaigns."""
    return bearer_matches(request, request.app[SERVICES].settings.api_key)
