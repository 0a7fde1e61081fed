"""Visitors: a shopper gets a signed token with no registration. When the shop vouches for
its logged-in customer (a signed shop customer id), the visitor is that shopper's profile."""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import service as customers
from livedesk.customers.linking import link_guest
from livedesk.customers.schemas import ShopperCreate
from livedesk.identity import VisitorClaims, VisitorTokens, verify_shop_signature
from livedesk.identity.shoppers import standing_for
from livedesk.kit.errors import Unauthenticated


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
