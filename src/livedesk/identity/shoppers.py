"""The shopper behind a request or a socket: the one rule for a visitor token (signature,
expiry, the profile it reaches now, and its scope), on every path (Socket.IO connect and REST).

A visitor token outlives its profile when the shopper is erased (refused), or merged into
another profile (followed only when the merge was proven: the shop's signature or a verified
e-mail)."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.identity.actors import Actor, ShopperActor
from livedesk.identity.auth import current_staff
from livedesk.identity.tokens import VisitorTokens
from livedesk.kit.context import DB
from livedesk.kit.errors import NotFound, Unauthenticated
from livedesk.models import Shopper, ShopperMerge
from livedesk.timeline import live_shopper_id

# How a merge must have been proven for a token of the merged profile to reach the survivor.
PROVEN = frozenset({"shop_signature", "email_verified"})

TOKENS = web.AppKey("visitor_tokens", VisitorTokens)


async def standing_for(session: AsyncSession, shopper_id: uuid.UUID) -> uuid.UUID:
    """The profile a visitor token for ``shopper_id`` reaches now: itself while it is live;
    after a merge, the survivor only if the merge was proven (the shop's signature or a
    verified e-mail) — a staff member's merge joins histories, not browsers. 401
    ``token_revoked`` otherwise; ``unknown_shopper`` once the profile is erased."""
    row = await session.get(Shopper, shopper_id)
    if row is None:
        raise Unauthenticated("This visitor is no longer known; start again", code="unknown_shopper")
    if row.merged_into_id is None:
        return shopper_id
    if not await proven_merge(session, shopper_id):
        raise Unauthenticated("This visit has ended; start again", code="token_revoked")
    try:
        return await live_shopper_id(session, shopper_id, lock=False)
    except NotFound:
        raise Unauthenticated(
            "This visitor is no longer known; start again", code="unknown_shopper"
        ) from None


async def authenticate_shopper(session: AsyncSession, tokens: VisitorTokens, token: object) -> ShopperActor:
    """The one rule for a shopper's token, on every path (Socket.IO connect and REST):
    signature and expiry, the profile it reaches now, and its scope."""
    claims = tokens.verify(token)
    shopper_id = await standing_for(session, claims.shopper_id)
    return ShopperActor(
        shopper_id=shopper_id, visitor_id=claims.visitor_id, consultation_id=claims.consultation_id
    )


async def bearer_actor(request: web.Request) -> ShopperActor | None:
    """The shopper behind ``Authorization: Bearer <visitor token>`` (None without that
    header; 401 for any other scheme or a token that does not hold)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use Authorization: Bearer <visitor token>", code="token_invalid")
    async with request.app[DB].read() as session:
        return await authenticate_shopper(session, request.app[TOKENS], token.strip())


async def proven_merge(session: AsyncSession, merged_id: uuid.UUID) -> bool:
    """Whether ``merged_id`` was merged away by proof (not only by a staff member's
    judgement): the one rule that decides if a token issued for it reaches the survivor."""
    details = await session.scalar(
        select(ShopperMerge.details)
        .where(ShopperMerge.merged_id == merged_id)
        .order_by(ShopperMerge.at.desc())
        .limit(1)
    )
    proof = (details or {}).get("proof") if isinstance(details, dict) else None
    return isinstance(proof, dict) and proof.get("kind") in PROVEN


async def request_actor(request: web.Request) -> Actor:
    """Who is acting on a REST request a shopper and staff alike may make: the visitor token
    (``Authorization: Bearer …``) or else the staff session cookie; 401 with neither."""
    actor = await bearer_actor(request)
    if actor is not None:
        return actor
    staff = await current_staff(request)
    if staff is None:
        raise Unauthenticated("A visitor token or a staff session is needed")
    return staff
