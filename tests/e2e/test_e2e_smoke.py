"""The e2e plumbing works: Chromium starts, the demo app serves, fake media flows, axe runs."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import axe_violations


async def test_chromium_reaches_the_app_with_a_fake_camera(server: str, new_page: Any) -> None:
    page = await new_page(server + "/staff/")
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    assert await page.title()
    tracks = await page.evaluate(
        """async () => {
            const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
            const kinds = stream.getTracks().map(t => t.kind).sort();
            stream.getTracks().forEach(t => t.stop());
            return kinds;
        }"""
    )
    assert tracks == ["audio", "video"]
    assert await axe_violations(page) == []


async def test_denied_camera_is_denied(server: str, new_page: Any) -> None:
    page = await new_page(server + "/staff/", media=False)
    error = await page.evaluate(
        """async () => {
            try { await navigator.mediaDevices.getUserMedia({video: true}); return "granted"; }
            catch (e) { return e.name; }
        }"""
    )
    assert error == "NotAllowedError"
