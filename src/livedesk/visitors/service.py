"""Visitors: a shopper gets a signed token with no registration. When the shop vouches for
its logged-in customer (a signed shop customer id), the visitor is that shopper's profile."""

from __future__ import annotations

import contextlib
import secrets

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import service as customers
from livedesk.customers.linking import link_guest
from livedesk.customers.schemas import ShopperCreate
from livedesk.kit.errors import Unauthenticated
from livedesk.visitors.tokens import VisitorClaims, VisitorTokens, verify_shop_signature

TOKENS = web.AppKey("visitor_tokens", VisitorTokens)


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
            # The guest who chatted before signing in at the shop is this customer.
            with contextlib.suppress(Unauthenticated):
                guest = tokens.verify(previous_token)
                await link_guest(session, guest.shopper_id, resolution.view.shopper.id)
        claims = VisitorClaims(shopper_id=resolution.view.shopper.id, visitor_id=secrets.token_urlsafe(12))
        return tokens.issue(claims), claims, True
    if previous_token:
        # The same browser keeps the same profile across visits while its token is valid.
        try:
            claims = tokens.verify(previous_token)
            return tokens.issue(claims), claims, False
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
