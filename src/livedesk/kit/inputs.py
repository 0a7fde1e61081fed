"""Limits every client-sent value meets before a model or the database sees it.

A value the databases cannot hold must be a client error, never a 500: PostgreSQL refuses
the NUL character in text and integers beyond a column's width, both databases refuse text
with a lone UTF-16 surrogate (it is not encodable as UTF-8), Python refuses integer strings
of more than 4,300 digits and deep JSON exhausts the recursion limit. These checks run in one
place per way in: ``check_document`` on every parsed JSON body (``kit/http.endpoint``) and
Socket.IO payload (``realtime/protocol.dispatch``), ``text_problem`` on query and path
parameters, and ``BoundedInput`` (the base of ``ApiModel`` and ``EventModel``) on integer and
date fields, so a schema written without bounds still cannot reach the database with a value
it cannot store.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from annotated_types import Le, Lt
from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

# Deeper JSON than any livedesk document needs (a survey or order is a handful of levels).
MAX_DEPTH = 32
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Far outside any booking, report or history, and well inside what time zone arithmetic handles.
MIN_YEAR, MAX_YEAR = 1900, 2999
# Longest integer literal read at all (the standard library would read 4,300 digits).
_MAX_DIGITS = 20


class BadValue(ValueError):
    """A value no field may hold; ``field`` is its dotted path in the document."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return "must not contain the NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain a lone UTF-16 surrogate"
    return None


def _number_problem(value: int | float) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else "number out of range"
    if not math.isfinite(value) or abs(value) > INT64_MAX:
        # orjson reads an integer literal beyond 64 bits as a float: the same refusal.
        return "number out of range"
    return None


def check_document(value: Any, path: str = "") -> None:
    """Raise ``BadValue`` naming the first string (or key) with NUL or a lone surrogate, the
    first number beyond 64 bits, or the first container nested deeper than ``MAX_DEPTH``."""
    _walk(value, path, 0)


def _walk(value: Any, path: str, depth: int) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise BadValue(path or "(body)", problem)
    elif isinstance(value, int | float):
        problem = _number_problem(value)
        if problem:
            raise BadValue(path or "(body)", problem)
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise BadValue(path or "(body)", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                where = f"{path}.{name}" if path else name
                problem = text_problem(name)
                if problem:
                    # The key itself cannot be echoed: it is the bad text.
                    raise BadValue(path or "(body)", f"a key {problem}")
                _walk(item, where, depth + 1)
        else:
            for index, item in enumerate(value):
                _walk(item, f"{path}.{index}" if path else str(index), depth + 1)


class Undecodable(ValueError):
    """Not JSON, or JSON no client of livedesk sends (NaN, a 5,000-digit number, 1,000 levels)."""


def loads(data: str | bytes) -> Any:
    """Parse JSON with orjson (depth and number size bounded). orjson refuses a lone surrogate
    escape (``"\\ud800"``) outright; such a document is read again with the standard library
    so that ``check_document`` can name the field instead of refusing the whole packet."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise Undecodable(str(exc)) from None
    try:
        return json.loads(data, parse_constant=_no_constant, parse_int=_short_int)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise ValueError("number out of range")
    return int(digits)


# ---------------------------------------------------------------- field types and bounds


def _year_in_range(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        bounds = {"low": MIN_YEAR, "high": MAX_YEAR}
        raise PydanticCustomError("date_out_of_range", "must be between the years {low} and {high}", bounds)
    return value


def _within_int32(value: int) -> int:
    if not INT32_MIN <= value <= INT32_MAX:
        raise PydanticCustomError(
            "int_out_of_range", "must be between {low} and {high}", {"low": INT32_MIN, "high": INT32_MAX}
        )
    return value


# An integer a 32-bit column holds (PostgreSQL ``integer``); the default for request fields.
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
# An integer a 64-bit column holds (``BigInteger``): declare a wider field with this.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
SaneDate = Annotated[date, AfterValidator(_year_in_range)]
SaneDatetime = Annotated[datetime, AfterValidator(_year_in_range)]


def _declares_upper_bound(metadata: list[Any]) -> bool:
    return any(isinstance(item, Le | Lt) for item in metadata)


def check_bounds(value: Any, wide: bool) -> None:
    """The default bounds of a request field: integers fit 32 bits unless the field declares
    its own upper bound (``wide``), dates lie between ``MIN_YEAR`` and ``MAX_YEAR``; list and
    tuple items too (nested models check themselves)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not wide:
            _within_int32(value)
    elif isinstance(value, date):  # a datetime is a date
        _year_in_range(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_bounds(item, wide)


class BoundedInput(BaseModel):
    """Base of request and event models: ``check_bounds`` on every field, so an integer field
    written as a bare ``int`` cannot carry 3,000,000,000 into a 32-bit column."""

    @field_validator("*", mode="after")
    @classmethod
    def _default_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            check_bounds(value, field is not None and _declares_upper_bound(field.metadata))
        return value


def bounded_annotation(annotation: Any) -> Any:
    """``int``, ``date`` and ``datetime`` (also ``X | None``) as their bounded forms, for query
    and path parameters written in a handler's signature; other annotations unchanged."""
    import types
    import typing

    if annotation is int:
        return Int32
    if annotation is date:
        return SaneDate
    if annotation is datetime:
        return SaneDatetime
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        if base is int and not _declares_upper_bound(_flat_metadata(metadata)):
            return typing.Annotated[annotation, AfterValidator(_within_int32)]
        if base in (date, datetime):
            return typing.Annotated[annotation, AfterValidator(_year_in_range)]
        return annotation
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        bounded = tuple(bounded_annotation(arg) for arg in args)
        if bounded != args:
            return typing.Union[bounded]  # noqa: UP007 (built from a tuple)
    return annotation


def _flat_metadata(metadata: list[Any]) -> list[Any]:
    """Field(...) inside Annotated keeps its constraints in its own metadata."""
    flat: list[Any] = []
    for item in metadata:
        flat.extend(getattr(item, "metadata", None) or [item])
    return flat
