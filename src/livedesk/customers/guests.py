"""Guests: what an anonymous person types never reaches an existing profile.

The public forms (booking, the widget) are used by anyone on the internet, who may type a
known customer's e-mail or phone. So their contact details go onto a *new guest profile*
that holds no identities: nothing is looked up by them, nothing is attached to the profile
that owns them, and nothing stored there is echoed back. The guest joins a known profile
only with proof:

- the shop's signed customer id (``customers/linking.py``), or
- control of the e-mail address (``prove_email``): a signed, expiring, single-use link or
  code sent to it (``customers/verification.py``).

A phone number never links: livedesk has no SMS channel to prove it with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import search
from livedesk.customers.merge import merge_shoppers
from livedesk.customers.repository import load_live, new_identity, owners_of
from livedesk.customers.schemas import DEFAULT_LOCALE, DEFAULT_TIMEZONE
from livedesk.kit.clock import utcnow
from livedesk.kit.logging import get_logger
from livedesk.models import IdentityKind, Shopper, TimelineKind
from livedesk.timeline import append_event, new_event

log = get_logger("livedesk.customers")


async def create_guest(
    session: AsyncSession,
    *,
    display_name: str,
    email: str | None,
    phone: str | None,
    locale: str | None,
    timezone: str | None,
    source: str,
) -> Shopper:
    """A new profile for an anonymous person: the contact details they typed (already
    normalised) as its unverified e-mail and phone, and no identities at all, so it is found
    by nobody and finds nobody."""
    now = utcnow()
    shopper = Shopper(
        id=uuid.uuid4(),
        display_name=display_name.strip(),
        email=email,
        phone=phone,
        locale=locale or DEFAULT_LOCALE,
        timezone=timezone or DEFAULT_TIMEZONE,
        notes="",
        attributes={},
        created_at=now,
        updated_at=now,
    )
    session.add(shopper)
    session.add(
        new_event(
            shopper.id,
            TimelineKind.PROFILE_CREATED,
            "Guest profile created (contact details not verified)",
            {"source": source, "identities": [], "verified": False},
            occurred_at=now,
        )
    )
    await session.flush()
    return shopper


@dataclass(frozen=True)
class Proven:
    """The profile that now stands for the guest, and whether it was an existing one."""

    shopper_id: uuid.UUID
    merged: bool


async def prove_email(
    session: AsyncSession, guest_id: uuid.UUID, email: str, *, evidence: dict[str, str]
) -> Proven:
    """The guest has shown they control ``email`` (normalised). If a profile holds that
    address, the guest merges into it (a proven merge, with ``evidence`` on its record and
    the timeline); otherwise the address becomes the guest's own identity. Idempotent: a
    guest already merged into the address's profile just reports it."""
    guest, _ = await load_live(session, guest_id, lock=True)
    owner = (await owners_of(session, {IdentityKind.EMAIL: email})).get(IdentityKind.EMAIL)
    proof = {"kind": "email_verified", "email": email, **evidence}
    if owner is not None and owner != guest.id:
        await merge_shoppers(session, owner, guest.id, actor_staff_id=None, proof=proof)
        log.info("guest linked by verified e-mail", guest=str(guest.id), shopper=str(owner))
        return Proven(owner, merged=True)
    if owner is None:
        try:
            async with session.begin_nested():
                session.add(new_identity(guest.id, IdentityKind.EMAIL, email))
                await session.flush()
        except IntegrityError:
            # Claimed by another transaction a moment ago: that profile is the address's.
            return await prove_email(session, guest_id, email, evidence=evidence)
        guest.email = email
        guest.updated_at = utcnow()
        await append_event(
            session,
            guest.id,
            TimelineKind.PROFILE_VERIFIED,
            "E-mail address verified",
            {"proof": proof},
        )
        await search.index_shopper(session, guest.id)
    return Proven(guest.id, merged=False)
