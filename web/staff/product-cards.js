// @ts-check
// What the advisor's product picker (product-search.js) shows and sends. The catalogue is the
// one the admin manages (GET /api/v1/products, searched on the server). A card is sent as its
// SKU alone: the server fills in the name, price, picture and link from the catalogue, in the
// shopper's language (see docs/advisor-console.md).
import { formatMoney, language } from "/shared/i18n.js";

/** A product's name in the console's language (the shopper's card has its own). */
export function productLabel(product) {
  const name = language() === "ja" && product.name_ja ? product.name_ja : product.name;
  return `${name} — ${formatMoney(product.price_minor, product.currency)}`;
}

/** What chat.send carries for a card: the SKU, nothing the shopper would see. */
export function productCardMessage(sku) {
  return { kind: "product", body: "", data: { sku } };
}
