"""Who is acting, a piece of the shared kernel: staff login sessions and the request-side checks
on them (cookie, CSRF, roles), and shoppers' signed visitor tokens with the one rule that
turns a token into a ``ShopperActor``. REST routes and the Socket.IO namespaces use the same
functions, so a caller is recognised the same way on every path.
"""

from livedesk.identity.actors import Actor, ShopperActor, StaffActor, key_of, staff_of
from livedesk.identity.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    current_staff,
    guarded,
    require_staff,
    session_policy,
)
from livedesk.identity.parties import OVERSEERS, Parties, authorise_party, is_party
from livedesk.identity.sessions import Principal, SessionPolicy, end_all_sessions
from livedesk.identity.shoppers import TOKENS, authenticate_shopper, bearer_actor, request_actor
from livedesk.identity.tokens import (
    VisitorClaims,
    VisitorTokens,
    sign_shop_customer_id,
    verify_shop_signature,
)

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "OVERSEERS",
    "SESSION_COOKIE",
    "TOKENS",
    "Actor",
    "Parties",
    "Principal",
    "SessionPolicy",
    "ShopperActor",
    "StaffActor",
    "VisitorClaims",
    "VisitorTokens",
    "authenticate_shopper",
    "authorise_party",
    "bearer_actor",
    "current_staff",
    "end_all_sessions",
    "guarded",
    "is_party",
    "key_of",
    "request_actor",
    "require_staff",
    "session_policy",
    "sign_shop_customer_id",
    "staff_of",
    "verify_shop_signature",
]
