"""The audit log, a piece of the shared kernel: who did what to which record, and when.

Every capability writes its rows through ``record`` in the transaction of the act it records,
so an act and its audit row commit (or roll back) together; refused attempts that change
nothing are written in a transaction of their own (``record_alone``), or, where the answer
must not wait for the database (a refused sign-in), queued (``DEFERRED_AUDIT``). Reading the log is
``system/audit_routes.py`` (admins).
"""

from livedesk.audit.deferred import DEFERRED_AUDIT, DeferredAudit, deferred_audit_ctx
from livedesk.audit.log import Filter, page_of, record, record_alone

__all__ = [
    "DEFERRED_AUDIT",
    "DeferredAudit",
    "Filter",
    "deferred_audit_ctx",
    "page_of",
    "record",
    "record_alone",
]
