"""Checking a shopper's answers against the survey version they answered — pure rules, no
I/O — and what the answers mean for routing and how staff see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from livedesk.surveys.schemas import (
    SCALES,
    AnswerShown,
    OptionalLabel,
    Question,
    RoutingHints,
    SurveyView,
)


@dataclass(frozen=True)
class FieldError:
    question_id: str
    code: str
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"field": f"answers.{self.question_id}", "code": self.code, "message": self.message}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _check(question: Question, value: Any) -> tuple[Any, FieldError | None]:
    """The stored form of one answer, or why it is refused."""

    def error(code: str, message: str) -> tuple[Any, FieldError]:
        return None, FieldError(question.id, code, message)

    kind = question.type
    if kind == "consent":
        if value is not None and not isinstance(value, bool):
            return error("wrong_type", "Answer with true or false")
        if question.required and value is not True:
            return error("consent_required", "Please give your consent to continue")
        return bool(value), None
    if _blank(value):
        if question.required:
            return error("required", "This question needs an answer")
        return None, None
    if kind in ("short_text", "long_text"):
        if not isinstance(value, str):
            return error("wrong_type", "Answer with text")
        text = value.strip()
        limit = question.text_limit()
        if len(text) > limit:
            return error("too_long", f"At most {limit} characters")
        if kind == "short_text" and ("\n" in text or "\r" in text):
            return error("one_line", "Answer on one line")
        return text, None
    allowed = [choice.value for choice in question.choices]
    if kind == "single_choice":
        if not isinstance(value, str) or value not in allowed:
            return error("unknown_choice", "Pick one of the choices offered")
        return value, None
    if kind == "multiple_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return error("wrong_type", "Answer with a list of choices")
        if any(v not in allowed for v in value):
            return error("unknown_choice", "Pick only among the choices offered")
        if len(set(value)) != len(value):
            return error("duplicate_choice", "Pick each choice at most once")
        # Stored in the survey's order, so the same picks always read the same.
        return [v for v in allowed if v in value], None
    # scale
    assert question.scale is not None
    low, high = SCALES[question.scale]
    if isinstance(value, bool) or not isinstance(value, int):
        return error("wrong_type", f"Answer with a whole number from {low} to {high}")
    if not low <= value <= high:
        return error("out_of_range", f"Answer with a number from {low} to {high}")
    return value, None


def check_answers(survey: SurveyView, answers: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The answers as they will be stored (unanswered optional questions left out), and one
    error per field that is wrong — every field at once, so the form can show them all."""
    questions = {q.id: q for q in survey.questions}
    errors = [
        FieldError(key, "unknown_question", "Not a question of this survey")
        for key in answers
        if key not in questions
    ]
    cleaned: dict[str, Any] = {}
    for question in survey.questions:
        value, problem = _check(question, answers.get(question.id))
        if problem is not None:
            errors.append(problem)
        elif value is not None:
            cleaned[question.id] = value
    return cleaned, errors


def routing_of(survey: SurveyView, answers: dict[str, Any]) -> RoutingHints:
    """What the picked choices ask of routing: every skill and team named, and the first
    language named (a call has one language)."""
    skills: list[str] = []
    teams: list[uuid.UUID] = []
    language: str | None = None
    for question in survey.questions:
        picked = answers.get(question.id)
        if question.type not in ("single_choice", "multiple_choice") or picked is None:
            continue
        chosen = {picked} if isinstance(picked, str) else set(picked)
        for choice in question.choices:
            if choice.value not in chosen:
                continue
            route = choice.routing
            if route.skill and route.skill not in skills:
                skills.append(route.skill)
            if route.team_id and route.team_id not in teams:
                teams.append(route.team_id)
            if route.language and language is None:
                language = route.language
    return RoutingHints(skills=skills, team_ids=teams, language=language)


def _shown_value(question: Question, value: Any) -> OptionalLabel:
    if question.type in ("single_choice", "multiple_choice"):
        picked = [value] if isinstance(value, str) else list(value)
        labels = [c.label for c in question.choices if c.value in picked]
        return OptionalLabel(ja="、".join(lb.ja for lb in labels), en=", ".join(lb.en for lb in labels))
    if question.type == "consent":
        return OptionalLabel(ja="同意する" if value else "同意しない", en="Agreed" if value else "Not agreed")
    if question.type == "scale":
        assert question.scale is not None
        high = SCALES[question.scale][1]
        return OptionalLabel(ja=f"{value} / {high}", en=f"{value} / {high}")
    return OptionalLabel(ja=str(value), en=str(value))


def shown(survey: SurveyView, answers: dict[str, Any]) -> list[AnswerShown]:
    """The answers in the survey's order, each with its question and a readable answer."""
    return [
        AnswerShown(
            question_id=q.id,
            type=q.type,
            label=q.label,
            value=answers[q.id],
            shown=_shown_value(q, answers[q.id]),
        )
        for q in survey.questions
        if q.id in answers
    ]
