"""The demo brand's catalogue as products: the same SKUs, names, prices and pictures as the
demo shop (``web/demo/products/``) and the demo shoppers' past orders, so the advisor can
sell from either in a call."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.demo import data
from livedesk.demo.plan import demo_id
from livedesk.models import Product


async def seed_catalogue(session: AsyncSession) -> int:
    """Add the demo products that are not there yet (found by SKU); returns how many."""
    existing = set((await session.scalars(select(Product.sku))).all())
    added = 0
    for p in data.CATALOGUE:
        if p.sku in existing:
            continue
        session.add(
            Product(
                id=demo_id("product", p.sku),
                sku=p.sku,
                name=p.name_en,
                name_ja=p.name_ja,
                # JPY has no minor unit: the yen price is the minor amount.
                price_minor=p.price,
                currency=data.CURRENCY,
                image_url=p.image_url,
                active=True,
            )
        )
        added += 1
    await session.flush()
    return added
