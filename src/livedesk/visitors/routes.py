"""HTTP routes for shoppers: start a visit (get a visitor token) and fetch ICE servers."""

from __future__ import annotations

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r422
from pydantic import BaseModel, Field

from livedesk.calls.ice import ice_servers
from livedesk.identity import TOKENS, current_staff
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import Unauthenticated
from livedesk.kit.http import ApiModel, ErrorResponse, client_ip, endpoint, json_ok, model_json
from livedesk.visitors import service


class VisitorStart(ApiModel):
    shop_customer_id: str | None = Field(None, min_length=1, max_length=128)
    shop_signature: str | None = Field(None, min_length=3, max_length=200)
    display_name: str | None = Field(None, max_length=200)
    locale: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    previous_token: str | None = Field(None, max_length=500)


class VisitorOut(BaseModel):
    token: str
    shopper_id: str
    linked: bool
    expires_in: int


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None
    credentialType: str | None = None


class IceServersOut(BaseModel):
    ice_servers: list[IceServer]


@endpoint
async def start_visit(
    request: web.Request, body: VisitorStart
) -> r201[VisitorOut] | r401[ErrorResponse] | r422[ErrorResponse]:
    """Start (or resume) a shopper's visit: returns a signed, expiring visitor token. No
    registration; a correctly signed shop customer id links the visit to that shopper."""
    settings = request.app[SETTINGS]
    await request.app[RATE_LIMITS].hit(
        "30/minute", "visitors", client_ip(request), message="Too many visits started"
    )
    async with request.app[DB].transaction() as session:
        token, claims, linked = await service.start_visit(
            session,
            request.app[TOKENS],
            shop_secret=settings.shop_signing_secret.get_secret_value(),
            shop_customer_id=body.shop_customer_id,
            shop_signature=body.shop_signature,
            display_name=body.display_name,
            locale=body.locale,
            previous_token=body.previous_token,
        )
    out = VisitorOut(
        token=token,
        shopper_id=str(claims.shopper_id),
        linked=linked,
        expires_in=settings.visitor_token_hours * 3600,
    )
    return model_json(out, status=201)


@endpoint
async def get_ice_servers(request: web.Request) -> r200[IceServersOut] | r401[ErrorResponse]:
    """STUN/TURN servers for a browser about to call, with time-limited TURN credentials.
    Needs a staff session or a visitor token (Authorization: Bearer …)."""
    user: str
    staff = await current_staff(request)
    if staff is not None:
        user = f"staff-{staff.staff_id}"
    else:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise Unauthenticated("A staff session or a visitor token is needed")
        claims = request.app[TOKENS].verify(auth.removeprefix("Bearer ").strip())
        user = f"shopper-{claims.shopper_id}"
    return json_ok({"ice_servers": ice_servers(request.app[SETTINGS], user)})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/visitors", start_visit)
    app.router.add_get("/api/v1/ice-servers", get_ice_servers)
