"""Typed keys for what the composition root puts on the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from livedesk.kit.db import Database
from livedesk.kit.ratelimit import RateLimits
from livedesk.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def db_of(request: web.Request) -> Database:
    return request.app[DB]
