"""Demo data of the customer history: store visits for some demo shoppers (so the timeline
shows that channel too) and search terms for every demo profile (the demo writes profiles
directly, not through the profile service that indexes them)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import search
from livedesk.demo.plan import Plan
from livedesk.integrations import shop
from livedesk.integrations.schemas import ChannelEventUpsert

STORES = ("Hanami Beauty Ginza", "Hanami Beauty Shinjuku", "Hanami Beauty Umeda")
VISITS = (
    "Skin analysis at the counter; tried the hydrating serum",
    "Colour match for foundation",
    "Picked up a web order in store",
)


async def seed_history(session: AsyncSession, plan: Plan) -> None:
    """Store visits for the first demo shoppers (idempotent by event id) and search terms."""
    for n, shopper in enumerate(plan.shoppers[:8]):
        for k in range(1 + n % 2):
            event = ChannelEventUpsert.model_validate(
                {
                    "customer": {"shop_customer_id": shopper.shop_customer_id},
                    "kind": "store.visit",
                    "occurred_at": shopper.created_at + timedelta(days=20 + 37 * k + n),
                    "store_name": STORES[(n + k) % len(STORES)],
                    "description": VISITS[(n + k) % len(VISITS)],
                }
            )
            event_id = f"demo-visit-{shopper.shop_customer_id}-{k}"
            await shop.record_event(session, event_id, event, integration_id=None, source="demo")
    await search.reindex_missing(session)
