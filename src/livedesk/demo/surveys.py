"""The demo's pre-call survey: what the shopper wants to talk about (routing to advisors with
that skill, styling to the Fashion team), the language they prefer, a free note and consent.

``seed_surveys`` writes it once (idempotent, shown nowhere yet), so every test server that
seeds the demo keeps "talk now" going straight to the queue; ``show_demo_survey`` — called
by ``livedesk demo`` — shows it before instant calls unless an admin already chose a survey
for them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.db import Database
from livedesk.models import Survey, SurveyAssignment, Team
from livedesk.surveys import service
from livedesk.surveys.schemas import INSTANT, SurveyCreate

DEMO_SURVEY_ID = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://livedesk.invalid/demo/survey/before-your-consultation"
)


def _label(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def demo_survey(fashion_team: uuid.UUID | None) -> SurveyCreate:
    styling = {"skill": "styling", **({"team_id": str(fashion_team)} if fashion_team else {})}
    return SurveyCreate.model_validate(
        {
            "name": "Before your consultation",
            "title": _label("ご相談の前に", "Before your consultation"),
            "description": _label(
                "ご相談内容に合ったアドバイザーにおつなぎします。", "We connect you with the right advisor."
            ),
            "questions": [
                {
                    "id": "topic",
                    "type": "single_choice",
                    "required": True,
                    "label": _label("どのようなご相談ですか?", "What would you like to talk about?"),
                    "choices": [
                        {
                            "value": "skincare",
                            "label": _label("スキンケア", "Skin care"),
                            "routing": {"skill": "skincare"},
                        },
                        {
                            "value": "makeup",
                            "label": _label("メイクアップ", "Make-up"),
                            "routing": {"skill": "makeup"},
                        },
                        {
                            "value": "fragrance",
                            "label": _label("フレグランス", "Fragrance"),
                            "routing": {"skill": "fragrance"},
                        },
                        {
                            "value": "styling",
                            "label": _label("ファッション・スタイリング", "Styling"),
                            "routing": styling,
                        },
                    ],
                },
                {
                    "id": "language",
                    "type": "single_choice",
                    "label": _label("ご希望の言語", "Preferred language"),
                    "choices": [
                        {"value": "ja", "label": _label("日本語", "Japanese"), "routing": {"language": "ja"}},
                        {"value": "en", "label": _label("英語", "English"), "routing": {"language": "en"}},
                    ],
                },
                {
                    "id": "note",
                    "type": "long_text",
                    "max_length": 500,
                    "label": _label(
                        "お悩みやご質問があればお書きください", "Anything the advisor should know beforehand?"
                    ),
                },
                {
                    "id": "consent",
                    "type": "consent",
                    "required": True,
                    "label": _label(
                        "回答内容をアドバイザーと共有することに同意します",
                        "I agree that my answers are shared with the advisor",
                    ),
                },
            ],
        }
    )


async def seed_surveys(session: AsyncSession) -> None:
    """The demo survey, once (later runs leave it, and any admin edits, alone)."""
    if await session.get(Survey, DEMO_SURVEY_ID) is not None:
        return
    fashion = await session.scalar(select(Team.id).where(Team.name == "Fashion"))
    await service.create_survey(session, demo_survey(fashion), actor_id=None, survey_id=DEMO_SURVEY_ID)


async def show_demo_survey(db: Database) -> None:
    """Show the demo survey before instant calls, unless some survey is assigned already."""
    async with db.transaction() as session:
        if await session.get(Survey, DEMO_SURVEY_ID) is None:
            return
        if await session.scalar(select(func.count()).select_from(SurveyAssignment)):
            return
        await service.set_assignment(session, INSTANT, DEMO_SURVEY_ID)
