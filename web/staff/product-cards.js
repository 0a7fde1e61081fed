// The advisor's product picker reads the admin-managed catalogue (GET /api/v1/products: the
// active products only). A card is sent as its SKU alone: the server fills in the name, price,
// picture and link from the catalogue, in the shopper's language (see docs/advisor-console.md).
import { formatMoney, language } from "/shared/i18n.js";
import { api } from "/staff/api.js";

let products = null;

/** The active catalogue, fetched once per page; [] (and fetched again next time) on failure. */
export function loadProducts() {
  products ??= api("GET", "/api/v1/products?limit=500").then((result) => {
    if (result.ok && Array.isArray(result.data)) return result.data;
    products = null;
    return [];
  });
  return products;
}

/** A product's name in the console's language (the shopper's card has its own). */
export function productLabel(product) {
  const name = language() === "ja" && product.name_ja ? product.name_ja : product.name;
  return `${name} — ${formatMoney(product.price_minor, product.currency)}`;
}

/** What chat.send carries for a card: the SKU, nothing the shopper would see. */
export function productCardMessage(sku) {
  return { kind: "product", body: "", data: { sku } };
}
