"""HTTP routes of this capability."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    """Filled in as the capability grows."""
