"""What the consultations capability forgets for a privacy request (erase or anonymise).

Chat files go in both cases: their rows now, their bytes from storage once the transaction
has committed (a rolled-back request must not lose files). Anonymising keeps consultations and
messages for the figures but empties what was said: message texts and data (a file's name,
a product card), the advisor's notes, and the extras (the intake answers shown to the advisor
are copied there).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.db import after_commit
from livedesk.kit.logging import get_logger
from livedesk.models import ChatFile, Consultation, Message
from livedesk.uploads import DeleteFile

log = get_logger("livedesk.consultations.privacy")


async def delete_chat_files(
    session: AsyncSession, shopper_ids: Sequence[uuid.UUID], delete_file: DeleteFile | None
) -> int:
    """Delete the shoppers' chat file rows; their bytes go after the commit through
    ``delete_file`` (when given). Returns how many files."""
    consultation_ids = select(Consultation.id).where(Consultation.shopper_id.in_(shopper_ids))
    keys = list(
        (
            await session.scalars(
                select(ChatFile.storage_key).where(ChatFile.consultation_id.in_(consultation_ids))
            )
        ).all()
    )
    await session.execute(
        delete(ChatFile)
        .where(ChatFile.consultation_id.in_(consultation_ids))
        .execution_options(synchronize_session=False)
    )
    if delete_file is not None and keys:
        remove = delete_file

        async def remove_all() -> None:
            for key in keys:
                try:
                    await remove(key)
                except Exception:  # a file left behind must not hide that the rows are gone
                    log.exception("chat file not deleted", storage_key=key)

        after_commit(session, remove_all)
    return len(keys)


async def forget_shoppers(session: AsyncSession, shopper_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Empty the shoppers' messages, consultation notes and extras (rows kept), in the
    caller's transaction; returns counts per table."""
    consultation_ids = select(Consultation.id).where(Consultation.shopper_id.in_(shopper_ids))
    messages = await session.execute(
        update(Message)
        .where(Message.consultation_id.in_(consultation_ids))
        .values(body="", data={})
        .execution_options(synchronize_session=False)
    )
    consultations = await session.execute(
        update(Consultation)
        .where(Consultation.shopper_id.in_(shopper_ids))
        .values(notes="", extra={})
        .execution_options(synchronize_session=False)
    )
    return {
        "messages": int(getattr(messages, "rowcount", 0)),
        "consultations": int(getattr(consultations, "rowcount", 0)),
    }
