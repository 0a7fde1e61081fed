// @ts-check
// The demo shop's product page: one product (?sku=…) and the catalogue (?category=…), from
// /demo/catalogue.json. Product names and descriptions come in both languages from the
// catalogue; every other word comes from the i18n tables.
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { $, el } from "/shared/dom.js";

const params = new URLSearchParams(location.search);
let catalogue = null;
let bagCount = 0;
let lastAdded = null;

const other = (lang) => (lang === "ja" ? "en" : "ja");

function selected() {
  const products = catalogue.products;
  const bySku = products.find((p) => p.sku === params.get("sku"));
  if (bySku) return bySku;
  const inCategory = products.find((p) => p.category === params.get("category"));
  return inCategory ?? products.find((p) => p.sku === catalogue.featured_sku) ?? products[0];
}

function productUrl(product) {
  return `/demo/shop?sku=${encodeURIComponent(product.sku)}`;
}

function renderProduct(product) {
  const lang = language();
  document.title = t("shop.title_product", { product: product.name[lang] });
  $("product-image").src = product.image_url;
  $("product-image").alt = product.name[lang];
  $("product-category").textContent = t(`category.${product.category}`);
  $("product-name").textContent = product.name[lang];
  $("product-name-alt").textContent = product.name[other(lang)];
  $("product-name-alt").lang = other(lang);
  $("product-price").textContent = formatMoney(product.price_minor, product.currency);
  $("product-description").textContent = product.description[lang];
  $("product-size").textContent = product.size;
  $("product-sku").textContent = product.sku;
  const crumb = $("crumb-category");
  crumb.textContent = t(`category.${product.category}`);
  crumb.href = `/demo/shop?category=${product.category}#catalogue`;
  $("crumb-product").textContent = product.name[lang];
  $("buy-status").textContent = lastAdded
    ? t("shop.added", { count: lastAdded.count, product: lastAdded.product.name[lang] })
    : "";
  $("bag-count").textContent = String(bagCount);
  $("bag").setAttribute("aria-label", t("shop.bag_label", { count: bagCount }));
}

function renderAdvisors(product) {
  // Advisors whose skills fit the product come first; everyone is shown.
  const fits = (a) => a.skills.some((s) => product.topics.includes(s));
  const advisors = [...catalogue.advisors].sort((a, b) => Number(fits(b)) - Number(fits(a)));
  const list = $("advisors");
  list.replaceChildren(
    ...advisors.slice(0, 4).map((a) =>
      el(
        "li",
        { class: "advisor" },
        el("img", { src: a.photo_url, alt: "", width: "64", height: "64" }),
        el(
          "div",
          {},
          el("p", { class: "advisor-name" }, language() === "ja" ? a.display_name : a.display_name_en),
          el("p", { class: "advisor-skills" }, a.skills.map((s) => t(`skill.${s}`)).join(" · ")),
          el("p", { class: "advisor-langs" }, a.languages.map((l) => t(`lang.${l}`)).join(" / ")),
        ),
      ),
    ),
  );
}

function renderGrid(product) {
  const category = params.get("category");
  const known = catalogue.products.some((p) => p.category === category);
  const shown = known ? catalogue.products.filter((p) => p.category === category) : catalogue.products;
  $("catalogue-title").textContent = known
    ? t("shop.category_title", { category: t(`category.${category}`) })
    : t("shop.all_products");
  $("show-all").hidden = !known;
  for (const link of document.querySelectorAll(/** @type {"a"} */ ("#category-nav a"))) {
    if (link.dataset.category === category) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const lang = language();
  $("product-grid").replaceChildren(
    ...shown.map((p) =>
      el(
        "li",
        {},
        el(
          "a",
          { class: "tile", href: productUrl(p), "aria-current": p.sku === product.sku ? "true" : null },
          el("img", { src: p.image_url, alt: "", width: "240", height: "240", loading: "lazy" }),
          el("span", { class: "tile-category" }, t(`category.${p.category}`)),
          el("span", { class: "tile-name" }, p.name[lang]),
          el("span", { class: "tile-price" }, formatMoney(p.price_minor, p.currency)),
        ),
      ),
    ),
  );
}

function render() {
  if (!catalogue) return;
  const product = selected();
  renderProduct(product);
  renderAdvisors(product);
  renderGrid(product);
}

function addToBag(event) {
  event.preventDefault();
  const count = Number($("quantity").value) || 1;
  bagCount += count;
  lastAdded = { count, product: selected() };
  render();
}

async function start() {
  const [, response] = await Promise.all([
    initI18n(),
    fetch("/demo/catalogue.json", { credentials: "same-origin" }),
  ]);
  if (!response.ok) {
    $("buy-status").textContent = t("shop.catalogue_failed");
    return;
  }
  catalogue = await response.json();
  onLanguageChange(render);
  $("buy-form").addEventListener("submit", addToBag);
  render();
}

start();
