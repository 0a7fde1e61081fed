"""A visitor proves an e-mail address with a code, to bring their visit onto their history.

The widget asks for a six-digit code to be mailed to the address the shopper types; the code,
typed back *in the same browser*, is the proof. So the browser that gains the profile's access
is the one that read the mail — a stranger who types a known customer's address gets a mail
sent to that customer (within the address's daily budget) and nothing else. The answer never
says whether the address belongs to anyone.

On success a guest visit (a profile with no identities) joins the profile holding the address
(a proven merge, with the verification on its record) or, if nobody holds it, takes it as its
own identity; the browser gets a new visitor token for the profile that now stands for it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r202, r401, r403, r404, r409, r422, r429, r503
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import guests, verification
from livedesk.customers.identity import IdentityError, normalize_email
from livedesk.customers.repository import identities_of, owners_of
from livedesk.identity import TOKENS, ShopperActor, VisitorClaims, bearer_actor
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import Conflict, Forbidden, ServiceUnavailable, Unauthenticated, ValidationFailed
from livedesk.kit.http import ApiModel, ErrorResponse, client_ip, endpoint, model_json
from livedesk.kit.logging import get_logger
from livedesk.kit.mail import MAILER, Mail, MailError
from livedesk.models import IdentityKind, VerificationPurpose

log = get_logger("livedesk.visitors")

_MAIL = {
    "ja": (
        "確認コード：{code}",
        "オンライン相談の確認コードは {code} です。\n\n"
        "{minutes}分以内に、コードをお求めになった画面に入力してください。\n"
        "お心当たりがない場合はこのメールを破棄してください。何も変更されません。\n",
    ),
    "en": (
        "Your code: {code}",
        "Your online consultation code is {code}.\n\n"
        "Type it within {minutes} minutes on the page that asked for it.\n"
        "If this was not you, ignore this mail: nothing changes.\n",
    ),
}


class CodeRequest(ApiModel):
    email: str = Field(min_length=3, max_length=254)
    locale: str = Field("ja", pattern=r"^(ja|en)$")


class CodeRequested(BaseModel):
    verification_id: uuid.UUID
    expires_at: datetime


class CodeCheck(ApiModel):
    verification_id: uuid.UUID
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class Linked(BaseModel):
    token: str
    shopper_id: str
    # True when the visit joined a profile that already held the address.
    linked: bool
    expires_in: int


async def _guest(request: web.Request) -> ShopperActor:
    actor = await bearer_actor(request)
    if actor is None:
        raise Unauthenticated("Send Authorization: Bearer <visitor token>", code="token_missing")
    if actor.scoped:
        raise Forbidden("This link opens one booked call only", code="token_scoped")
    return actor


@endpoint
async def request_code(
    request: web.Request, body: CodeRequest
) -> (
    r202[CodeRequested]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r422[ErrorResponse]
    | r429[ErrorResponse]
    | r503[ErrorResponse]
):
    """Mail a six-digit code to ``email`` (visitor token as ``Authorization: Bearer``). The
    answer is the same whether or not the address is known. 429 ``mail_budget`` when the
    address has had its mails for the day; 503 ``mail_unavailable`` without a mail server.

    Tags: visitors
    """
    actor = await _guest(request)
    settings = request.app[SETTINGS]
    mailer = request.app[MAILER]
    if not mailer.enabled:
        raise ServiceUnavailable("Mail cannot be sent from this installation", code="mail_unavailable")
    try:
        email = normalize_email(body.email)
    except IdentityError as exc:
        raise ValidationFailed(
            f"field 'email': {exc}", details=[{"field": "email", "message": str(exc)}]
        ) from None
    await request.app[RATE_LIMITS].hit(
        "5/minute", "email.code", client_ip(request), message="Too many codes asked for; wait a minute"
    )
    expires = utcnow() + timedelta(minutes=verification.CODE_MINUTES)
    async with request.app[DB].transaction() as session:
        await verification.check_budget(session, email, settings.verification_mails_per_day)
        row, code = await verification.start(
            session,
            shopper_id=actor.shopper_id,
            email=email,
            purpose=VerificationPurpose.LINK,
            expires_at=expires,
            with_code=True,
        )
    subject, text = _MAIL[body.locale]
    mail = Mail(
        to=email,
        subject=subject.format(code=code),
        text=text.format(code=code, minutes=verification.CODE_MINUTES),
    )
    try:
        await mailer.send(mail)
    except MailError as exc:
        log.warning("verification code not delivered", error=str(exc))
        raise ServiceUnavailable(
            "The mail could not be sent; try again later", code="mail_unavailable"
        ) from None
    return model_json(CodeRequested(verification_id=row.id, expires_at=expires), status=202)


@endpoint
async def check_code(
    request: web.Request, body: CodeCheck
) -> (
    r200[Linked]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Type the mailed code back (same visitor token). The visit joins the address's profile
    (or takes the address) and the answer is a new visitor token for it. 422 ``wrong_code``
    (five tries), 409 ``link_used`` / ``link_expired`` / ``too_many_tries`` /
    ``identity_conflict``.

    Tags: visitors
    """
    actor = await _guest(request)
    settings = request.app[SETTINGS]
    async with request.app[DB].transaction() as session:
        row, right = await verification.consume_code(
            session, body.verification_id, body.code, shopper_id=actor.shopper_id
        )
        proven = None
        if right:
            await _may_link(session, actor.shopper_id, row.email)
            proven = await guests.prove_email(
                session, actor.shopper_id, row.email, evidence={"verification_id": str(row.id), "via": "code"}
            )
    if proven is None:
        # The wrong try is committed (it counts) before the refusal goes out.
        raise verification.wrong_code(row.attempts)
    claims = VisitorClaims(shopper_id=proven.shopper_id, visitor_id=actor.visitor_id)
    out = Linked(
        token=request.app[TOKENS].issue(claims),
        shopper_id=str(proven.shopper_id),
        linked=proven.merged,
        expires_in=settings.visitor_token_hours * 3600,
    )
    return model_json(out)


async def _may_link(session: AsyncSession, shopper_id: uuid.UUID, email: str) -> None:
    """Only a guest visit (no identities) joins another profile; a profile that already is
    somebody (the shop's customer, say) takes an address nobody holds, and is refused one
    that another profile holds — two known people are joined by staff, not by a code."""
    if not await identities_of(session, shopper_id):
        return
    holder = (await owners_of(session, {IdentityKind.EMAIL: email})).get(IdentityKind.EMAIL)
    if holder is not None and holder != shopper_id:
        raise Conflict(
            "This address belongs to another customer profile; our staff can join them for you",
            code="identity_conflict",
        )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/visitors/email-code", request_code)
    app.router.add_post("/api/v1/visitors/email-code/check", check_code)
