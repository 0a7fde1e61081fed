"""Linking an anonymous visit to the shopper the shop vouches for.

A visitor who chatted as a guest and then signs in at the shop arrives with their previous
visitor token *and* a signed shop customer id. The guest profile (no identities: nobody else
can have been recognised by it) is merged into the shop customer's profile, so the earlier
chat lands on the right timeline; the merge is recorded like any other (merge record, audit
entry ``shopper.merge``, ``profile.merged`` event).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers.merge import merge_shoppers
from livedesk.kit.logging import get_logger
from livedesk.models import Shopper, ShopperIdentity

log = get_logger("livedesk.customers")


async def link_guest(session: AsyncSession, guest_id: uuid.UUID, shopper_id: uuid.UUID) -> bool:
    """Merge the guest profile ``guest_id`` into ``shopper_id`` when it is an anonymous guest
    (live, no identities). A guest who already has an identity is a known person — possibly
    someone else on a shared device — and is left alone. True when merged."""
    if guest_id == shopper_id:
        return False
    guest = await session.get(Shopper, guest_id)
    if guest is None or guest.merged_into_id is not None:
        return False
    has_identity = await session.scalar(
        select(ShopperIdentity.id).where(ShopperIdentity.shopper_id == guest_id).limit(1)
    )
    if has_identity is not None:
        return False
    await merge_shoppers(session, shopper_id, guest_id, actor_staff_id=None, proof={"kind": "shop_signature"})
    log.info("guest visit linked to shop customer", guest=str(guest_id), shopper=str(shopper_id))
    return True
