"""The collector settings ``livedesk serve`` applies (kit/gc_policy.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from aiohttp import web

from livedesk.kit import gc_policy


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restored")
def test_serving_collects_young_objects_less_often_and_freezes_what_startup_built() -> None:
    app = web.Application()
    gc_policy.apply(app)
    assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
    frozen_before = gc.get_freeze_count()
    built_at_startup = [{"route": i} for i in range(1000)]
    for callback in app.on_startup:
        asyncio.run(callback(app))
    assert gc.get_freeze_count() >= frozen_before + len(built_at_startup)
