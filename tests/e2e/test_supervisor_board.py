"""The supervisor board in a real browser against the real app with the demo data: sign-in,
the live board (advisors, queue, calls, today's figures, charts with a table alternative)
following changes made by real Socket.IO clients, a long-wait alert, the team filter, both
languages, a phone width, axe-clean; and an advisor is told the board is not theirs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.models import Role
from livedesk.settings import Settings
from tests.conftest import SocketClient
from tests.e2e.conftest import axe_violations, screenshot

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUPERVISOR = next(s for s in data.STAFF if s.role is Role.SUPERVISOR)
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")
ADVISORS = [s for s in data.STAFF if s.role is Role.ADVISOR]
LONG_WAIT_SECONDS = 2


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(update={"alert_long_wait_seconds": LONG_WAIT_SECONDS})


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(await screenshot(page, name), SCREENSHOTS / f"{name}.png")


async def assert_axe_clean(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def sign_in(page: Page, email: str) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
    await expect(page.locator("#signin-panel")).to_be_visible()
    await page.fill("#signin-email", email)
    await page.fill("#signin-password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")


async def staff_socket(server: str, email: str) -> SocketClient:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server}/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        cookie = response.cookies["livedesk_session"].value
    sock = SocketClient("/staff")
    await sock.connect(server, headers={"Cookie": f"livedesk_session={cookie}"})
    return sock


async def shopper_socket(server: str) -> SocketClient:
    async with aiohttp.ClientSession() as http, http.post(f"{server}/api/v1/visitors", json={}) as response:
        assert response.status == 201, await response.text()
        token = (await response.json())["token"]
    sock = SocketClient("/shopper")
    await sock.connect(server, auth={"token": token})
    return sock


def advisor_row(page: Page, name: str) -> Any:
    return page.locator("#advisor-rows tr", has=page.locator("th", has_text=name))


async def test_the_board_follows_the_floor(server: str, new_page: Any) -> None:
    # A wall screen.
    page: Page = await new_page(server + "/supervisor/", width=1600, height=1000)
    await assert_axe_clean(page)
    await shot(page, "supervisor-signin-desktop")
    await sign_in(page, SUPERVISOR.email)
    await expect(page.locator("#board")).to_be_visible()
    await expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#advisor-rows tr")).to_have_count(len(ADVISORS))
    # English pages show the advisors' English names.
    row = advisor_row(page, ADVISOR.display_name_en)
    staff_id = await row.get_attribute("data-staff-id")
    row = page.locator(f"#advisor-rows tr[data-staff-id='{staff_id}']")
    await expect(row).to_have_attribute("data-status", "offline")
    await expect(page.locator("#queue-empty")).to_be_visible()

    opened: list[SocketClient] = []
    try:
        # The advisor signs in elsewhere: the board shows them available, at once.
        advisor = await staff_socket(server, ADVISOR.email)
        opened.append(advisor)
        await expect(row).to_have_attribute("data-status", "available")

        # A shopper nominates them: the queue shows it, then a long-wait alert.
        shopper = await shopper_socket(server)
        opened.append(shopper)
        await advisor.ok("presence.set", {"status": "away"})
        await expect(row).to_have_attribute("data-status", "away")
        joined = await shopper.ok(
            "queue.join",
            {
                "kind": "video",
                "nominated_advisor_id": staff_id,
                "if_nominated_unavailable": "wait",
            },
        )
        queue_row = page.locator(f"#queue-rows tr[data-consultation-id='{joined['id']}']")
        await expect(queue_row).to_contain_text(ADVISOR.display_name_en)
        alert = page.locator(f"#alert-list li[data-consultation-id='{joined['id']}']")
        await expect(alert).to_have_attribute(
            "data-kind", "long_wait", timeout=LONG_WAIT_SECONDS * 1000 + 3000
        )
        await expect(queue_row).to_have_attribute("data-alert", "true")

        # Another shopper gives up waiting: abandoned, counted in today's figures.
        leaver = await shopper_socket(server)
        opened.append(leaver)
        left = await leaver.ok("queue.join", {"kind": "chat"})
        await expect(page.locator(f"#queue-rows tr[data-consultation-id='{left['id']}']")).to_be_visible()
        await leaver.ok("queue.leave", {"consultation_id": left["id"]})
        await expect(page.locator(f"#queue-rows tr[data-consultation-id='{left['id']}']")).to_have_count(0)
        abandoned = page.locator(".kpi", has=page.locator("dt", has_text="Abandoned")).locator(".kpi-value")
        await expect(abandoned).to_have_text("1")

        # The advisor comes back and answers: a live call, the advisor in a call, figures move.
        await advisor.ok("presence.set", {"status": "available"})
        await advisor.wait_for("offer.new")
        await advisor.ok("offer.accept", {"consultation_id": joined["id"]})
        await expect(row).to_have_attribute("data-status", "busy")
        await expect(row.locator("td").nth(2)).to_contain_text("Video call")
        await expect(page.locator(f"#call-rows tr[data-consultation-id='{joined['id']}']")).to_contain_text(
            ADVISOR.display_name_en
        )
        await expect(page.locator("#queue-empty")).to_be_visible()
        await expect(page.locator("#alert-list li")).to_have_count(0)
        answered = page.locator(".kpi", has=page.locator("dt", has_text="Answered")).locator(".kpi-value")
        await expect(answered).not_to_have_text("0")
        await expect(page.locator("#kpi-list")).to_have_attribute("aria-busy", "false")

        # Charts have a text alternative and a table of their numbers.
        label = await page.locator("#volume-chart").get_attribute("aria-label")
        assert label
        assert "answered" in label
        assert await page.locator("#volume-chart canvas").count() == 1
        assert await page.locator("#volume-rows tr").count() >= 13
        await assert_axe_clean(page)
        await shot(page, "supervisor-desktop")
        await page.locator("#volume-chart").scroll_into_view_if_needed()
        await shot(page, "supervisor-charts-desktop")
        await page.locator("#board-title").scroll_into_view_if_needed()

        # The team filter: another team's advisors leave the table.
        teams = await page.locator("#team-filter option").all_text_contents()
        assert len(teams) == 1 + len(data.TEAMS)
        team_of_advisor = ADVISOR.team
        other = next(t for t in data.TEAMS if t.name != team_of_advisor)
        await page.select_option("#team-filter", label=other.name)
        in_other = [s for s in ADVISORS if s.team == other.name]
        await expect(page.locator("#advisor-rows tr")).to_have_count(len(in_other))
        await expect(page.locator("#call-rows tr")).to_have_count(0)
        await page.select_option("#team-filter", index=0)
        await expect(page.locator("#advisor-rows tr")).to_have_count(len(ADVISORS))

        # Japanese.
        await page.click("[data-lang-switch] button[data-lang=ja]")
        await expect(page.locator("#board-title")).to_have_text("ライブボード")
        await expect(row.locator(".state-badge")).to_have_text("通話中")
        await expect(row.locator("th")).to_have_text(ADVISOR.display_name)
        await assert_axe_clean(page)
        await shot(page, "supervisor-desktop-ja")
    finally:
        for sock in opened:
            await sock.close()


async def test_phone_width_and_sign_out(server: str, new_page: Any) -> None:
    page: Page = await new_page(server + "/supervisor/", width=390, height=844)
    await sign_in(page, SUPERVISOR.email)
    await expect(page.locator("#advisor-rows tr")).to_have_count(len(ADVISORS))
    await expect(page.locator("#kpi-list")).to_have_attribute("aria-busy", "false")
    await assert_axe_clean(page)
    await shot(page, "supervisor-phone")
    # Signing out ends the board: back to the sign-in form.
    await page.click("#signout")
    await expect(page.locator("#signin-panel")).to_be_visible()
    await expect(page.locator("#board")).to_be_hidden()


async def test_an_advisor_is_told_the_board_is_not_theirs(server: str, new_page: Any) -> None:
    page: Page = await new_page(server + "/supervisor/")
    await sign_in(page, ADVISOR.email)
    await expect(page.locator("#forbidden-panel")).to_be_visible()
    await expect(page.locator("#board")).to_be_hidden()
    await expect(page.locator("#forbidden-text")).to_contain_text(ADVISOR.display_name)
    await assert_axe_clean(page)
