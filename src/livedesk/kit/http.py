"""HTTP plumbing shared by every capability: the error middleware, request validation with
pydantic models (the same models produce the OpenAPI document), and JSON responses."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import re
import time
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_pydantic.decorator import inject_params
from pydantic import BaseModel, ConfigDict, ValidationError

from livedesk.kit import inputs
from livedesk.kit.context import SETTINGS
from livedesk.kit.db import is_unavailable
from livedesk.kit.errors import AppError
from livedesk.kit.logging import get_logger

log = get_logger("livedesk.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


# What a client hears while the database is out of reach (REST 503, Socket.IO error ack).
DATABASE_UNAVAILABLE = ("database_unavailable", "The database is unavailable right now; try again shortly")


class ApiModel(inputs.BoundedInput):
    """Base for request bodies: unknown fields are an error, not silently dropped; integers
    and dates have default bounds (``kit/inputs.BoundedInput``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    response = web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def validation_details(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    return [
        {"in": where, "field": _field_path(err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def _on_validation_error(exc: ValidationError, context: str) -> web.StreamResponse:
    where = {"query string": "query", "body": "body", "path": "path", "headers": "headers"}.get(
        context, context
    )
    details = validation_details(exc, where)
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    message = f"{where} field '{first['field']}': {first['message']}{more}"
    return error_response(422, "validation_failed", message, details)


def endpoint(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
    """Validate path, query and body against the handler's annotations (pydantic models),
    answering 422 with one message per field otherwise. aiohttp-pydantic reads the same
    annotations to write the OpenAPI document.

    Before that, what no field may hold is refused in one place (``kit/inputs.py``): a body
    that is not text, not JSON or deeper/larger than JSON livedesk reads (400), NUL or a lone
    surrogate in any string of the body or any query or path parameter, a number beyond 64
    bits (422 naming the field). Bare ``int``, ``date`` and ``datetime`` parameters get the
    bounds a column holds."""
    json_body = _bound_parameters(handler)
    wrapped: Handler = inject_params(on_validation_error=_on_validation_error).and_request(handler)

    @functools.wraps(wrapped)
    async def decodable_then_parse(request: web.Request) -> web.StreamResponse:
        refused = _check_parameters(request)
        if refused is None:
            refused = await _check_body(request, json_body)
        if refused is not None:
            return refused
        return await wrapped(request)

    return decodable_then_parse


def _bound_parameters(handler: Callable[..., Any]) -> bool:
    """Give the handler's bare int/date/datetime parameters their bounded types (in its
    annotations, which aiohttp-pydantic reads next); True when it takes a JSON body."""
    hints = typing.get_type_hints(handler, include_extras=True)
    json_body = False
    for name, annotation in hints.items():
        if name == "return":
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            json_body = True
            continue
        bounded = inputs.bounded_annotation(annotation)
        if bounded is not annotation:
            handler.__annotations__[name] = bounded
    return json_body


def _refusal(where: str, field: str, message: str) -> web.Response:
    details = [{"in": where, "field": field, "message": message, "type": "value_error"}]
    return error_response(422, "validation_failed", f"{where} field '{field}': {message}", details)


def _check_parameters(request: web.Request) -> web.Response | None:
    for where, items in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in items:
            problem = inputs.text_problem(name)
            if problem:
                return _refusal(where, "(name)", f"a parameter name {problem}")
            problem = inputs.text_problem(value)
            if problem:
                return _refusal(where, name, problem)
    return None


async def _check_body(request: web.Request, json_body: bool) -> web.Response | None:
    """aiohttp decodes a JSON body inside the parser and lets a UnicodeDecodeError escape
    (a 500); a body that is not text in its declared charset is the client's error. A JSON
    body is read once here with the bounded parser and checked; aiohttp-pydantic then reads
    the same text (the standard library reads everything orjson does). Multipart bodies are
    streamed by their handlers and not read here."""
    if not request.body_exists or request.content_type.startswith("multipart/"):
        return None
    if not json_body and request.content_type == "application/octet-stream":
        # Declared as bytes, not text: a handler that takes a file reads it in its own
        # encoding (a CSV import in CP932 or UTF-16).
        return None
    body = await request.read()  # bounded by client_max_size, and cached for the parser
    try:
        text = body.decode(request.charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        charset = request.charset or "UTF-8"
        raise web.HTTPBadRequest(reason=f"Request body is not valid {charset} text") from None
    if not json_body:
        return None
    try:
        document = inputs.loads(text)
    except inputs.Undecodable as exc:
        raise web.HTTPBadRequest(reason=f"Request body is not valid JSON ({exc})") from None
    try:
        inputs.check_document(document)
    except inputs.BadValue as exc:
        return _refusal("body", exc.field, exc.message)
    return None


# Answers every operation can give whatever its handler says: the body cannot be read (400)
# or is too large (413), or a parameter or the body fails validation (422).
_COMMON_ERRORS = {
    "400": "The request body is malformed (not JSON, not text, not well-formed multipart)",
    "413": "The request body is larger than the limit",
    "422": "A parameter or a body field is invalid",
}


def document_common_errors(spec: dict[str, Any]) -> None:
    """Add the error answers the plumbing gives (see ``_COMMON_ERRORS``) to every operation
    of an OpenAPI document that can get them, so clients and schema checks know of them."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    methods = {"get", "head", "post", "put", "patch", "delete"}
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in methods or not isinstance(operation, dict):
                continue
            has_body = "requestBody" in operation
            statuses = ["400", "413", "422"] if has_body else ["422"] if operation.get("parameters") else []
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(status, {"description": _COMMON_ERRORS[status], "content": content})


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: web.Request) -> str:
    """The client's address, for per-address limits, the /metrics allow-list and audit.

    The peer, unless the peer is one of LIVEDESK_TRUSTED_PROXIES (addresses or CIDRs). Then
    X-Forwarded-For (every line of it, in order) is read from the right: each proxy appends
    the address it saw, so walking back past our own proxies, the first hop that is not one
    is the client. Everything left of that hop was written by the client and is never
    believed. A hop that is not an address can only have come from a trusted proxy (a
    client's text is always left of the address nginx appends), so the walk stops there and
    the last trusted hop is the answer rather than a string a client might choose.
    Addresses are normalised (an IPv4-mapped IPv6 address is its IPv4 address), so one
    client is one rate-limit key and matches IPv4 allow-lists."""
    peer = _hop_address(request.remote or "")
    if peer is None:
        # A Unix socket or a test transport: there is no address to be fooled about.
        return request.remote or ""
    trusted = _trusted_networks(tuple(request.app[SETTINGS].trusted_proxies))
    if not _is_trusted(peer, trusted):
        return str(peer)
    hops = [hop for line in request.headers.getall("X-Forwarded-For", ()) for hop in line.split(",")]
    client = peer
    for hop in reversed(hops):
        address = _hop_address(hop)
        if address is None:
            break
        client = address
        if not _is_trusted(address, trusted):
            break
    return str(client)


@functools.lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[_Network, ...]:
    # Settings validates the entries at start (settings.Settings._proxies_are_networks).
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _is_trusted(address: _Address, trusted: tuple[_Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def _hop_address(text: str) -> _Address | None:
    """One hop of X-Forwarded-For (or the peer) as an address: bare, or with a port as some
    proxies write it ("203.0.113.7:4711", "[2001:db8::1]:4711"); None when it is not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def json_ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def model_json(model: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        body = model.model_dump_json()
    return web.Response(text=body, status=status, content_type="application/json")


def _bad_request_message(exc: web.HTTPException) -> str:
    """aiohttp-pydantic answers malformed JSON and non-object bodies with its own 400 text;
    turn that into a sentence."""
    text = exc.text or ""
    if "Malformed JSON" in text:
        return "Request body is not valid JSON"
    if "valid dict" in text:
        return "Request body must be a JSON object"
    if "Multipart" in text:
        return "Request body must be multipart/form-data"
    return exc.reason or "Bad request"


def _baseline_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every answer gets unless its handler chose otherwise: no type sniffing, no
    full URLs in Referer, API answers never cached (they carry personal data), and HSTS once
    the installation says it is behind HTTPS. Pages add their CSP in pages/routes.py; a
    response its handler has already started streaming keeps the headers it chose."""
    if response.prepared:
        return
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.app[SETTINGS].cookie_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


# When the middleware saw the request; taken by the request log line (``log_response``).
_STARTED = web.RequestKey("livedesk.request_started", float)
# What a request whose client left before any answer is logged as (nginx's convention).
_CLIENT_GONE = 499


async def log_response(request: web.Request, response: web.StreamResponse) -> None:
    """The request log line (an ``on_response_prepare`` hook), written as the answer starts.

    Not in the middleware: a file response decides its status (404 for a missing file, 304,
    206, 416) only as it is prepared, after the middleware has returned."""
    started = request.pop(_STARTED, None)
    if started is not None:
        _log_request(request, response.status, started)


def _log_request(request: web.Request, status: int, started: float) -> None:
    log.info(
        "request",
        method=request.method,
        path=loggable_path(request.path),
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One error shape for every 4xx/5xx; never a stack trace to the client."""
    request[_STARTED] = time.perf_counter()
    try:
        response = await handler(request)
        _baseline_headers(request, response)
        return response
    except asyncio.CancelledError:
        # The client went away: no answer will be prepared, so the line is written here.
        started = request.pop(_STARTED, None)
        if started is not None:
            _log_request(request, _CLIENT_GONE, started)
        raise
    except AppError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 429 and isinstance(exc.details, dict) and "retry_after" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        if exc.status == 400:
            message = _bad_request_message(exc)
        elif exc.status == 413:
            message = f"Request body too large (limit {request.app[MAX_BODY_KEY]} bytes)"
        elif exc.status == 405:
            message = f"Method {request.method} not allowed here"
        elif exc.status == 404:
            message = f"No such resource: {request.path}"
        else:
            message = exc.reason
        response = error_response(exc.status, code, message)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except Exception as exc:
        if is_unavailable(exc):
            log.warning(
                "database unavailable",
                method=request.method,
                path=loggable_path(request.path),
                error=str(exc),
            )
            return error_response(503, *DATABASE_UNAVAILABLE)
        log.exception("unhandled error", method=request.method, path=loggable_path(request.path))
        return error_response(500, "internal", "Internal server error")


MAX_BODY_KEY = web.AppKey("max_body_bytes", int)

# A signed link token as a path segment (itsdangerous: base64url parts joined by dots).
_TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]{8,}$")


def loggable_path(path: str) -> str:
    """``path`` with any signed link token replaced by ``[token]``: a booking or survey link
    is a credential, and log lines outlive it (the GET routes that carry one in their path)."""
    return "/".join("[token]" if _TOKEN_SEGMENT.match(part) else part for part in path.split("/"))


def openapi_nullable(schema: dict[str, Any]) -> None:
    """Write ``X | None`` fields the OpenAPI 3.0 way (``nullable: true``).

    aiohttp-pydantic 2.6 converts pydantic's ``anyOf: [X, {type: null}]`` by reading ``type``
    from every branch: a ``$ref`` branch (any enum, such as ``Role``) makes it raise KeyError
    and the whole document fails, and ``format``/``enum`` of the kept branch are dropped. Once
    the field is already in 3.0 form its converter leaves it alone."""
    for prop in schema.get("properties", {}).values():
        branches = prop.get("anyOf")
        if not branches:
            continue
        kept = [branch for branch in branches if branch.get("type") != "null"]
        if len(kept) != 1 or len(kept) == len(branches):
            continue
        del prop["anyOf"]
        (only,) = kept
        # Keywords beside a $ref are ignored in 3.0, hence the one-element allOf.
        prop.update({"allOf": [only]} if "$ref" in only else only)
        prop["nullable"] = True


class RangeNotSatisfiable(AppError):
    status = 416
    code = "range_not_satisfiable"


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A byte position past any file livedesk stores; longer digit strings are not read as numbers
# (Python refuses to read more than 4,300 digits at all).
_MAX_POSITION_DIGITS = 18


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a ``Range`` header asks for (inclusive), None for the whole file.
    Several ranges in one request are not supported: the client gets a clear 416, as it does
    for a start past the end, however many digits it has."""
    if header is None or header.strip() == "":
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        raise RangeNotSatisfiable("Send one byte range, like 'bytes=0-1023'")
    first, last = (digits.lstrip("0") or ("0" if digits else "") for digits in match.groups())
    if first == "" and last == "":
        raise RangeNotSatisfiable("Send one byte range, like 'bytes=0-1023'")
    # Past the longest file: a suffix that long is the whole file, an end that far is its end.
    last_huge = len(last) > _MAX_POSITION_DIGITS
    if first == "":
        count = size if last_huge else int(last)
        if count == 0:
            raise RangeNotSatisfiable("An empty suffix range selects nothing")
        return max(0, size - count), size - 1
    if len(first) > _MAX_POSITION_DIGITS:
        raise RangeNotSatisfiable(f"The range is outside the file ({size} bytes)")
    start = int(first)
    end = size - 1 if last == "" or last_huge else min(int(last), size - 1)
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"The range is outside the file ({size} bytes)")
    return start, end
