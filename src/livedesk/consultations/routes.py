"""HTTP routes of the consultations capability (chat files)."""

from __future__ import annotations

from aiohttp import web


def setup_routes(app: web.Application) -> None:
    """Chat file upload and download are added here."""
