"""Surveys in a real browser: the shopper fills in the pre-call survey in the widget (errors
per question, keyboard, both languages, axe), the advisor's console shows the answers in the
offer and beside the consultation, and after the advisor ends it the shopper answers the
post-call survey on the call page; the mail link's survey page; the admin's survey page."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from livedesk.demo.seed import DEMO_PASSWORD
from livedesk.demo.surveys import DEMO_SURVEY_ID, show_demo_survey
from livedesk.kit.db import Database
from livedesk.models import Consultation, ConsultationStatus, SatisfactionResponse, SurveyResponse
from livedesk.settings import Settings
from livedesk.surveys.satisfaction import LinkTokens
from tests.e2e.conftest import axe_violations, screenshot

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADVISOR_EMAIL = "sakura.tanaka@hanami.example"
ADMIN_EMAIL = "naoko.kobayashi@hanami.example"


@pytest.fixture
async def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(update={"offer_timeout_seconds": 90.0})


@pytest.fixture
async def db(e2e_settings: Settings, server: str) -> Any:
    database = Database(e2e_settings.effective_database_url)
    yield database
    await database.dispose()


async def shot(page: Page, name: str) -> None:
    path = await screenshot(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


async def ready(page: Page) -> None:
    await page.wait_for_function("document.documentElement.classList.contains('i18n-ready')")


async def assert_axe_clean(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations]


async def console(new_page: Any, server: str) -> Page:
    page: Page = await new_page(server + "/staff/")
    await ready(page)
    await page.fill("#email", ADVISOR_EMAIL)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#presence-state")).to_have_attribute("data-status", "available")
    return page


async def test_shopper_fills_in_the_survey_and_the_advisor_sees_it(
    server: str, new_page: Any, db: Database
) -> None:
    await show_demo_survey(db)
    advisor = await console(new_page, server)

    shopper: Page = await new_page(server + "/widget/")
    await ready(shopper)
    await expect(shopper.locator("#view-start")).to_be_visible()
    await shopper.locator("#talk-chat").click()

    # The survey comes before the queue.
    survey = shopper.locator("#view-survey")
    await expect(survey).to_be_visible()
    await expect(shopper.locator("#survey-view-title")).to_be_focused()
    await expect(survey.locator(".survey-title")).to_have_text("Before your consultation")
    await expect(
        survey.get_by_role("radiogroup", name="What would you like to talk about? (required)")
    ).to_be_visible()
    await assert_axe_clean(shopper)

    # Sending nothing: every problem at once, tied to its question, focus on the first.
    await shopper.locator("#survey-submit").click()
    await expect(shopper.locator("#survey-error")).to_have_text("Please check the answers marked below.")
    topic = survey.locator('[data-question="topic"]')
    await expect(topic.locator(".survey-error")).to_have_text("Please answer this question.")
    consent = survey.locator('[data-question="consent"]')
    await expect(consent.locator(".survey-error")).to_have_text("Please tick this box to continue.")
    await expect(topic.locator("input").first).to_be_focused()
    await expect(topic.locator("input").first).to_have_attribute("aria-invalid", "true")
    await assert_axe_clean(shopper)

    # Keyboard: arrows move within the choices, space ticks the consent.
    await shopper.keyboard.press("Space")
    await expect(survey.get_by_label("Skin care")).to_be_checked()
    await survey.get_by_label("English").check()
    await survey.get_by_label("Anything the advisor should know beforehand?").fill("Dry skin in winter")
    await survey.get_by_label("I agree that my answers are shared with the advisor").focus()
    await shopper.keyboard.press("Space")
    await shot(shopper, "survey-widget")
    await shopper.locator("#survey-submit").click()
    await expect(shopper.locator("#view-queue")).to_be_visible(timeout=10_000)

    # The advisor (skin care, English) is offered it, answers included, before accepting.
    card = advisor.locator(".offer").first
    await expect(card).to_be_visible(timeout=15_000)
    answers = card.locator('[data-part="survey"]')
    await expect(answers).to_contain_text("What would you like to talk about?")
    await expect(answers).to_contain_text("Skin care")
    await expect(answers).to_contain_text("Dry skin in winter")
    await assert_axe_clean(advisor)
    await shot(advisor, "survey-offer")
    cid = await card.get_attribute("data-consultation-id")
    assert cid
    await card.get_by_role("button", name="Accept").click()
    panel = advisor.locator(f'.workspace[data-consultation-id="{cid}"] [data-part="intake"]')
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text("Skin care")
    await expect(panel).to_contain_text("“Before your consultation”, version 1")
    # … and on the shopper's timeline in the customer panel.
    survey_event = advisor.locator(f'.workspace[data-consultation-id="{cid}"] .tl-item[data-kind="survey"]')
    await expect(survey_event).to_contain_text("Answered “Before your consultation” (version 1)")
    await expect(survey_event.locator("dd").first).to_have_text("Skin care")

    async with db.read() as session:
        response = await session.scalar(
            select(SurveyResponse).where(SurveyResponse.consultation_id == uuid.UUID(cid))
        )
        assert response is not None
        assert response.answers == {
            "topic": "skincare",
            "language": "en",
            "note": "Dry skin in winter",
            "consent": True,
        }

    # The shopper is taken to the consultation; the advisor ends it; the post-call survey shows.
    await shopper.wait_for_url(f"**/call/?c={cid}", timeout=15_000)
    await advisor.locator(f'.workspace[data-consultation-id="{cid}"] [data-part="end"]').click()
    csat = shopper.locator("#csat [data-csat]")
    await expect(csat).to_be_visible(timeout=15_000)
    await ready(shopper)
    await csat.get_by_role("button", name="Send feedback").click()
    await expect(csat.locator('[data-question="csat"] .survey-error')).to_have_text(
        "Please answer this question."
    )
    await csat.locator('[data-question="csat"]').get_by_label("5", exact=True).check()
    await csat.locator('[data-question="nps"]').get_by_label("9", exact=True).check()
    await csat.get_by_label("Anything you would like to tell us?").fill("Very kind, thank you")
    await assert_axe_clean(shopper)
    await shot(shopper, "survey-csat-call")
    await csat.get_by_role("button", name="Send feedback").click()
    await expect(shopper.locator(".csat-done")).to_have_text("Thank you for your feedback!")
    # Back on the page later (a reload): it was answered, so it only says thank you.
    await shopper.reload()
    await expect(shopper.locator("#csat .csat-done")).to_have_text("You have already answered — thank you!")
    await expect(shopper.locator("#csat [data-csat]")).to_have_count(0)
    async with db.read() as session:
        rating = await session.scalar(
            select(SatisfactionResponse).where(SatisfactionResponse.consultation_id == uuid.UUID(cid))
        )
        assert rating is not None
        assert (rating.csat, rating.nps, rating.comment, rating.source) == (
            5,
            9,
            "Very kind, thank you",
            "call",
        )


async def test_survey_in_japanese_at_phone_width(server: str, new_page: Any, db: Database) -> None:
    await show_demo_survey(db)
    page: Page = await new_page(server + "/widget/", locale="ja-JP", width=390, height=844)
    await ready(page)
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await page.locator("#talk-video").click()
    survey = page.locator("#view-survey")
    await expect(survey.locator(".survey-title")).to_have_text("ご相談の前に")
    await expect(survey).to_contain_text("どのようなご相談ですか?")
    await page.locator("#survey-submit").click()
    await expect(survey.locator('[data-question="topic"] .survey-error')).to_have_text(
        "この質問にお答えください。"
    )
    # Switching language keeps what was answered.
    await survey.get_by_label("メイクアップ").check()
    await page.click("[data-lang-switch] button[data-lang=en]")
    await expect(survey.locator(".survey-title")).to_have_text("Before your consultation")
    await expect(survey.get_by_label("Make-up")).to_be_checked()
    await page.click("[data-lang-switch] button[data-lang=ja]")
    await assert_axe_clean(page)
    await shot(page, "survey-widget-phone-ja")
    # Back returns to the picker without joining.
    await page.locator("#survey-back").click()
    await expect(page.locator("#view-start")).to_be_visible()


async def test_mail_link_page(server: str, new_page: Any, db: Database, e2e_settings: Settings) -> None:
    async with db.read() as session:
        past = await session.scalar(
            select(Consultation)
            .where(Consultation.status == ConsultationStatus.CLOSED, Consultation.accepted_at.is_not(None))
            .limit(1)
        )
        assert past is not None
        cid = past.id
    token = LinkTokens(e2e_settings.secret_key.get_secret_value()).issue(cid)
    bad: Page = await new_page(server + "/surveys/csat#t=forged")
    await ready(bad)
    await expect(bad.locator("#csat-problem")).to_have_text(
        "This link is not valid. Please use the link in your e-mail."
    )

    page: Page = await new_page(server + f"/surveys/csat#t={token}")
    await ready(page)
    form = page.locator("[data-csat]")
    await expect(form).to_be_visible()
    # The page speaks the shopper's language (the demo shoppers' is Japanese).
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(page.locator("#csat-about")).to_contain_text("とのご相談")
    await form.locator('[data-question="csat"]').get_by_label("4", exact=True).check()
    await form.get_by_label("ご意見・ご感想があればお聞かせください。").fill("Thanks")
    await assert_axe_clean(page)
    await shot(page, "survey-csat-mail")
    await form.get_by_role("button").click()
    await expect(page.locator(".csat-done")).to_be_visible()
    async with db.read() as session:
        rating = await session.scalar(
            select(SatisfactionResponse).where(SatisfactionResponse.consultation_id == cid)
        )
        assert rating is not None
        assert (rating.csat, rating.source) == (4, "mail")
    # Opening the link again says it was answered.
    again: Page = await new_page(server + f"/surveys/csat#t={token}")
    await ready(again)
    await expect(again.locator("#csat-slot")).to_contain_text("すでにご回答いただいています")


async def test_admin_builds_a_survey_shows_it_and_edits_a_new_version(server: str, new_page: Any) -> None:
    # A shopper answered the demo survey (through the API, from their own browser).
    shopper: Page = await new_page(server + "/widget/")
    status = await shopper.evaluate(
        """async (surveyId) => {
          const json = {'Content-Type': 'application/json'};
          const made = await fetch('/api/v1/visitors', {method: 'POST', headers: json, body: '{}'});
          const visit = await made.json();
          const answers = {topic: 'fragrance', note: 'Something light', consent: true};
          const sent = await fetch('/api/v1/intake-responses', {method: 'POST',
            headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + visit.token},
            body: JSON.stringify({survey_id: surveyId, version: 1, answers})});
          return sent.status;
        }""",
        str(DEMO_SURVEY_ID),
    )
    assert status == 201
    page: Page = await new_page(server + "/admin/")
    await ready(page)
    await page.fill("#signin-email", ADMIN_EMAIL)
    await page.fill("#signin-password", DEMO_PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#admin-panel")).to_be_visible()
    await page.get_by_role("link", name="Surveys").click()
    await ready(page)
    await expect(page.locator("#sv-panel")).to_be_visible()
    # The demo's survey is there, shown nowhere until chosen.
    demo_row = page.locator("#sv-rows tr", has_text="Before your consultation")
    await expect(demo_row).to_contain_text("Nowhere")
    # Its answers, with the questions of the version answered.
    await demo_row.get_by_role("button", name="Answers to Before your consultation").click()
    answers = page.locator("#sv-answers")
    await expect(page.locator("#sv-answers-title")).to_be_focused()
    await expect(answers.locator(".sv-answer")).to_have_count(1)
    await expect(answers.locator(".sv-answer")).to_contain_text("version 1")
    await expect(answers.locator(".sv-answer dd").first).to_have_text("Fragrance")
    await expect(answers).to_contain_text("Something light")
    await assert_axe_clean(page)
    await page.get_by_role("button", name="Close").click()
    await expect(answers).to_be_hidden()
    instant = page.get_by_label("Instant calls (talk now)", exact=True)
    await expect(instant).to_have_value("")

    # A refused save says why and keeps the draft.
    await page.get_by_role("button", name="New survey").click()
    await expect(page.locator("#sv-editor-title")).to_be_focused()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#sv-form-alert")).not_to_be_empty()
    await expect(page.locator("#sv-form-details")).to_contain_text("name")

    await page.get_by_label("Name (for staff)").fill("Fragrance finder")
    await page.get_by_label("Title (Japanese)").fill("香りのご相談")
    await page.get_by_label("Title (English)").fill("Find your fragrance")
    editor = page.locator("#sv-editor")
    first = editor.locator(".sv-question").nth(0)
    await first.get_by_label("Key (a-z, 0-9, - and _)").fill("mood")
    await first.get_by_label("Type").select_option("single_choice")
    await first.get_by_label("Label (Japanese)").first.fill("どんな香りがお好みですか?")
    await first.get_by_label("Label (English)").first.fill("Which scents do you like?")
    choices = first.locator(".sv-choice")
    await expect(choices).to_have_count(2)
    for index, (value, ja, en) in enumerate(
        (("floral", "フローラル", "Floral"), ("woody", "ウッディ", "Woody"))
    ):
        choice = choices.nth(index)
        await choice.get_by_label("Value (a-z, 0-9, - and _)").fill(value)
        await choice.get_by_label("Label (Japanese)").fill(ja)
        await choice.get_by_label("Label (English)").fill(en)
        await choice.get_by_label("Route to skill").fill("fragrance")
    await page.get_by_role("button", name="Add a question").click()
    second = editor.locator(".sv-question").nth(1)
    await expect(second.get_by_label("Key (a-z, 0-9, - and _)")).to_be_focused()
    await second.get_by_label("Key (a-z, 0-9, - and _)").fill("consent")
    await second.get_by_label("Type").select_option("consent")
    await second.get_by_label("Required").check()
    await second.get_by_label("Label (Japanese)").fill("回答の共有に同意します")
    await second.get_by_label("Label (English)").fill("I agree to share my answers")
    await assert_axe_clean(page)
    await shot(page, "survey-admin-editor")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#sv-status")).to_have_text("“Fragrance finder” saved as version 1.")

    # Show it before instant calls: the shopper's page gets it.
    await instant.select_option(label="Fragrance finder")
    await page.get_by_role("button", name="Apply for Instant calls (talk now)").click()
    await expect(page.locator("#sv-status")).to_have_text(
        "The survey is now shown before Instant calls (talk now)."
    )
    row = page.locator("#sv-rows tr", has_text="Fragrance finder")
    await expect(row).to_contain_text("Instant calls (talk now)")
    await assert_axe_clean(page)
    await shot(page, "survey-admin")

    # Editing saves version 2; shoppers get it.
    await row.get_by_role("button", name="Edit Fragrance finder").click()
    await expect(page.locator("#sv-editor-hint")).to_contain_text("saving makes version 2")
    await (
        editor.locator(".sv-question")
        .nth(0)
        .get_by_label("Label (English)")
        .first.fill("Which scents suit you?")
    )
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#sv-status")).to_have_text("“Fragrance finder” saved as version 2.")
    shown = await page.evaluate("fetch('/api/v1/intake-survey').then((r) => r.json())")
    assert shown["survey"]["version"] == 2
    assert shown["survey"]["questions"][0]["label"]["en"] == "Which scents suit you?"
    stored = await page.evaluate(f"fetch('/api/v1/surveys/{shown['survey']['id']}').then((r) => r.json())")
    assert stored["current"]["questions"][0]["choices"][0]["routing"]["skill"] == "fragrance"

    # In Japanese too.
    await page.click("[data-lang-switch] button[data-lang=ja]")
    await expect(page.locator("#sv-title")).to_have_text("アンケート")
    await assert_axe_clean(page)
