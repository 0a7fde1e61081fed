"""What the integrations capability forgets for a privacy request (erase or anonymise).

Every outgoing webhook names its shopper (``data.shopper_id``), and some carry free text
(a booking's cancel reason). The outbox rows stay — a pending one is still delivered, the log
still shows what was sent when — but their data keeps only the ids (``*_id`` fields), so
neither the log nor a late delivery quotes the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.models.integrations import WebhookDelivery


def _ids_only(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data") or {}
    kept = {k: v for k, v in data.items() if k.endswith("_id") and (v is None or isinstance(v, str))}
    return {**payload, "data": {**kept, "scrubbed": True}}


async def forget_shoppers(session: AsyncSession, shopper_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Reduce the shoppers' webhook payloads to their ids, in the caller's transaction."""
    wanted = [str(i) for i in shopper_ids]
    rows = (
        await session.execute(
            select(WebhookDelivery.id, WebhookDelivery.payload).where(
                WebhookDelivery.payload["data"]["shopper_id"].as_string().in_(wanted)
            )
        )
    ).all()
    for delivery_id, payload in rows:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(payload=_ids_only(payload))
            .execution_options(synchronize_session=False)
        )
    return {"webhook_deliveries": len(rows)}
