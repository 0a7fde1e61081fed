"""Shopper profiles: create, update, read, and find-or-create by identity.

One profile per person across channels. A person is found by any of their identities
(e-mail, phone, shop customer id), each unique across all profiles, so "who is this?" is one
lookup. Services take the caller's session and never commit: the handler owns the transaction.
Merging lives in ``merge.py``; the queries in ``repository.py``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.customers import search
from livedesk.customers.identity import (
    DEFAULT_PHONE_REGION,
    IdentityError,
    normalize_identity,
    normalize_region,
    validate_timezone,
)
from livedesk.customers.repository import (
    ShopperView,
    identities_of,
    load_live,
    new_identity,
    owners_of,
)
from livedesk.customers.schemas import (
    DEFAULT_LOCALE,
    DEFAULT_TIMEZONE,
    LOCALE_PATTERN,
    MAX_ATTRIBUTES,
    ShopperCreate,
    ShopperUpdate,
)
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, ValidationFailed
from livedesk.kit.logging import get_logger
from livedesk.models import (
    IdentityKind,
    Shopper,
    ShopperIdentity,
    TimelineKind,
)
from livedesk.timeline import new_event

log = get_logger("livedesk.customers")

IDENTITY_FIELD: dict[IdentityKind, str] = {
    IdentityKind.EMAIL: "email",
    IdentityKind.PHONE: "phone",
    IdentityKind.SHOP_CUSTOMER_ID: "shop_customer_id",
}
IDENTITY_LABEL: dict[IdentityKind, str] = {
    IdentityKind.EMAIL: "e-mail",
    IdentityKind.PHONE: "phone number",
    IdentityKind.SHOP_CUSTOMER_ID: "shop customer id",
}
# When a shopper's identities point at different profiles, which match wins: the shop's own
# id is issued per account by a system, an e-mail is personal but gets shared in families,
# and a phone number is the most often shared (a household landline) or recycled.
RESOLVE_PRIORITY: tuple[IdentityKind, ...] = (
    IdentityKind.SHOP_CUSTOMER_ID,
    IdentityKind.EMAIL,
    IdentityKind.PHONE,
)


@dataclass(frozen=True)
class Candidate:
    """A profile that one or more of the given identities point at."""

    shopper_id: uuid.UUID
    matched_by: tuple[IdentityKind, ...]


@dataclass(frozen=True)
class Resolution:
    """What ``resolve_shopper`` found. ``view`` is None only when nothing matched and
    ``create`` was false. ``candidates`` lists every profile matched when the identities
    disagree (``conflict``); nothing is merged automatically — a person decides."""

    view: ShopperView | None
    created: bool
    matched_by: tuple[IdentityKind, ...] = ()
    attached: list[ShopperIdentity] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def conflict(self) -> bool:
        return len(self.candidates) > 1


# --- identities --------------------------------------------------------------------------


def _invalid(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"field '{field_name}': {message}",
        details=[{"field": field_name, "message": message}],
    )


def normalize_identities(
    *,
    email: str | None = None,
    phone: str | None = None,
    shop_customer_id: str | None = None,
    phone_region: str = DEFAULT_PHONE_REGION,
) -> dict[IdentityKind, str]:
    """The given identities, normalised, keyed by kind. ValidationFailed (422) naming the
    field for a value that cannot be normalised."""
    raw = {
        IdentityKind.EMAIL: email,
        IdentityKind.PHONE: phone,
        IdentityKind.SHOP_CUSTOMER_ID: shop_customer_id,
    }
    if phone is not None:
        try:
            phone_region = normalize_region(phone_region)
        except IdentityError as exc:
            raise _invalid("phone_region", str(exc)) from None
    out: dict[IdentityKind, str] = {}
    for kind, value in raw.items():
        if value is None:
            continue
        try:
            out[kind] = normalize_identity(kind, value, region=phone_region)
        except IdentityError as exc:
            raise _invalid(IDENTITY_FIELD[kind], str(exc)) from None
    return out


def _identity_conflict(kind: IdentityKind, value: str, owner: uuid.UUID) -> Conflict:
    return Conflict(
        f"The {IDENTITY_LABEL[kind]} {value} already belongs to shopper {owner}",
        code="identity_conflict",
        details={"field": IDENTITY_FIELD[kind], "kind": kind.value, "value": value, "shopper_id": str(owner)},
    )


async def _claim(
    session: AsyncSession, shopper_id: uuid.UUID | None, wanted: Mapping[IdentityKind, str]
) -> dict[IdentityKind, uuid.UUID]:
    """Refuse (409) any wanted identity that belongs to another profile; return the owners."""
    owners = await owners_of(session, wanted)
    for kind, value in wanted.items():
        owner = owners.get(kind)
        if owner is not None and owner != shopper_id:
            raise _identity_conflict(kind, value, owner)
    return owners


async def _flush_claims(session: AsyncSession) -> None:
    """Flush new identity rows. The check in ``_claim`` decides every ordinary case; this
    catches the one it cannot see on PostgreSQL: another transaction claiming the same
    identity between our check and our insert (the unique constraint refuses the second)."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            "One of these identities was claimed by another request at the same moment; try again",
            code="identity_conflict",
        ) from None


# --- reading -----------------------------------------------------------------------------


async def get_shopper(session: AsyncSession, shopper_id: uuid.UUID) -> ShopperView:
    """A profile with its identities. The id of a merged-away profile gives the profile it
    was merged into (``requested_id`` says so); NotFound (404) for an unknown id."""
    shopper, requested = await load_live(session, shopper_id, lock=False)
    return ShopperView(shopper, await identities_of(session, shopper.id), requested)


async def live_shopper(session: AsyncSession, shopper_id: uuid.UUID) -> Shopper:
    """The live profile for ``shopper_id`` (following merges), without its identities."""
    shopper, _ = await load_live(session, shopper_id, lock=False)
    return shopper


# --- writing -----------------------------------------------------------------------------


def _add_profile(
    session: AsyncSession,
    *,
    identities: Mapping[IdentityKind, str],
    display_name: str,
    locale: str,
    timezone: str,
    notes: str,
    attributes: Mapping[str, Any],
    actor_staff_id: uuid.UUID | None,
    source: str,
) -> ShopperView:
    now = utcnow()
    shopper = Shopper(
        id=uuid.uuid4(),
        display_name=display_name,
        email=identities.get(IdentityKind.EMAIL),
        phone=identities.get(IdentityKind.PHONE),
        locale=locale,
        timezone=timezone,
        notes=notes,
        attributes=dict(attributes),
        created_at=now,
        updated_at=now,
    )
    rows = [new_identity(shopper.id, kind, value) for kind, value in identities.items()]
    session.add(shopper)
    session.add_all(rows)
    session.add(
        new_event(
            shopper.id,
            TimelineKind.PROFILE_CREATED,
            f"Profile created: {display_name}" if display_name else "Profile created",
            {"source": source, "identities": [kind.value for kind in identities]},
            occurred_at=now,
            actor_staff_id=actor_staff_id,
        )
    )
    return ShopperView(shopper, rows)


async def create_shopper(
    session: AsyncSession,
    data: ShopperCreate,
    *,
    actor_staff_id: uuid.UUID | None = None,
    source: str = "api",
) -> ShopperView:
    """Create a profile with its identities and a ``profile.created`` timeline event.

    Conflict (409, code ``identity_conflict``) when an identity already belongs to someone,
    naming the identity and that shopper's id. ``source`` says where the profile came from
    (``api``, ``booking``, ``import`` …) and is kept in the timeline event.
    """
    wanted = normalize_identities(
        email=data.email,
        phone=data.phone,
        shop_customer_id=data.shop_customer_id,
        phone_region=data.phone_region,
    )
    await _claim(session, None, wanted)
    view = _add_profile(
        session,
        identities=wanted,
        display_name=data.display_name,
        locale=data.locale,
        timezone=data.timezone,
        notes=data.notes,
        attributes=data.attributes,
        actor_staff_id=actor_staff_id,
        source=source,
    )
    await _flush_claims(session)
    search.add_terms(session, view.shopper, wanted)
    return view


async def update_shopper(
    session: AsyncSession,
    shopper_id: uuid.UUID,
    data: ShopperUpdate,
    *,
    actor_staff_id: uuid.UUID | None = None,
) -> ShopperView:
    """Change the fields that were sent (PATCH). Sending ``email``, ``phone`` or
    ``shop_customer_id`` replaces all of the profile's identities of that kind (null removes
    them), with the same conflict rule as creating. ``attributes`` are merged key by key; a
    key sent as null is removed. A merged-away id updates the profile it was merged into."""
    shopper, requested = await load_live(session, shopper_id, lock=True)
    sent = data.model_fields_set
    changes: dict[IdentityKind, str | None] = {}
    for kind, name in IDENTITY_FIELD.items():
        if name in sent:
            value = getattr(data, name)
            changes[kind] = (
                None
                if value is None
                else normalize_identities(**{name: value}, phone_region=data.phone_region)[kind]
            )
    wanted = {kind: value for kind, value in changes.items() if value is not None}
    owners = await _claim(session, shopper.id, wanted)
    for kind, value in changes.items():
        # Keep the row that already holds the new value: deleting and re-inserting it in one
        # flush would trip the unique constraint (SQLAlchemy inserts before it deletes).
        stale = delete(ShopperIdentity).where(
            ShopperIdentity.shopper_id == shopper.id, ShopperIdentity.kind == kind
        )
        if value is not None:
            stale = stale.where(ShopperIdentity.value != value)
        await session.execute(stale.execution_options(synchronize_session=False))
        if value is not None and owners.get(kind) != shopper.id:
            session.add(new_identity(shopper.id, kind, value))
    if IdentityKind.EMAIL in changes:
        shopper.email = changes[IdentityKind.EMAIL]
    if IdentityKind.PHONE in changes:
        shopper.phone = changes[IdentityKind.PHONE]
    if data.display_name is not None:
        shopper.display_name = data.display_name
    if data.locale is not None:
        shopper.locale = data.locale
    if data.timezone is not None:
        shopper.timezone = validate_timezone(data.timezone)
    if data.notes is not None:
        shopper.notes = data.notes
    if data.attributes is not None:
        attributes = dict(shopper.attributes)
        for key, value in data.attributes.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if len(attributes) > MAX_ATTRIBUTES:
            raise _invalid("attributes", f"a profile holds at most {MAX_ATTRIBUTES} attributes")
        # A new dict, because the JSON column does not notice changes made inside the old one.
        shopper.attributes = attributes
    shopper.updated_at = utcnow()
    await _flush_claims(session)
    await search.index_shopper(session, shopper.id)
    return ShopperView(shopper, await identities_of(session, shopper.id), requested)


async def resolve_shopper(
    session: AsyncSession,
    *,
    email: str | None = None,
    phone: str | None = None,
    shop_customer_id: str | None = None,
    display_name: str | None = None,
    create: bool = True,
    phone_region: str = DEFAULT_PHONE_REGION,
    locale: str | None = None,
    timezone: str | None = None,
    actor_staff_id: uuid.UUID | None = None,
    source: str = "resolve",
    strict_shop_id: bool = False,
) -> Resolution:
    """Find the one person these identities belong to, or create them.

    Values are normalised first (``Hana@Example.com`` = ``hana@example.com``;
    ``090-1234-5678`` = ``+81 90 1234 5678`` with ``phone_region`` JP). When every matching
    identity points at the same profile, that profile is returned and the given identities
    it lacks (and nobody else holds) are attached to it. When they point at different
    profiles, the shop-id match wins, then e-mail, then phone; nothing is merged and
    ``candidates`` lists them all (``conflict`` is true). When nothing matches, a profile is
    created (with a ``profile.created`` event) unless ``create`` is false, in which case
    ``view`` is None. ``display_name``, ``locale`` and ``timezone`` are used for a new
    profile; an existing one only gets a display name if it had none.

    ``strict_shop_id`` is for data that a shop sends about *its* customer: a shop customer id
    nobody holds yet may not lead to another person's profile through an e-mail or phone
    number sent along (that would file the shop's data, and later its name and e-mail
    changes, under someone else). Such a call is a Conflict (409 ``identity_conflict``)
    naming the identity; a known shop id still wins as usual.

    Booking, visitor linking and shop import call this. ValidationFailed (422) names a bad
    field; at least one identity is required.
    """
    wanted = normalize_identities(
        email=email, phone=phone, shop_customer_id=shop_customer_id, phone_region=phone_region
    )
    if not wanted:
        raise ValidationFailed(
            "Give at least one of email, phone or shop_customer_id",
            details=[{"field": name, "message": "one is required"} for name in IDENTITY_FIELD.values()],
        )
    if locale is not None and not re.fullmatch(LOCALE_PATTERN, locale):
        raise _invalid("locale", f"not a language tag such as ja or en-US: {locale!r}")
    if timezone is not None:
        try:
            timezone = validate_timezone(timezone)
        except IdentityError as exc:
            raise _invalid("timezone", str(exc)) from None
    profile = _NewProfile(
        display_name=(display_name or "").strip(),
        locale=locale or DEFAULT_LOCALE,
        timezone=timezone or DEFAULT_TIMEZONE,
        actor_staff_id=actor_staff_id,
        source=source,
    )
    for attempt in range(2):
        try:
            # A savepoint, so that losing a race undoes only this attempt, not the caller's
            # transaction (which may already hold the booking this shopper is resolved for).
            async with session.begin_nested():
                return await _resolve_once(
                    session, wanted, profile, create=create, strict_shop_id=strict_shop_id
                )
        except IntegrityError:
            # On PostgreSQL another transaction inserted one of these identities between our
            # lookup and our insert, and has committed (the insert waited for it). Looking again
            # finds that person instead of failing the caller.
            if attempt:
                raise Conflict(
                    "These identities are being changed by another request at the same moment; try again",
                    code="identity_conflict",
                ) from None
            log.info("identity claimed concurrently; resolving again")
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _NewProfile:
    display_name: str
    locale: str
    timezone: str
    actor_staff_id: uuid.UUID | None
    source: str


async def _resolve_once(
    session: AsyncSession,
    wanted: Mapping[IdentityKind, str],
    profile: _NewProfile,
    *,
    create: bool,
    strict_shop_id: bool = False,
) -> Resolution:
    owners = await owners_of(session, wanted)
    shop_id = IdentityKind.SHOP_CUSTOMER_ID
    if strict_shop_id and shop_id in wanted and shop_id not in owners:
        # A new shop customer: any other identity already held is someone else's.
        for kind in RESOLVE_PRIORITY:
            if kind in owners:
                raise _identity_conflict(kind, wanted[kind], owners[kind])
    by_shopper: dict[uuid.UUID, list[IdentityKind]] = {}
    for kind in RESOLVE_PRIORITY:
        if kind in owners:
            by_shopper.setdefault(owners[kind], []).append(kind)

    if not by_shopper:
        if not create:
            return Resolution(view=None, created=False)
        view = _add_profile(
            session,
            identities=wanted,
            display_name=profile.display_name,
            locale=profile.locale,
            timezone=profile.timezone,
            notes="",
            attributes={},
            actor_staff_id=profile.actor_staff_id,
            source=profile.source,
        )
        await session.flush()
        search.add_terms(session, view.shopper, wanted)
        return Resolution(view=view, created=True, attached=list(view.identities))

    # Dict order follows RESOLVE_PRIORITY, so the first profile is the one the strongest
    # identity points at.
    chosen_id, matched_by = next(iter(by_shopper.items()))
    candidates = [Candidate(sid, tuple(kinds)) for sid, kinds in by_shopper.items()]
    if len(candidates) > 1:
        log.warning(
            "shopper identities point at different profiles",
            chosen=str(chosen_id),
            candidates=[str(c.shopper_id) for c in candidates],
        )
    shopper, _ = await load_live(session, chosen_id, lock=True)
    attached = [new_identity(shopper.id, kind, value) for kind, value in wanted.items() if kind not in owners]
    session.add_all(attached)
    # Only identities that are now this profile's may fill its blanks, never another
    # candidate's.
    mine = {kind for kind in wanted if owners.get(kind, chosen_id) == chosen_id}
    changed = bool(attached)
    if shopper.email is None and IdentityKind.EMAIL in mine:
        shopper.email = wanted[IdentityKind.EMAIL]
        changed = True
    if shopper.phone is None and IdentityKind.PHONE in mine:
        shopper.phone = wanted[IdentityKind.PHONE]
        changed = True
    if not shopper.display_name and profile.display_name:
        shopper.display_name = profile.display_name
        changed = True
    if changed:
        shopper.updated_at = utcnow()
        await session.flush()
        await search.index_shopper(session, shopper.id)
    return Resolution(
        view=ShopperView(shopper, await identities_of(session, shopper.id)),
        created=False,
        matched_by=tuple(matched_by),
        attached=attached,
        candidates=candidates if len(candidates) > 1 else [],
    )
