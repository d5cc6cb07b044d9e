"""Console page: reports (issue 7). Routes are added in ``add_routes``."""

from __future__ import annotations

from aiohttp import web


def add_routes(router: web.UrlDispatcher) -> None:
    """Nothing served yet."""
