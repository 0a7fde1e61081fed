"""Shapes of the surveys capability: a survey's questions (which validate themselves, so a
stored version is always one the shopper form and the answer check can rely on), the views
shoppers and staff get, and the request bodies (they also make its OpenAPI part)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from livedesk.kit.http import ApiModel, openapi_nullable

QuestionType = Literal["short_text", "long_text", "single_choice", "multiple_choice", "scale", "consent"]
CHOICE_TYPES = ("single_choice", "multiple_choice")
# The longest answer each text type takes, unless the question says less.
TEXT_LIMITS = {"short_text": 200, "long_text": 2000}
# "1-5" (satisfaction-like) or "0-10" (recommend-like).
SCALES = {"1-5": (1, 5), "0-10": (0, 10)}

Slug = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
# Same spelling as the queue's skills and language, so a routed answer always fits queue.join.
SkillName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
INSTANT = "instant"


class _Model(BaseModel):
    model_config = ConfigDict(json_schema_extra=openapi_nullable)


class _Strict(ApiModel):
    model_config = ConfigDict(json_schema_extra=openapi_nullable)


class Label(_Strict):
    """A text in both UI languages; both are required so neither page shows a blank."""

    ja: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class OptionalLabel(_Strict):
    ja: str = Field("", max_length=2000)
    en: str = Field("", max_length=2000)


class ChoiceRouting(_Strict):
    """Where a call goes when this choice is picked: advisors with the skill, on the team, or
    speaking the language are offered it first."""

    skill: SkillName | None = None
    team_id: uuid.UUID | None = None
    language: LanguageCode | None = None


class Choice(_Strict):
    value: Slug
    label: Label
    routing: ChoiceRouting = Field(default_factory=ChoiceRouting)


class Question(_Strict):
    id: Slug
    type: QuestionType
    label: Label
    help: OptionalLabel = Field(default_factory=OptionalLabel)
    required: bool = False
    choices: list[Choice] = Field(default_factory=list, max_length=30)
    scale: Literal["1-5", "0-10"] | None = None
    max_length: int | None = Field(None, ge=1, le=2000)

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.type in CHOICE_TYPES:
            if len(self.choices) < 2:
                raise ValueError(f"question '{self.id}': a choice question needs at least 2 choices")
            values = [c.value for c in self.choices]
            if len(set(values)) != len(values):
                raise ValueError(f"question '{self.id}': choice values must be unique")
        elif self.choices:
            raise ValueError(f"question '{self.id}': only choice questions have choices")
        if self.type == "scale" and self.scale is None:
            raise ValueError(f"question '{self.id}': a scale question needs scale '1-5' or '0-10'")
        if self.type != "scale" and self.scale is not None:
            raise ValueError(f"question '{self.id}': only scale questions have a scale")
        if self.max_length is not None and self.type not in TEXT_LIMITS:
            raise ValueError(f"question '{self.id}': only text questions have max_length")
        if self.max_length is not None and self.max_length > TEXT_LIMITS[self.type]:
            raise ValueError(f"question '{self.id}': max_length is at most {TEXT_LIMITS[self.type]}")
        return self

    def text_limit(self) -> int:
        return self.max_length or TEXT_LIMITS[self.type]


class SurveyContent(_Strict):
    """What an admin writes; every save of it becomes a new version."""

    title: Label
    description: OptionalLabel = Field(default_factory=OptionalLabel)
    questions: list[Question] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_ids(self) -> SurveyContent:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique within a survey")
        return self


class SurveyCreate(SurveyContent):
    name: str = Field(min_length=1, max_length=120)


class SurveyUpdate(SurveyContent):
    """A new version. ``base_version`` is the version the editor started from: if someone
    saved meanwhile the save is refused (409) instead of silently overwriting their edit."""

    name: str | None = Field(None, min_length=1, max_length=120)
    base_version: int = Field(ge=1)


class SurveyArchive(_Strict):
    archived: bool


class AssignmentSet(_Strict):
    survey_id: uuid.UUID | None


class SurveyView(_Model):
    """One survey version, as the shopper form shows it and the answer check reads it."""

    id: uuid.UUID
    version: int
    name: str
    title: Label
    description: OptionalLabel
    questions: list[Question]


class SurveyOut(_Model):
    id: uuid.UUID
    name: str
    current_version: int
    archived: bool
    assigned_to: list[str]
    created_at: datetime
    updated_at: datetime
    current: SurveyView


class AssignmentOut(_Model):
    target: str
    # None: no survey is shown there (after unassigning).
    survey_id: uuid.UUID | None
    survey_name: str | None


class IntakeSurveyOut(_Model):
    survey: SurveyView | None


class IntakeSubmit(_Strict):
    survey_id: uuid.UUID
    version: int = Field(ge=1)
    answers: dict[str, Any] = Field(max_length=50)
    booking_id: uuid.UUID | None = None


class RoutingHints(_Model):
    skills: list[str] = Field(default_factory=list)
    team_ids: list[uuid.UUID] = Field(default_factory=list)
    language: str | None = None


class SubmittedIntake(_Model):
    response_id: uuid.UUID
    routing: RoutingHints


class AnswerShown(_Model):
    """One answer as staff see it: the question and the answer in both languages."""

    question_id: str
    type: QuestionType
    label: Label
    value: Any
    shown: OptionalLabel


class IntakeShown(_Model):
    response_id: uuid.UUID
    survey_id: uuid.UUID
    version: int
    title: Label
    submitted_at: datetime
    answers: list[AnswerShown]


class ResponseOut(IntakeShown):
    shopper_id: uuid.UUID
    consultation_id: uuid.UUID | None
    booking_id: uuid.UUID | None


class SatisfactionSubmit(_Strict):
    csat: int = Field(ge=1, le=5)
    nps: int | None = Field(None, ge=0, le=10)
    comment: str = Field("", max_length=2000)


class LinkToken(_Strict):
    token: str = Field(min_length=1, max_length=500)


class SatisfactionByLink(SatisfactionSubmit):
    token: str = Field(min_length=1, max_length=500)


class SatisfactionOut(_Model):
    consultation_id: uuid.UUID
    csat: int
    nps: int | None
    comment: str
    source: str
    submitted_at: datetime


class SatisfactionOfConsultation(_Model):
    satisfaction: SatisfactionOut | None


class SatisfactionLinkInfo(_Model):
    """What the mail link's page needs before the shopper answers."""

    consultation_id: uuid.UUID
    advisor_name: str
    ended_at: datetime | None
    answered: bool
    locale: str


class SatisfactionFigures(_Model):
    responses: int
    average_csat: float | None
    average_nps: float | None
