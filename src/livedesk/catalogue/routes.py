"""HTTP routes of the catalogue: any staff member reads it (the advisor builds payment
requests from it); admins change it and import CSV files."""

from __future__ import annotations

import uuid
from typing import Annotated

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r409, r413, r415, r422
from pydantic import BaseModel, Field

from livedesk.catalogue import service
from livedesk.catalogue.schemas import ImportOut, ProductCreate, ProductOut, ProductUpdate
from livedesk.identity import guarded, require_staff
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import AppError, Forbidden, UnsupportedMediaType
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role

CSV_TYPES = ("text/csv", "text/plain", "application/csv")


@guarded()
async def list_products(
    request: web.Request,
    q: Annotated[str | None, Field(max_length=100)] = None,
    include_inactive: bool = False,
    limit: Annotated[int, Field(ge=1, le=500)] = 200,
    after: Annotated[str | None, Field(max_length=64)] = None,
) -> r200[list[ProductOut]] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """Catalogue products in SKU order; q matches SKU or either name (case-insensitive, % and _
    are letters). Pages: pass the last SKU of a page as ``after`` for the next one (a page
    shorter than ``limit`` is the last). Withdrawn ones only for admins.

    Tags: catalogue
    """
    staff = await require_staff(request)
    if include_inactive and staff.role != Role.ADMIN:
        raise Forbidden("Only admins see withdrawn products", code="forbidden")
    async with request.app[DB].read() as session:
        products = await service.list_products(
            session, q=q, include_inactive=include_inactive, limit=limit, after=after
        )
        out: list[BaseModel] = [ProductOut.of(p) for p in products]
    return model_json(out)


@guarded(Role.ADMIN)
async def create_product(
    request: web.Request, body: ProductCreate
) -> r201[ProductOut] | r401[ErrorResponse] | r403[ErrorResponse] | r409[ErrorResponse] | r422[ErrorResponse]:
    """Add a product (admins).

    Tags: catalogue
    """
    await require_staff(request, Role.ADMIN)
    async with request.app[DB].transaction() as session:
        product = await service.create_product(session, body, request.app[SETTINGS].payment_currency)
        out = ProductOut.of(product)
    response = model_json(out, status=201)
    response.headers["Location"] = f"/api/v1/products/{out.id}"
    return response


@guarded()
async def get_product(
    request: web.Request, product_id: uuid.UUID, /
) -> r200[ProductOut] | r401[ErrorResponse] | r404[ErrorResponse]:
    """One product.

    Tags: catalogue
    """
    await require_staff(request)
    async with request.app[DB].read() as session:
        out = ProductOut.of(await service.get_product(session, product_id))
    return model_json(out)


@guarded(Role.ADMIN)
async def update_product(
    request: web.Request, product_id: uuid.UUID, /, body: ProductUpdate
) -> r200[ProductOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r422[ErrorResponse]:
    """Change a product (admins); active=false withdraws it from new payment requests.

    Tags: catalogue
    """
    await require_staff(request, Role.ADMIN)
    async with request.app[DB].transaction() as session:
        out = ProductOut.of(await service.update_product(session, product_id, body))
    return model_json(out)


@guarded(Role.ADMIN)
async def import_products(
    request: web.Request,
) -> (
    r200[ImportOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r413[ErrorResponse]
    | r415[ErrorResponse]
    | r422[ErrorResponse]
):
    """Import a CSV file (body text/csv, UTF-8) of products, upserted by SKU, all or nothing.

    Columns: sku, name, price (major units: 12.34 USD, 1200 JPY) and optionally name_ja,
    currency, image_url, active. Every bad cell is listed in the error's details (line and
    column) and nothing is imported. Importing the same file twice changes nothing.

    Tags: catalogue
    """
    await require_staff(request, Role.ADMIN)
    if request.content_type not in CSV_TYPES:
        raise UnsupportedMediaType(
            "Send the catalogue as text/csv (UTF-8)",
            details={"expected": "text/csv", "received": request.content_type},
        )
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AppError("The CSV file is not UTF-8 text", code="csv_not_utf8") from None
    async with request.app[DB].transaction() as session:
        result = await service.import_csv(session, text, request.app[SETTINGS].payment_currency)
        out = ImportOut(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            products=[ProductOut.of(p) for p in result.products],
        )
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/products", list_products)
    app.router.add_post("/api/v1/products", create_product)
    app.router.add_post("/api/v1/products/import", import_products)
    app.router.add_get("/api/v1/products/{product_id}", get_product)
    app.router.add_patch("/api/v1/products/{product_id}", update_product)
