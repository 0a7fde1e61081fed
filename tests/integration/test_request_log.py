"""The request log line tells the status the client got.

A file response decides its status as it is prepared, after the middleware has returned: the
log said 200 for a missing page file (404), a revalidated one (304) and an out-of-range
``Range`` (416)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from livedesk.kit import http


class _Lines:
    """A stand-in for the module's structlog logger that keeps what it is told (structlog's
    own capture cannot see a logger cached after another test configured logging)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    warning = error = exception = info


@pytest.fixture
def capture_logs(monkeypatch: pytest.MonkeyPatch) -> Any:
    @contextmanager
    def capture() -> Iterator[list[dict[str, Any]]]:
        recorder = _Lines()
        with monkeypatch.context() as patch:
            patch.setattr(http, "log", recorder)
            yield recorder.lines

    return capture


def _lines(logs: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [line for line in logs if line.get("event") == "request" and line.get("path") == path]


async def test_a_missing_static_file_is_logged_as_404(
    client: TestClient[Any, Any], capture_logs: Any
) -> None:
    with capture_logs() as logs:
        response = await client.get("/shared/no-such-module.js")
        assert response.status == 404
    [line] = _lines(logs, "/shared/no-such-module.js")
    assert line["status"] == 404
    assert line["ms"] >= 0


async def test_revalidated_and_ranged_files_log_what_was_sent(
    client: TestClient[Any, Any], capture_logs: Any
) -> None:
    first = await client.get("/shared/dom.js")
    assert first.status == 200
    etag = first.headers["ETag"]
    with capture_logs() as logs:
        again = await client.get("/shared/dom.js", headers={"If-None-Match": etag})
        assert again.status == 304
        ranged = await client.get("/shared/dom.js", headers={"Range": "bytes=999999999-"})
        assert ranged.status == 416
    assert [line["status"] for line in _lines(logs, "/shared/dom.js")] == [304, 416]


async def test_an_api_answer_is_logged_once_with_its_status(
    client: TestClient[Any, Any], capture_logs: Any
) -> None:
    with capture_logs() as logs:
        response = await client.get("/api/v1/no-such-thing")
        assert response.status == 404
        ok = await client.get("/healthz")
        assert ok.status == 200
    assert [line["status"] for line in _lines(logs, "/api/v1/no-such-thing")] == [404]
    assert [line["status"] for line in _lines(logs, "/healthz")] == [200]
