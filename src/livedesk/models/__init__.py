"""All models, imported here so Alembic and the app see one metadata."""

from livedesk.models.audit import AuditEntry
from livedesk.models.base import Base
from livedesk.models.brand import Brand
from livedesk.models.consultations import (
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Message,
    MessageKind,
    SenderKind,
)
from livedesk.models.files import ChatFile
from livedesk.models.orders import OrderChannel, ShopOrder, ShopOrderLine
from livedesk.models.presence import (
    AdvisorPresence,
    AppProcess,
    PresenceStatus,
    ShopperConnection,
    StaffConnection,
)
from livedesk.models.shoppers import IdentityKind, Shopper, ShopperIdentity, ShopperMerge
from livedesk.models.staff import Role, Staff, StaffSession, Team
from livedesk.models.timeline import TimelineEvent, TimelineKind

__all__ = [
    "AdvisorPresence",
    "AppProcess",
    "AuditEntry",
    "Base",
    "Brand",
    "ChatFile",
    "Consultation",
    "ConsultationKind",
    "ConsultationStatus",
    "IdentityKind",
    "Message",
    "MessageKind",
    "OrderChannel",
    "PresenceStatus",
    "Role",
    "SenderKind",
    "ShopOrder",
    "ShopOrderLine",
    "Shopper",
    "ShopperConnection",
    "ShopperIdentity",
    "ShopperMerge",
    "Staff",
    "StaffConnection",
    "StaffSession",
    "Team",
    "TimelineEvent",
    "TimelineKind",
]
