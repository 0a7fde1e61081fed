"""The answer check of intake surveys: one row per rule (question type × answer), the
routing an answer asks for, and what a survey definition may not be."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from livedesk.surveys.answers import check_answers, routing_of, shown
from livedesk.surveys.schemas import Question, SurveyContent, SurveyView

TEAM = uuid.uuid4()


def _label(text: str) -> dict[str, str]:
    return {"ja": f"{text}(ja)", "en": text}


def _survey(*questions: dict[str, Any]) -> SurveyView:
    return SurveyView(
        id=uuid.uuid4(),
        version=1,
        name="t",
        title=_label("Title"),  # type: ignore[arg-type]
        description={"ja": "", "en": ""},  # type: ignore[arg-type]
        questions=[Question.model_validate(q) for q in questions],
    )


CHOICES = [
    {"value": "skincare", "label": _label("Skin care"), "routing": {"skill": "skincare"}},
    {"value": "makeup", "label": _label("Make-up"), "routing": {"skill": "makeup", "team_id": str(TEAM)}},
    {"value": "english", "label": _label("English please"), "routing": {"language": "en"}},
]


def _q(qtype: str, required: bool = True, **more: Any) -> dict[str, Any]:
    return {"id": "q", "type": qtype, "label": _label("Q"), "required": required, **more}


# (question, answer, expected stored value or None, expected error code or None)
TABLE: list[tuple[dict[str, Any], Any, Any, str | None]] = [
    (_q("short_text"), "  Hanako  ", "Hanako", None),
    (_q("short_text"), "", None, "required"),
    (_q("short_text"), "   ", None, "required"),
    (_q("short_text"), None, None, "required"),
    (_q("short_text", required=False), "", None, None),
    (_q("short_text"), "a" * 201, None, "too_long"),
    (_q("short_text", max_length=5), "abcdef", None, "too_long"),
    (_q("short_text"), "two\nlines", None, "one_line"),
    (_q("short_text"), 42, None, "wrong_type"),
    (_q("long_text"), "two\nlines", "two\nlines", None),
    (_q("long_text"), "a" * 2001, None, "too_long"),
    (_q("single_choice", choices=CHOICES), "makeup", "makeup", None),
    (_q("single_choice", choices=CHOICES), "perfume", None, "unknown_choice"),
    (_q("single_choice", choices=CHOICES), ["makeup"], None, "unknown_choice"),
    (_q("single_choice", choices=CHOICES), None, None, "required"),
    (_q("multiple_choice", choices=CHOICES), ["english", "skincare"], ["skincare", "english"], None),
    (_q("multiple_choice", choices=CHOICES), [], None, "required"),
    (_q("multiple_choice", required=False, choices=CHOICES), [], None, None),
    (_q("multiple_choice", choices=CHOICES), ["skincare", "skincare"], None, "duplicate_choice"),
    (_q("multiple_choice", choices=CHOICES), ["skincare", "nails"], None, "unknown_choice"),
    (_q("multiple_choice", choices=CHOICES), "skincare", None, "wrong_type"),
    (_q("scale", scale="1-5"), 5, 5, None),
    (_q("scale", scale="1-5"), 1, 1, None),
    (_q("scale", scale="1-5"), 0, None, "out_of_range"),
    (_q("scale", scale="1-5"), 6, None, "out_of_range"),
    (_q("scale", scale="0-10"), 0, 0, None),
    (_q("scale", scale="0-10"), 10, 10, None),
    (_q("scale", scale="0-10"), 11, None, "out_of_range"),
    (_q("scale", scale="0-10"), "7", None, "wrong_type"),
    (_q("scale", scale="0-10"), 7.5, None, "wrong_type"),
    (_q("scale", scale="0-10"), True, None, "wrong_type"),
    (_q("consent"), True, True, None),
    (_q("consent"), False, None, "consent_required"),
    (_q("consent"), None, None, "consent_required"),
    (_q("consent"), "yes", None, "wrong_type"),
    (_q("consent", required=False), False, False, None),
]


@pytest.mark.parametrize(("question", "answer", "stored", "code"), TABLE)
def test_answer_check_table(question: dict[str, Any], answer: Any, stored: Any, code: str | None) -> None:
    survey = _survey(question)
    cleaned, errors = check_answers(survey, {} if answer is None else {"q": answer})
    if code is None:
        assert errors == []
        assert cleaned.get("q") == stored
    else:
        assert [(e.question_id, e.code) for e in errors] == [("q", code)]
        assert errors[0].as_detail()["field"] == "answers.q"
        assert "q" not in cleaned


def test_every_wrong_field_is_reported_at_once_and_unknown_keys_too() -> None:
    survey = _survey(
        {"id": "name", "type": "short_text", "label": _label("Name"), "required": True},
        {"id": "age", "type": "scale", "scale": "1-5", "label": _label("Age"), "required": True},
    )
    _, errors = check_answers(survey, {"age": 9, "colour": "red"})
    assert sorted((e.question_id, e.code) for e in errors) == [
        ("age", "out_of_range"),
        ("colour", "unknown_question"),
        ("name", "required"),
    ]


def test_routing_collects_skills_teams_and_the_first_language() -> None:
    survey = _survey(
        {"id": "topic", "type": "multiple_choice", "label": _label("Topic"), "choices": CHOICES},
        {"id": "free", "type": "short_text", "label": _label("Free")},
    )
    hints = routing_of(survey, {"topic": ["skincare", "makeup", "english"], "free": "x"})
    assert hints.skills == ["skincare", "makeup"]
    assert hints.team_ids == [TEAM]
    assert hints.language == "en"
    assert routing_of(survey, {}).skills == []


def test_answers_are_shown_with_their_labels_in_both_languages() -> None:
    survey = _survey(
        {"id": "topic", "type": "single_choice", "label": _label("Topic"), "choices": CHOICES},
        {"id": "ok", "type": "consent", "label": _label("OK?")},
    )
    rows = shown(survey, {"topic": "makeup", "ok": True})
    assert [(r.question_id, r.shown.en, r.shown.ja) for r in rows] == [
        ("topic", "Make-up", "Make-up(ja)"),
        ("ok", "Agreed", "同意する"),
    ]


@pytest.mark.parametrize(
    ("questions", "fragment"),
    [
        ([_q("single_choice", choices=CHOICES[:1])], "at least 2 choices"),
        ([_q("short_text", choices=CHOICES)], "only choice questions"),
        ([_q("scale")], "needs scale"),
        ([_q("short_text", scale="1-5")], "only scale questions"),
        ([_q("scale", scale="1-5", max_length=3)], "only text questions"),
        ([_q("short_text", max_length=500)], "at most 200"),
        ([_q("short_text"), _q("long_text")], "unique"),
        ([{**_q("single_choice", choices=[CHOICES[0], CHOICES[0]])}], "unique"),
        ([{"id": "Bad Id", "type": "short_text", "label": _label("x")}], "pattern"),
        ([{"id": "q", "type": "short_text", "label": {"ja": "", "en": "x"}}], "at least 1 character"),
        ([{"id": "q", "type": "rating", "label": _label("x")}], "short_text"),
        (
            [_q("single_choice", choices=[*CHOICES[:1], {**CHOICES[1], "routing": {"language": "EN"}}])],
            "pattern",
        ),
    ],
)
def test_bad_definitions_are_refused(questions: list[dict[str, Any]], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SurveyContent.model_validate({"title": _label("T"), "questions": questions})
    assert fragment in str(caught.value)
