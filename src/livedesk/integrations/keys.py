"""Integrations and their API keys.

A key is ``ldk_`` + 43 random URL-safe characters. Only its SHA-256 is stored (a key is a
random secret, not a password: a fast hash is enough and makes each request one indexed
lookup); the key itself is returned once, when it is made. Revoking is immediate.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, Unauthenticated
from livedesk.models.integrations import Integration, IntegrationKey

KEY_PREFIX = "ldk_"
SHOWN_PREFIX = 12


@dataclass(frozen=True)
class IntegrationPrincipal:
    """Who is calling the shop API: an integration, through one of its keys."""

    integration_id: uuid.UUID
    key_id: uuid.UUID
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _audit(
    session: AsyncSession, actor: uuid.UUID | None, action: str, target: uuid.UUID, **details: str
) -> None:
    audit.record(
        session, actor=actor, action=action, target_type="integration", target_id=target, details=details
    )


async def create_integration(
    session: AsyncSession, name: str, *, actor_staff_id: uuid.UUID | None
) -> Integration:
    """A new integration (a shop, a POS …); Conflict (409) when the name is taken."""
    if await session.scalar(select(Integration.id).where(Integration.name == name)) is not None:
        raise Conflict(f"An integration named {name!r} exists already", code="integration_exists")
    integration = Integration(
        id=uuid.uuid4(), name=name, created_at=utcnow(), created_by_staff_id=actor_staff_id
    )
    session.add(integration)
    _audit(session, actor_staff_id, "integration.create", integration.id, name=name)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"An integration named {name!r} exists already", code="integration_exists") from None
    return integration


async def list_integrations(session: AsyncSession) -> list[tuple[Integration, list[IntegrationKey]]]:
    integrations = (await session.scalars(select(Integration).order_by(Integration.name))).all()
    keys = (await session.scalars(select(IntegrationKey).order_by(IntegrationKey.created_at))).all()
    by_integration: dict[uuid.UUID, list[IntegrationKey]] = {}
    for key in keys:
        by_integration.setdefault(key.integration_id, []).append(key)
    return [(i, by_integration.get(i.id, [])) for i in integrations]


async def create_key(
    session: AsyncSession, integration_id: uuid.UUID, label: str, *, actor_staff_id: uuid.UUID | None
) -> tuple[IntegrationKey, str]:
    """A new key for the integration: (row, the key itself — shown this once only)."""
    if await session.get(Integration, integration_id) is None:
        raise NotFound("No such integration", code="integration_not_found")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = IntegrationKey(
        id=uuid.uuid4(),
        integration_id=integration_id,
        label=label,
        prefix=key[:SHOWN_PREFIX],
        key_hash=hash_key(key),
        created_at=utcnow(),
    )
    session.add(row)
    _audit(session, actor_staff_id, "integration.key.create", integration_id, key_id=str(row.id), label=label)
    return row, key


async def revoke_key(
    session: AsyncSession, integration_id: uuid.UUID, key_id: uuid.UUID, *, actor_staff_id: uuid.UUID | None
) -> IntegrationKey:
    """Stop a key from working, now. Revoking a revoked key changes nothing."""
    row = await session.get(IntegrationKey, key_id, with_for_update=True)
    if row is None or row.integration_id != integration_id:
        raise NotFound("No such key for this integration", code="key_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        _audit(session, actor_staff_id, "integration.key.revoke", integration_id, key_id=str(key_id))
    return row


def bearer_key(header: str | None) -> str:
    """The key in an ``Authorization: Bearer …`` header; 401 otherwise."""
    if not header:
        raise Unauthenticated(
            "Send the integration's API key as Authorization: Bearer <key>", code="no_api_key"
        )
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated(
            "Send the integration's API key as Authorization: Bearer <key>", code="no_api_key"
        )
    return value.strip()


async def authenticate(session: AsyncSession, key: str) -> IntegrationPrincipal:
    """The integration this key belongs to; 401 for an unknown or revoked key."""
    row = (
        await session.execute(
            select(IntegrationKey, Integration.name)
            .join(Integration, Integration.id == IntegrationKey.integration_id)
            .where(IntegrationKey.key_hash == hash_key(key))
        )
    ).one_or_none()
    if row is None:
        raise Unauthenticated("Unknown API key", code="bad_api_key")
    found, name = row
    if found.revoked_at is not None:
        raise Unauthenticated("This API key was revoked", code="api_key_revoked")
    return IntegrationPrincipal(integration_id=found.integration_id, key_id=found.id, name=name)
