"""The unified customer history as the advisor console reads it: one timeline event opened
in full (a consultation with its chat transcript, an order with its lines, a recording with
its player address …), and notes staff add to a shopper's timeline."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.identity import Principal
from livedesk.kit.errors import NotFound, ValidationFailed
from livedesk.models import (
    Consultation,
    Message,
    ShopOrder,
    ShopOrderLine,
    Staff,
    TimelineEvent,
    TimelineKind,
)
from livedesk.models.integrations import ChannelEvent
from livedesk.recording import access as recording_access
from livedesk.timeline import append_event

NOTE_MAX = 5000
TRANSCRIPT_MAX = 1000


async def add_note(
    session: AsyncSession, shopper_id: uuid.UUID, text: str, *, staff_id: uuid.UUID
) -> TimelineEvent:
    """A note on the shopper's timeline, written by ``staff_id``."""
    body = text.strip()
    if not body:
        raise ValidationFailed(
            "body field 'text': a note cannot be empty",
            details=[{"in": "body", "field": "text", "message": "empty"}],
        )
    first_line = body.splitlines()[0]
    return await append_event(
        session, shopper_id, TimelineKind.NOTE, first_line, {"text": body[:NOTE_MAX]}, actor_staff_id=staff_id
    )


async def _transcript(session: AsyncSession, consultation_id: uuid.UUID) -> dict[str, Any]:
    c = await session.get(Consultation, consultation_id)
    if c is None:
        return {}
    advisor = await session.get(Staff, c.advisor_id) if c.advisor_id else None
    messages = (
        await session.scalars(
            select(Message)
            .where(Message.consultation_id == consultation_id)
            .order_by(Message.seq)
            .limit(TRANSCRIPT_MAX)
        )
    ).all()
    return {
        "consultation": {
            "id": c.id,
            "kind": c.kind.value,
            "status": c.status.value,
            "advisor_name": advisor.display_name if advisor else None,
            "requested_at": c.requested_at,
            "accepted_at": c.accepted_at,
            "ended_at": c.ended_at,
            "closed_at": c.closed_at,
            "notes": c.notes,
        },
        "transcript": [
            {
                "seq": m.seq,
                "sender": m.sender_kind.value,
                "kind": m.kind.value,
                "body": m.body,
                "at": m.created_at,
            }
            for m in messages
        ],
    }


async def _order(session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any]:
    order = await session.get(ShopOrder, order_id)
    if order is None:
        return {}
    lines = (
        await session.scalars(
            select(ShopOrderLine).where(ShopOrderLine.order_id == order_id).order_by(ShopOrderLine.position)
        )
    ).all()
    return {
        "order": {
            "id": order.id,
            "external_id": order.external_id,
            "channel": order.channel.value,
            "ordered_at": order.ordered_at,
            "currency": order.currency,
            "total_minor": order.total_minor,
            "store_name": order.store_name,
            "lines": [
                {"sku": x.sku, "name": x.name, "quantity": x.quantity, "unit_price_minor": x.unit_price_minor}
                for x in lines
            ],
        }
    }


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def event_detail(
    session: AsyncSession, shopper_id: uuid.UUID, event_id: uuid.UUID, viewer: Principal
) -> dict[str, Any]:
    """One timeline event of this (live) shopper with what it refers to. NotFound when the
    event is not this shopper's — an id never opens another shopper's history."""
    event = await session.get(TimelineEvent, event_id)
    if event is None or event.shopper_id != shopper_id:
        raise NotFound("No such event on this shopper's timeline", code="event_not_found")
    detail: dict[str, Any] = {}
    ref = _uuid(event.ref_id) if event.ref_id else None
    if (
        event.kind in (TimelineKind.CONSULTATION, TimelineKind.MESSAGE, TimelineKind.CALL)
        and event.consultation_id
    ):
        detail = await _transcript(session, event.consultation_id)
    elif event.kind is TimelineKind.SHOP_ORDER and ref:
        detail = await _order(session, ref)
        # A purchase paid in a consultation opens with that consultation (who sold, when, notes,
        # the chat), so the history links the order to the talk it came from.
        if event.consultation_id:
            detail.update(await _transcript(session, event.consultation_id))
    elif event.kind in (TimelineKind.STORE_VISIT, TimelineKind.CHANNEL_EVENT) and ref:
        row = await session.get(ChannelEvent, ref)
        if row is not None:
            detail = {
                "channel_event": {
                    "kind": row.kind,
                    "occurred_at": row.occurred_at,
                    "store_name": row.store_name,
                    "description": row.description,
                    "data": row.data,
                }
            }
    elif event.kind is TimelineKind.RECORDING:
        recording_id = _uuid(event.data.get("recording_id") or event.ref_id)
        # The player address only for those who may play it (the recording capability's
        # rule: its consultation's advisor, supervisors, admins) — the timeline itself is
        # open to every advisor.
        if recording_id and await recording_access.may_play_id(session, viewer, recording_id):
            detail = {
                "recording": {"id": recording_id, "media_url": f"/api/v1/recordings/{recording_id}/media"}
            }
            if event.consultation_id:
                detail.update(await _transcript(session, event.consultation_id))
    if event.actor_staff_id:
        actor = await session.get(Staff, event.actor_staff_id)
        detail["actor_name"] = actor.display_name if actor else None
    result: dict[str, Any] = to_jsonable_python(detail)
    return result


async def load_event(session: AsyncSession, event_id: uuid.UUID) -> TimelineEvent:
    event = await session.get(TimelineEvent, event_id)
    if event is None:
        raise NotFound("No such event on this shopper's timeline", code="event_not_found")
    return event
