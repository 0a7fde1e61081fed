"""Visitors: a shopper gets a signed token with no registration. When the shop vouches for
its logged-in customer (a signed shop customer id), the visitor is that shopper's profile."""

from __future__ import annotations

import contextlib
import secrets
import uuid

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import guests
from livedesk.customers import service as customers
from livedesk.customers.linking import link_guest
from livedesk.customers.schemas import ShopperCreate
from livedesk.customers.timeline import live_shopper_id
from livedesk.kit.actors import Actor, ShopperActor
from livedesk.kit.context import DB
from livedesk.kit.errors import NotFound, Unauthenticated
from livedesk.models import Shopper
from livedesk.staff.auth import current_staff
from livedesk.visitors.tokens import VisitorClaims, VisitorTokens, verify_shop_signature

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
    if not await guests.proven_merge(session, shopper_id):
        raise Unauthenticated("This visit has ended; start again", code="token_revoked")
    try:
        return await live_shopper_id(session, shopper_id, lock=False)
    except NotFound:
        raise Unauthenticated(
            "This visitor is no longer known; start again", code="unknown_shopper"
        ) from None


async def authenticate(session: AsyncSession, tokens: VisitorTokens, token: object) -> ShopperActor:
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
        return await authenticate(session, request.app[TOKENS], token.strip())


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


async def start_visit(
    session: AsyncSession,
    tokens: VisitorTokens,
    *,
    shop_secret: str,
    shop_customer_id: str | None,
    shop_signature: str | None,
    display_name: str | None,
    locale: str | None,
    previous_token: str | None,
) -> tuple[str, VisitorClaims, bool]:
    """Returns (token, claims, linked-to-a-shop-customer)."""
    if shop_customer_id is not None:
        if not shop_signature or not verify_shop_signature(shop_secret, shop_customer_id, shop_signature):
            raise Unauthenticated("The shop customer id is not signed correctly", code="bad_shop_signature")
        resolution = await customers.resolve_shopper(
            session,
            shop_customer_id=shop_customer_id,
            display_name=display_name,
            locale=locale,
            source="visitor",
        )
        assert resolution.view is not None
        if previous_token:
            # The guest who chatted before signing in at the shop is this customer (never from
            # a token scoped to one booked call: that browser only proved the booking link).
            with contextlib.suppress(Unauthenticated):
                guest = tokens.verify(previous_token)
                if not guest.scoped:
                    await link_guest(session, guest.shopper_id, resolution.view.shopper.id)
        claims = VisitorClaims(shopper_id=resolution.view.shopper.id, visitor_id=secrets.token_urlsafe(12))
        return tokens.issue(claims), claims, True
    if previous_token:
        # The same browser keeps the same guest across visits while its token is valid, and
        # only as that guest: a token for one consultation, or for a profile that has since
        # been merged away, starts a new guest instead.
        try:
            claims = tokens.verify(previous_token)
            if not claims.scoped and await standing_for(session, claims.shopper_id) == claims.shopper_id:
                renewed = VisitorClaims(shopper_id=claims.shopper_id, visitor_id=claims.visitor_id)
                return tokens.issue(renewed), renewed, False
        except Unauthenticated:
            pass
    # An anonymous visitor still gets a profile, so the consultation has a timeline to land
    # on; it is linked (merged) once the shopper is recognised.
    view = await customers.create_shopper(
        session,
        ShopperCreate(display_name=display_name or "Guest", locale=locale or "ja"),
        source="visitor",
    )
    claims = VisitorClaims(shopper_id=view.shopper.id, visitor_id=secrets.token_urlsafe(12))
    return tokens.issue(claims), claims, False
