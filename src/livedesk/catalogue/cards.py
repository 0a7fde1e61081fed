"""Product cards: what a chat message of kind ``product`` shows, built from the catalogue only.

A card's name, price, picture and link are what the shopper is asked to trust (the link opens
in a new tab from the call page), so none of them comes from the sender: staff send a SKU,
and the server fills the rest from the product row, in the consultation's language.

Services never commit; the caller owns the session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.catalogue.service import products_by_sku
from livedesk.kit.errors import Conflict, ValidationFailed
from livedesk.models import Product

SKU_FIELD = "data.sku"


async def sellable_product(session: AsyncSession, sku: str) -> Product:
    """The active product with this SKU; a clear error for an unknown or withdrawn one."""
    product = (await products_by_sku(session, [sku])).get(sku)
    if product is None:
        # The same code payment requests use for a SKU they cannot sell.
        raise ValidationFailed(f"field '{SKU_FIELD}': {sku} is not in the catalogue", code="unknown_sku")
    if not product.active:
        raise Conflict(
            f"field '{SKU_FIELD}': {sku} was withdrawn from the catalogue", code="product_withdrawn"
        )
    return product


def card_language(consultation_language: str | None, shopper_locale: str | None) -> str:
    """``ja`` or ``en``: the language the shopper asked for this consultation in, else their
    profile's locale. The catalogue has Japanese and English names; any other language reads
    the English one."""
    chosen = (consultation_language or shopper_locale or "ja").split("-")[0].lower()
    return "ja" if chosen == "ja" else "en"


def page_url(template: str, sku: str) -> str:
    """The shop's product page (``LIVEDESK_PRODUCT_PAGE_URL``, ``{sku}`` replaced). Plain
    replacement, not ``str.format``: other braces in an admin's template stay as they are."""
    return template.replace("{sku}", quote(sku, safe=""))


def product_card(product: Product, language: str, page_template: str) -> tuple[str, dict[str, Any]]:
    """The message body (the product's name, which the timeline and notifications show) and
    the card's data."""
    name = product.name_ja if language == "ja" and product.name_ja else product.name
    return name, {
        "sku": product.sku,
        "name": name,
        "price_minor": product.price_minor,
        "currency": product.currency,
        "image_url": product.image_url,
        "url": product.page_url or page_url(page_template, product.sku),
        "language": language,
    }
