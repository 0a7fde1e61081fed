"""Proof that a person controls an e-mail address: one row per verification mail.

An anonymous shopper's typed e-mail reaches an existing profile only through one of these
(or the shop's signed customer id). A row is single-use (``used_at``), expires, and counts
against the address's daily mail budget, so the forms cannot be used to mail strangers.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from livedesk.kit.clock import utcnow
from livedesk.models.base import Base, IdMixin, str_enum


class VerificationPurpose(enum.StrEnum):
    # The link in a pending booking's mail: opening it confirms the booking.
    BOOKING = "booking"
    # A short code the widget asks for, to link a guest visit to the address's profile.
    LINK = "link"


class EmailVerification(IdMixin, Base):
    __tablename__ = "email_verifications"

    # The guest profile that asked; on success it joins the profile holding the address.
    shopper_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    purpose: Mapped[VerificationPurpose] = mapped_column(str_enum(VerificationPurpose, 10))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    # SHA-256 of the short code (LINK); empty for links, whose token is signed instead.
    code_hash: Mapped[str] = mapped_column(String(64), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_email_verifications_email_created", "email", "created_at"),
        Index("ix_email_verifications_shopper_id", "shopper_id"),
        Index("ix_email_verifications_booking_id", "booking_id"),
    )
