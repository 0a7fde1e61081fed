"""What the generated OpenAPI document needs beyond what aiohttp-pydantic writes: who may
call each operation (``components.securitySchemes`` and per-operation ``security``), the 429
of every operation that spends a rate-limit budget, required request bodies, and nullable
fields written the OpenAPI 3.0 way with their constraints kept.

The security table below is checked against the running app by
``tests/integration/test_schemathesis.py``: an operation declared secured must refuse a call
without credentials (schemathesis' ``ignored_auth``), and one declared public must never
answer 401 to a call without any.
"""

from __future__ import annotations

from typing import Any

from aiohttp_pydantic.oas import pydantic_schema_to_oas

# --- security -------------------------------------------------------------------------------

STAFF_SESSION = "staffSession"
# Names of security schemes in the document, not secrets.
CSRF_TOKEN = "csrfToken"  # noqa: S105
VISITOR_TOKEN = "visitorToken"  # noqa: S105
INTEGRATION_KEY = "integrationKey"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    STAFF_SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": "livedesk_session",
        "description": "A staff member's session, set by POST /api/v1/auth/login.",
    },
    CSRF_TOKEN: {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": (
            "The session's CSRF token (csrf_token of the login answer or of /api/v1/auth/me, or "
            "the livedesk_csrf cookie), echoed on every write made with the session cookie; "
            "such a write that names an Origin must name an allowed one."
        ),
    },
    VISITOR_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "A shopper's visitor token, from POST /api/v1/visitors.",
    },
    INTEGRATION_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ldk_…",
        "description": "An integration's API key (ldk_…), created by an admin.",
    },
}

_PUBLIC: list[dict[str, list[str]]] = []
_READS = frozenset({"get", "head"})

# Operations anyone may call (some prove something else: a signed link token in the path or
# body, the shop's signature, Stripe's signature).
_PUBLIC_OPERATIONS = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/visitors"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/advisors"),
    ("get", "/api/v1/staff/{staff_id}/photo"),
    ("get", "/api/v1/booking/types"),
    ("get", "/api/v1/booking/types/{type_id}/advisors"),
    ("get", "/api/v1/booking/types/{type_id}/survey"),
    ("get", "/api/v1/booking/slots"),
    ("post", "/api/v1/bookings"),
    ("post", "/api/v1/bookings/confirm"),
    ("post", "/api/v1/bookings/reschedule"),
    ("post", "/api/v1/bookings/cancel"),
    ("post", "/api/v1/bookings/join"),
    ("get", "/api/v1/bookings/{token}"),
    ("get", "/api/v1/bookings/{token}/calendar.ics"),
    ("get", "/api/v1/intake-survey"),
    ("post", "/api/v1/satisfaction/link/info"),
    ("post", "/api/v1/satisfaction/link"),
    ("post", "/api/v1/payments/stripe/webhook"),
}
# Only a shopper's visitor token.
_VISITOR_OPERATIONS = {
    ("post", "/api/v1/visitors/email-code"),
    ("post", "/api/v1/visitors/email-code/check"),
    ("post", "/api/v1/intake-responses"),
    ("post", "/api/v1/consultations/{consultation_id}/satisfaction"),
}
# A visitor token or a staff session.
_VISITOR_OR_STAFF_OPERATIONS = {
    ("get", "/api/v1/ice-servers"),
    ("post", "/api/v1/consultations/{consultation_id}/files"),
    ("get", "/api/v1/files/{file_id}"),
    ("get", "/api/v1/consultations/{consultation_id}/satisfaction"),
    ("get", "/api/v1/consultations/{consultation_id}/payment-requests"),
    ("get", "/api/v1/payment-requests/{request_id}"),
    ("post", "/api/v1/payment-requests/{request_id}/checkout"),
    ("post", "/api/v1/payment-requests/{request_id}/sandbox"),
}
# Signing out needs no session (an ended one is just cleared); a live one is checked.
_OPTIONAL_STAFF_OPERATIONS = {("post", "/api/v1/auth/logout")}
_INTEGRATION_PREFIX = "/api/v1/shop/"


def _staff(method: str) -> dict[str, list[str]]:
    return {STAFF_SESSION: []} if method in _READS else {STAFF_SESSION: [], CSRF_TOKEN: []}


def operation_security(method: str, path: str) -> list[dict[str, list[str]]]:
    """Who may call ``method path``: alternatives, each a set of schemes sent together. A
    HEAD is its GET. Everything under /api/ not named above is staff-only."""
    key = ("get" if method == "head" else method, path)
    if key in _PUBLIC_OPERATIONS or not path.startswith("/api/"):
        return _PUBLIC
    if path.startswith(_INTEGRATION_PREFIX):
        return [{INTEGRATION_KEY: []}]
    if key in _VISITOR_OPERATIONS:
        return [{VISITOR_TOKEN: []}]
    if key in _VISITOR_OR_STAFF_OPERATIONS:
        return [{VISITOR_TOKEN: []}, _staff(method)]
    if key in _OPTIONAL_STAFF_OPERATIONS:
        return [_staff(method), {}]
    return [_staff(method)]


# --- rate limits ----------------------------------------------------------------------------

# Operations that spend a budget of kit/ratelimit.py (or verification's code budget). Every
# shop API call spends its key's budget.
_RATE_LIMITED = {
    ("post", "/api/v1/auth/login"),
    ("patch", "/api/v1/auth/me/password"),
    ("post", "/api/v1/visitors/email-code"),
    ("post", "/api/v1/consultations/{consultation_id}/files"),
    ("post", "/api/v1/bookings"),
    ("post", "/api/v1/bookings/reschedule"),
    ("post", "/api/v1/intake-responses"),
}

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_NO_CREDENTIALS = {
    "description": "No credentials, or ones that are not (or no longer) valid",
    "content": _ERROR,
}
_CSRF_REFUSED = {
    "description": "A write with the session cookie from a foreign Origin or without its X-CSRF-Token "
    "(csrf_failed), or by a role that may not do this",
    "content": _ERROR,
}
_TOO_MANY = {
    "description": "A rate-limit budget is spent; retry after the Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    "content": _ERROR,
}


def rate_limited(method: str, path: str) -> bool:
    return (method, path) in _RATE_LIMITED or path.startswith(_INTEGRATION_PREFIX)


# --- the document ---------------------------------------------------------------------------

_METHODS = {"get", "head", "post", "put", "patch", "delete"}


def finish(spec: dict[str, Any]) -> None:
    """Declare security, 429s and required bodies on every operation of ``spec``."""
    spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            security = operation["security"] = operation_security(method, path)
            responses = operation.setdefault("responses", {})
            # What the credential checks answer, whatever the handler's own annotations say.
            if any(security):
                responses.setdefault("401", _NO_CREDENTIALS)
            if any(CSRF_TOKEN in requirement for requirement in security):
                responses.setdefault("403", _CSRF_REFUSED)
            if rate_limited(method, path):
                responses["429"] = _TOO_MANY
            body = operation.get("requestBody")
            # A JSON body is read whole and validated against its model: there is no call
            # without one (aiohttp-pydantic leaves ``required`` out, which means optional).
            if body and "application/json" in body.get("content", {}):
                body["required"] = True


# --- nullable fields ------------------------------------------------------------------------

_NESTED = ("properties", "$defs", "definitions", "patternProperties")
_NESTED_ONE = ("items", "additionalProperties", "not")
_NESTED_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")


def to_openapi_3_0(schema: dict[str, Any]) -> None:
    """pydantic's JSON Schema (2020-12) as OpenAPI 3.0, everywhere in ``schema``.

    ``X | None`` is ``anyOf: [X, {type: null}]`` in JSON Schema; OpenAPI 3.0 writes it as X
    with ``nullable: true``. aiohttp-pydantic's own conversion keeps only X's ``type`` (so a
    nullable field loses maxLength, format, enum, minimum…, and clients and fuzzers see no
    bound), raises KeyError on a ``$ref`` branch, and leaves nested schemas alone. This one
    keeps every keyword, wraps a ``$ref`` in a one-element allOf (keywords beside a $ref are
    ignored in 3.0), and walks the whole tree; ``const`` becomes a one-value ``enum`` and
    numeric ``exclusiveMinimum``/``exclusiveMaximum`` take their 3.0 boolean form."""
    if not isinstance(schema, dict):
        return
    # The null branch first, before the branches themselves are converted.
    branches = schema.get("anyOf")
    if branches:
        kept = [branch for branch in branches if branch.get("type") != "null"]
        if len(kept) < len(branches):
            schema["nullable"] = True
            if len(kept) == 1:
                del schema["anyOf"]
                (only,) = kept
                for name, value in ({"allOf": [only]} if "$ref" in only else only).items():
                    schema.setdefault(name, value)
            else:
                schema["anyOf"] = kept
    for key in _NESTED:
        for sub in (schema.get(key) or {}).values():
            to_openapi_3_0(sub)
    for key in _NESTED_ONE:
        if isinstance(schema.get(key), dict):
            to_openapi_3_0(schema[key])
    for key in _NESTED_MANY:
        for sub in schema.get(key) or ():
            to_openapi_3_0(sub)
    if schema.get("nullable") and "enum" in schema and None not in schema["enum"]:
        # In 3.0 an enum is the whole list of values: null must be one of them to be allowed.
        schema["enum"] = [*schema["enum"], None]
    if schema.get("type") == "null":
        # A field that can only be null (rare): 3.0 has no null type.
        del schema["type"]
        schema["nullable"] = True
        schema["enum"] = [None]
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = schema.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            schema[inclusive] = value
            schema[exclusive] = True


def use_openapi_3_0_translation() -> None:
    """Make aiohttp-pydantic write its 3.0 documents with ``to_openapi_3_0`` (its registry of
    translators is the documented way to replace one)."""
    pydantic_schema_to_oas.add_or_replace_translater("3.0.0", to_openapi_3_0)
