"""No raw i18n key on any page, in Japanese and in English.

Every page a shopper, advisor, supervisor or admin opens is walked in a real browser with the
demo data, through the states people reach (the booking steps up to "check your mail" and the
confirmed booking, the widget's queue, the call's preview and the call itself, an offer and a
held consultation in the console, a customer's timeline with satisfaction-survey entries, the
supervisor's board, refunds, every admin page, the demo outbox). Each visible text node, and
each aria-label / title / placeholder / alt, is checked for text that looks like a key of the
i18n tables (a dotted lower-case name whose first part names a table area, e.g.
``survey.tl_csat``) or a placeholder left unfilled (``{name}``): what a page shows when its
script asks for a key its page never loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk.demo import data
from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.kit.db import Database
from livedesk.models import Consultation, ConsultationStatus, Role, Shopper
from livedesk.settings import Settings
from livedesk.surveys.satisfaction import LinkTokens

WEB = Path(__file__).resolve().parents[2] / "web"
STAFF = {s.role: s for s in reversed(data.STAFF)}  # the first of each role
ADVISOR = next(s for s in data.STAFF if s.key == "sakura-tanaka")


def i18n_keys() -> set[str]:
    keys: set[str] = set()
    for table in WEB.glob("*/i18n/*.json"):
        keys.update(json.loads(table.read_text()))
    return keys


KEYS = i18n_keys()
AREAS = {key.split(".", 1)[0] for key in KEYS if "." in key}
# A dotted lower-case identifier standing alone (not part of an address, path or file name).
KEYLIKE = re.compile(r"(?<![\w@/.:\-])([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?![\w@/\-]|\.\w)")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")

# Every visible text node and labelling attribute of the document, with where it was.
COLLECT = """() => {
  const out = [];
  const where = (el) => {
    const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).join('.') : '';
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (classes ? '.' + classes : '');
  };
  const shown = (el) => {
    const select = el.closest('select');
    return (select ?? el).checkVisibility({ visibilityProperty: true });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    const parent = node.parentElement;
    // <code> is for names people type or match as they are (a webhook's event type).
    if (!text || !parent || parent.closest('script, style, template, noscript, code')) continue;
    if (shown(parent)) out.push([text, where(parent)]);
  }
  const attrs = ['aria-label', 'title', 'placeholder', 'alt', 'aria-description'];
  for (const el of document.body.querySelectorAll(attrs.map((a) => `[${a}]`).join(', '))) {
    if (!shown(el)) continue;
    for (const attr of attrs) {
      const value = el.getAttribute(attr);
      if (value) out.push([value, `${where(el)}[${attr}]`]);
    }
  }
  out.push([document.title, 'title']);
  return out;
}"""


def raw_keys(texts: list[list[str]]) -> list[tuple[str, str]]:
    found = []
    for text, where in texts:
        for match in KEYLIKE.findall(text):
            if match in KEYS or match.split(".", 1)[0] in AREAS:
                found.append((match, where))
        for match in PLACEHOLDER.findall(text):
            found.append((match, where))
    return found


class Walk:
    """Collects what each visited page state shows, so one run reports every raw key."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.problems: list[tuple[str, str, str]] = []
        self.visited: list[str] = []

    async def check(self, page: Page, state: str) -> None:
        await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")
        assert await page.evaluate("document.documentElement.lang") == self.lang, state
        self.visited.append(state)
        for frame in page.frames:
            if frame.is_detached():
                continue
            texts = await frame.evaluate(COLLECT)
            self.problems += [(state, key, where) for key, where in raw_keys(texts)]


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    # The demo's way: mails wait in the outbox at /demo/mail.
    return e2e_settings.model_copy(update={"mail_outbox": True, "offer_timeout_seconds": 90.0})


async def staff_page(new_page: Any, server: str, email: str, path: str, locale: str) -> Page:
    page: Page = await new_page(server + "/staff/", locale=locale)
    response = await page.request.post(
        server + "/api/v1/auth/login", data={"email": email, "password": DEMO_PASSWORD}
    )
    assert response.ok, await response.text()
    await page.goto(server + path)
    return page


async def rated_demo_shopper(e2e_settings: Settings) -> tuple[str, str]:
    """A satisfaction link of a past demo consultation, and its shopper's e-mail."""
    db = Database(e2e_settings.effective_database_url)
    try:
        async with db.read() as session:
            row = (
                await session.execute(
                    select(Consultation.id, Shopper.email)
                    .join(Shopper, Shopper.id == Consultation.shopper_id)
                    .where(
                        Consultation.status == ConsultationStatus.CLOSED,
                        Consultation.accepted_at.is_not(None),
                        Shopper.email.is_not(None),
                    )
                    .limit(1)
                )
            ).one()
    finally:
        await db.dispose()
    token = LinkTokens(e2e_settings.secret_key.get_secret_value()).issue(row[0])
    assert row[1]
    return token, row[1]


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_no_page_shows_a_raw_key(server: str, new_page: Any, e2e_settings: Settings, lang: str) -> None:
    locale = "ja-JP" if lang == "ja" else "en-US"
    walk = Walk(lang)

    signed_out = await new_page(server + "/staff/", locale=locale)
    await expect(signed_out.locator("#signin-form")).to_be_visible()
    await walk.check(signed_out, "staff sign-in")

    console = await staff_page(new_page, server, ADVISOR.email, "/staff/", locale)
    await expect(console.locator("#presence-state")).to_have_attribute("data-status", "available")
    await expect(console.locator("#calendar-heading")).to_be_visible()
    await walk.check(console, "console idle with calendar")

    shop = await new_page(server + "/demo/shop", locale=locale)
    await walk.check(shop, "demo shop")

    shopper = await new_page(server + "/widget/", locale=locale)
    await expect(shopper.locator("#view-start")).to_be_visible()
    await expect(shopper.locator("#advisor-list .advisor-item").first).to_be_visible()
    await walk.check(shopper, "widget start")
    await shopper.locator("#talk-video").click()
    await expect(shopper.locator("#view-queue")).to_be_visible()
    await walk.check(shopper, "widget queue")

    card = console.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    await walk.check(console, "console offer")
    cid = await card.get_attribute("data-consultation-id")
    await card.locator("button").first.click()
    workspace = console.locator(f'.workspace[data-consultation-id="{cid}"]')
    await expect(workspace).to_be_visible()

    await shopper.wait_for_url(re.compile(r"/call/\?c="), timeout=15_000)
    await expect(shopper.locator("#join-button")).to_be_enabled(timeout=15_000)
    await walk.check(shopper, "call preview")
    await shopper.locator("#join-button").click()
    await expect(shopper.locator("#view-call")).to_be_visible()
    await expect(workspace.locator(".call")).to_be_visible(timeout=15_000)
    await walk.check(shopper, "call")
    await walk.check(console, "console workspace in a call")
    await shopper.locator("#end-button").click()
    await expect(shopper.locator("#view-ended")).to_be_visible()
    await walk.check(shopper, "call ended with the satisfaction survey")
    await expect(workspace.locator("textarea").first).to_be_visible(timeout=10_000)
    await walk.check(console, "console wrap-up")

    token, email = await rated_demo_shopper(e2e_settings)
    csat = await new_page(server + f"/surveys/csat#t={token}", locale=locale)
    form = csat.locator("[data-csat]")
    await expect(form).to_be_visible()
    # The demo shoppers' language is Japanese: the mailed page speaks it whatever the browser.
    await csat.locator("[data-lang-switch] button[data-lang='" + lang + "']").first.click()
    await walk.check(csat, "satisfaction survey by mail")
    await form.locator('[data-question="csat"] input[type=radio]').nth(3).check()
    await form.locator('[data-question="nps"] input[type=radio]').nth(9).check()
    await form.locator("button[type=submit], button").last.click()
    await expect(csat.locator(".csat-done")).to_be_visible()
    await walk.check(csat, "satisfaction survey answered")

    history = await staff_page(new_page, server, ADVISOR.email, "/history/?q=" + email.split("@")[0], locale)
    await history.locator("#search-results button").first.click()
    timeline = history.locator("#customer [data-part=timeline] > li")
    await expect(timeline.first).to_be_visible()
    await expect(history.locator('#customer .tl-item[data-kind="survey"]').first).to_be_visible()
    await walk.check(history, "customer timeline with survey entries")

    for path in ("/supervisor/", "/payments/refunds.html"):
        page = await staff_page(new_page, server, STAFF[Role.SUPERVISOR].email, path, locale)
        await page.wait_for_load_state("networkidle")
        await walk.check(page, path)
    for path in (
        "/admin/",
        "/admin/catalogue.html",
        "/admin/consultation-types.html",
        "/admin/integrations.html",
        "/admin/surveys.html",
    ):
        page = await staff_page(new_page, server, STAFF[Role.ADMIN].email, path, locale)
        await page.wait_for_load_state("networkidle")
        await walk.check(page, path)

    booking = await new_page(server + "/booking/", locale=locale)
    await expect(booking.locator("#view-type")).to_be_visible()
    await walk.check(booking, "booking: type")
    await booking.locator("#type-list button.choice").first.click()
    await expect(booking.locator("#view-advisor")).to_be_visible()
    await walk.check(booking, "booking: advisor")
    await booking.locator("#advisor-list button.choice").nth(1).click()
    await expect(booking.locator("button.slot").first).to_be_visible()
    await walk.check(booking, "booking: slot")
    await booking.locator("button.slot").first.click()
    await expect(booking.locator("#view-contact:not([hidden]), #view-survey:not([hidden])")).to_be_visible()
    if await booking.locator("#view-survey").is_visible():
        await walk.check(booking, "booking: survey")
        await booking.locator("#survey-next").click()
    await expect(booking.locator("#view-contact")).to_be_visible()
    await booking.locator("#contact-submit").click()  # no address: the field's error
    await expect(booking.locator("#contact-email-error")).to_be_visible()
    await walk.check(booking, "booking: contact with an error")
    address = f"raw-keys-{lang}@example.com"
    await booking.locator("#contact-email").fill(address)
    await booking.locator("#contact-submit").click()
    await expect(booking.locator("#view-pending")).to_be_visible()
    await walk.check(booking, "booking: pending")

    outbox = await new_page(server + "/demo/mail", locale=locale)
    mail = outbox.locator(".outbox-mail", has_text=address).first
    await expect(mail).to_be_visible(timeout=15_000)
    await walk.check(outbox, "demo mail outbox")
    confirm_url = await mail.locator('a[href*="/booking/?confirm="]').first.get_attribute("href")
    assert confirm_url
    # The mail names the public address; this server runs on a port of its own.
    confirm = await new_page(server + confirm_url[confirm_url.index("/booking/") :], locale=locale)
    await expect(confirm.locator("#view-confirm")).to_be_visible()
    await walk.check(confirm, "booking: confirm")
    await confirm.locator("#confirm-button").click()
    await expect(confirm.locator("#view-done")).to_be_visible()
    await walk.check(confirm, "booking: confirmed")
    forged = await new_page(server + "/booking/?manage=forged-token-0000000000", locale=locale)
    await expect(forged.locator("#error")).to_be_visible()
    await walk.check(forged, "booking: forged link")

    assert walk.problems == [], "\n".join(f"{state}: {key} in {where}" for state, key, where in walk.problems)
    assert len(walk.visited) >= 28
