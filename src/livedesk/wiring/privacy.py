"""Which capabilities take part in a privacy request (``customers/privacy.py``), and how: the
customers capability imports none of them, so they are listed here, at the composition root.
A capability that stores files or texts of its own about a shopper is added to this list."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import privacy as booking_privacy
from livedesk.consultations import privacy as consultations_privacy
from livedesk.customers.privacy import ErasureScope, Participant
from livedesk.integrations import privacy as integrations_privacy
from livedesk.recording.service import erase_for_shopper
from livedesk.surveys import privacy as surveys_privacy


async def _recordings(session: AsyncSession, ids: list[uuid.UUID], scope: ErasureScope) -> dict[str, int]:
    # The recording capability owns its files and their storage; it deletes both.
    erased = [await erase_for_shopper(session, sid, actor_staff_id=scope.actor_staff_id) for sid in ids]
    return {"recordings": sum(erased)}


async def _chat_files(session: AsyncSession, ids: list[uuid.UUID], scope: ErasureScope) -> dict[str, int]:
    return {"chat_files": await consultations_privacy.delete_chat_files(session, ids, scope.delete_file)}


async def _outbox(session: AsyncSession, ids: list[uuid.UUID], scope: ErasureScope) -> dict[str, int]:
    # The outbox has no key to the shopper (receivers are not ours), only their id in the data.
    return await integrations_privacy.forget_shoppers(session, ids)


def privacy_participants() -> tuple[Participant, ...]:
    """In the order they run (recordings first: their audit entries about this request stay)."""
    return (
        Participant("recording", remove=_recordings),
        Participant("consultations", remove=_chat_files, forget=consultations_privacy.forget_shoppers),
        Participant("integrations", remove=_outbox),
        Participant("booking", forget=booking_privacy.forget_shoppers),
        Participant("surveys", forget=surveys_privacy.forget_shoppers),
    )
