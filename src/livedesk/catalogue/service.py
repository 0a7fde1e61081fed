"""Catalogue rules: products by SKU, prices in minor units, CSV import (all or nothing).

Services never commit; the handler's transaction does.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.catalogue.schemas import IMAGE_PATTERN, SKU_PATTERN, ProductCreate, ProductUpdate
from livedesk.kit import money
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models import Product

MAX_IMPORT_ROWS = 5000
CSV_COLUMNS = ("sku", "name", "name_ja", "price", "currency", "image_url", "page_url", "active")
_REQUIRED = ("sku", "name", "price")
_TRUE = {"", "1", "true", "yes", "y", "active"}
_FALSE = {"0", "false", "no", "n", "inactive"}


def _like_pattern(text: str) -> str:
    """A LIKE pattern that finds ``text`` anywhere, its % and _ taken as letters (escaped
    with backslash, which both SQLite and PostgreSQL honour with ESCAPE)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_products(
    session: AsyncSession,
    *,
    q: str | None = None,
    include_inactive: bool = False,
    limit: int = 200,
    after: str | None = None,
) -> list[Product]:
    """Products in SKU order; ``q`` matches SKU or either name (case-insensitive), ``after``
    continues after that SKU (the last one of the previous page)."""
    stmt = select(Product)
    if not include_inactive:
        stmt = stmt.where(Product.active.is_(True))
    if q:
        like = _like_pattern(q.lower())
        stmt = stmt.where(
            or_(
                func.lower(Product.sku).like(like, escape="\\"),
                func.lower(Product.name).like(like, escape="\\"),
                func.lower(Product.name_ja).like(like, escape="\\"),
            )
        )
    if after:
        stmt = stmt.where(Product.sku > after)
    return list((await session.scalars(stmt.order_by(Product.sku).limit(limit))).all())


async def get_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise NotFound("No such product", code="product_not_found")
    return product


async def products_by_sku(session: AsyncSession, skus: Sequence[str]) -> dict[str, Product]:
    """The products with these SKUs (active or not), keyed by SKU."""
    if not skus:
        return {}
    rows = await session.scalars(select(Product).where(Product.sku.in_(list(set(skus)))))
    return {p.sku: p for p in rows}


async def create_product(session: AsyncSession, body: ProductCreate, default_currency: str) -> Product:
    """Add a product; 409 when the SKU exists."""
    if await session.scalar(select(Product.id).where(Product.sku == body.sku)) is not None:
        raise Conflict(f"A product with SKU {body.sku} exists already", code="sku_taken")
    product = Product(
        id=uuid.uuid4(),
        sku=body.sku,
        name=body.name,
        name_ja=body.name_ja,
        price_minor=body.price_minor,
        currency=body.currency or money.currency_code(default_currency),
        image_url=body.image_url,
        page_url=body.page_url,
        active=body.active,
    )
    session.add(product)
    await session.flush()
    return product


async def update_product(session: AsyncSession, product_id: uuid.UUID, body: ProductUpdate) -> Product:
    """Change the fields sent. A price change affects new payment requests only: sent ones keep
    the price the shopper was shown."""
    product = await get_product(session, product_id)
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None:
            raise ValidationFailed(f"field '{name}': may not be null", code="validation_failed")
        setattr(product, name, value)
    await session.flush()
    return product


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    products: list[Product]


def _row_error(line: int, field: str, message: str) -> dict[str, object]:
    return {"line": line, "field": field, "message": message}


def parse_csv(text: str, default_currency: str) -> list[dict[str, object]]:
    """Rows of a catalogue CSV as product fields. Columns: sku, name, price (required),
    name_ja, currency, image_url, page_url, active. ``price`` is in major units ("12.34" USD, "1200"
    JPY). Every bad cell is reported (line and column); nothing is returned unless all are
    good."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ValidationFailed(
            f"CSV header: {'; '.join(parts)} (columns: {', '.join(CSV_COLUMNS)})",
            code="csv_invalid",
            details=[_row_error(1, "header", "; ".join(parts))],
        )
    reader.fieldnames = header
    rows: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader, start=2):
        if len(rows) + len(errors) >= MAX_IMPORT_ROWS:
            raise ValidationFailed(f"CSV has more than {MAX_IMPORT_ROWS} rows", code="csv_too_large")
        if None in raw:
            errors.append(_row_error(index, "(row)", "more cells than columns"))
            continue
        cell = {k: (v or "").strip() for k, v in raw.items()}
        if not any(cell.values()):
            continue  # blank line
        row_errors: list[dict[str, object]] = []
        sku = cell.get("sku", "")
        if not re.fullmatch(SKU_PATTERN, sku):
            row_errors.append(_row_error(index, "sku", "1-64 letters, digits, '.', '_' or '-'"))
        elif sku in seen:
            row_errors.append(_row_error(index, "sku", f"SKU {sku} repeats line {seen[sku]}"))
        else:
            seen[sku] = index
        name = cell.get("name", "")
        if not 1 <= len(name) <= 300:
            row_errors.append(_row_error(index, "name", "1-300 characters"))
        name_ja = cell.get("name_ja", "")
        if len(name_ja) > 300:
            row_errors.append(_row_error(index, "name_ja", "300 characters at most"))
        currency = cell.get("currency") or default_currency
        price_minor = 0
        try:
            currency = money.currency_code(currency)
            price_minor = money.to_minor(cell.get("price", ""), currency)
            if price_minor == 0:
                raise money.MoneyError("price must be more than zero")
        except money.MoneyError as exc:
            field = "currency" if "currency" in str(exc) else "price"
            row_errors.append(_row_error(index, field, str(exc)))
        image_url = cell.get("image_url", "")
        if len(image_url) > 500 or not re.fullmatch(IMAGE_PATTERN, image_url):
            row_errors.append(_row_error(index, "image_url", "a path on this site (/…) or an https:// URL"))
        page = cell.get("page_url", "")
        if len(page) > 500 or not re.fullmatch(IMAGE_PATTERN, page):
            row_errors.append(_row_error(index, "page_url", "a path on this site (/…) or an https:// URL"))
        active_text = cell.get("active", "").lower()
        if active_text not in _TRUE | _FALSE:
            row_errors.append(_row_error(index, "active", "true or false"))
        if row_errors:
            errors.extend(row_errors)
            continue
        rows.append(
            {
                "sku": sku,
                "name": name,
                "name_ja": name_ja,
                "price_minor": price_minor,
                "currency": currency,
                "image_url": image_url,
                "page_url": page,
                "active": active_text in _TRUE,
            }
        )
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"CSV line {first['line']}, column {first['field']}: {first['message']}{more}; "
            "nothing was imported",
            code="csv_invalid",
            details=errors,
        )
    if not rows:
        raise ValidationFailed("The CSV file has no product rows", code="csv_empty")
    return rows


async def import_csv(session: AsyncSession, text: str, default_currency: str) -> ImportResult:
    """Upsert products by SKU from a CSV file, all or nothing. Importing the same file again
    changes nothing (idempotent)."""
    rows = parse_csv(text, default_currency)
    existing = await products_by_sku(session, [str(r["sku"]) for r in rows])
    created = updated = unchanged = 0
    products: list[Product] = []
    for row in rows:
        product = existing.get(str(row["sku"]))
        if product is None:
            product = Product(id=uuid.uuid4(), **row)
            session.add(product)
            created += 1
        elif any(getattr(product, k) != v for k, v in row.items()):
            for k, v in row.items():
                setattr(product, k, v)
            updated += 1
        else:
            unchanged += 1
        products.append(product)
    await session.flush()
    return ImportResult(created=created, updated=updated, unchanged=unchanged, products=products)
