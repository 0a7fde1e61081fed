"""All models, imported here so Alembic and the app see one metadata."""

from livedesk.models.audit import AuditEntry
from livedesk.models.base import Base
from livedesk.models.booking import (
    LIVE_BOOKING_STATUSES,
    AvailabilityException,
    Booking,
    BookingMail,
    BookingMailKind,
    BookingStatus,
    ConsultationType,
    ExceptionKind,
    WeeklyHours,
)
from livedesk.models.brand import Brand
from livedesk.models.catalogue import Product
from livedesk.models.consultations import (
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    Message,
    MessageKind,
    SenderKind,
)
from livedesk.models.files import ChatFile
from livedesk.models.integrations import (
    ChannelEvent,
    DeliveryStatus,
    ImportJob,
    ImportStatus,
    Integration,
    IntegrationKey,
    ShopperSearchTerm,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from livedesk.models.orders import OrderChannel, ShopOrder, ShopOrderLine
from livedesk.models.payments import (
    LineSource,
    PaymentProviderName,
    PaymentRefund,
    PaymentRequest,
    PaymentRequestLine,
    PaymentStatus,
    PaymentWebhookEvent,
    RefundStatus,
)
from livedesk.models.presence import (
    AdvisorPresence,
    AppProcess,
    PresenceStatus,
    ShopperConnection,
    StaffConnection,
)
from livedesk.models.recordings import (
    ConsentDecision,
    ConsentPolicy,
    Recording,
    RecordingConsent,
    RecordingPart,
    RecordingStatus,
)
from livedesk.models.shoppers import IdentityKind, Shopper, ShopperIdentity, ShopperMerge
from livedesk.models.staff import Role, Staff, StaffSession, Team
from livedesk.models.surveys import (
    SatisfactionInvitation,
    SatisfactionResponse,
    Survey,
    SurveyAssignment,
    SurveyResponse,
    SurveyVersion,
)
from livedesk.models.timeline import TimelineEvent, TimelineKind
from livedesk.models.verification import EmailVerification, VerificationPurpose

__all__ = [
    "LIVE_BOOKING_STATUSES",
    "AdvisorPresence",
    "AppProcess",
    "AuditEntry",
    "AvailabilityException",
    "Base",
    "Booking",
    "BookingMail",
    "BookingMailKind",
    "BookingStatus",
    "Brand",
    "ChannelEvent",
    "ChatFile",
    "ConsentDecision",
    "ConsentPolicy",
    "Consultation",
    "ConsultationKind",
    "ConsultationStatus",
    "ConsultationType",
    "DeliveryStatus",
    "EmailVerification",
    "ExceptionKind",
    "IdentityKind",
    "ImportJob",
    "ImportStatus",
    "Integration",
    "IntegrationKey",
    "LineSource",
    "Message",
    "MessageKind",
    "OrderChannel",
    "PaymentProviderName",
    "PaymentRefund",
    "PaymentRequest",
    "PaymentRequestLine",
    "PaymentStatus",
    "PaymentWebhookEvent",
    "PresenceStatus",
    "Product",
    "Recording",
    "RecordingConsent",
    "RecordingPart",
    "RecordingStatus",
    "RefundStatus",
    "Role",
    "SatisfactionInvitation",
    "SatisfactionResponse",
    "SenderKind",
    "ShopOrder",
    "ShopOrderLine",
    "Shopper",
    "ShopperConnection",
    "ShopperIdentity",
    "ShopperMerge",
    "ShopperSearchTerm",
    "Staff",
    "StaffConnection",
    "StaffSession",
    "Survey",
    "SurveyAssignment",
    "SurveyResponse",
    "SurveyVersion",
    "Team",
    "TimelineEvent",
    "TimelineKind",
    "VerificationPurpose",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WeeklyHours",
]
