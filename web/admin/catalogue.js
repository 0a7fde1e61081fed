// @ts-check
// The product catalogue (admins): products with SKU, names, price (minor units on the API,
// the usual spelling here), currency and picture; add one, withdraw or restore, import a CSV
// file. The REST API enforces every rule; this page shows what it says.
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { api } from "/admin/api.js";
import { toMinor } from "/shared/money.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { errorText as sharedErrorText } from "/shared/errors.js";
import { $ } from "/shared/dom.js";

const state = { products: [], busy: null, status: "", formError: null, importError: null };

function errorText(error) {
  return sharedErrorText(error ?? {}, "cat.error.");
}

function alertBox(node, text) {
  node.textContent = text;
  node.classList.toggle("is-empty", !text);
}

async function load() {
  const result = await api.get("/api/v1/products?include_inactive=true&limit=500");
  $("cat-checking").hidden = true;
  if (!result.ok) {
    $("cat-denied").hidden = false;
    return;
  }
  state.products = result.data;
  $("cat-panel").hidden = false;
  render();
}

function productName(p) {
  return language() === "ja" && p.name_ja ? p.name_ja : p.name;
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function render() {
  document.title = t("cat.page_title");
  $("cat-empty").hidden = state.products.length > 0;
  $("cat-table").hidden = state.products.length === 0;
  $("cat-rows").replaceChildren(
    ...state.products.map((p) => {
      const row = document.createElement("tr");
      row.dataset.sku = p.sku;
      const picture = cell("td");
      if (p.image_url) {
        const img = document.createElement("img");
        img.src = p.image_url;
        img.alt = "";
        img.width = 40;
        img.height = 40;
        picture.append(img);
      }
      const name = productName(p);
      const toggle = document.createElement("button");
      toggle.type = "button";
      toggle.className = "button button-secondary button-small";
      toggle.dataset.toggle = p.id;
      toggle.textContent = p.active ? t("cat.withdraw_short") : t("cat.restore_short");
      toggle.setAttribute("aria-label", t(p.active ? "cat.withdraw" : "cat.restore", { name }));
      toggle.disabled = state.busy === p.id;
      const actions = cell("td");
      actions.append(toggle);
      row.append(
        picture,
        cell("td", p.sku),
        cell("td", name),
        cell("td", formatMoney(p.price_minor, p.currency), "num"),
        cell("td", p.active ? t("cat.active") : t("cat.inactive")),
        actions,
      );
      return row;
    }),
  );
  alertBox($("cat-status"), state.status);
  alertBox($("cat-form-error"), state.formError ? errorText(state.formError) : "");
  const importBox = $("cat-import-error");
  importBox.replaceChildren();
  importBox.classList.toggle("is-empty", !state.importError);
  if (state.importError) {
    const details = Array.isArray(state.importError.details) ? state.importError.details : [];
    if (details.length) {
      importBox.append(cell("p", t("cat.import_errors")));
      const list = cell("ul", undefined, "pay-errors");
      for (const d of details.slice(0, 20)) list.append(cell("li", t("cat.import_error_line", d)));
      importBox.append(list);
    } else {
      importBox.append(cell("p", errorText(state.importError)));
    }
  }
  $("cat-save").textContent = state.busy === "save" ? t("cat.saving") : t("cat.save");
  $("cat-save").disabled = state.busy === "save";
  $("cat-import-button").textContent = state.busy === "import" ? t("cat.importing") : t("cat.import_button");
  $("cat-import-button").disabled = state.busy === "import";
}

async function save(event) {
  event.preventDefault();
  const form = new FormData($("cat-form"));
  const currency = String(form.get("currency"));
  const price = toMinor(form.get("price"), currency);
  state.status = "";
  if (price === null || price <= 0) {
    state.formError = { message: t("cat.bad_price") };
    $("cat-price").setAttribute("aria-invalid", "true");
    render();
    $("cat-price").focus();
    return;
  }
  $("cat-price").removeAttribute("aria-invalid");
  state.busy = "save";
  state.formError = null;
  render();
  const result = await api.post("/api/v1/products", {
    sku: String(form.get("sku")).trim(),
    name: String(form.get("name")).trim(),
    name_ja: String(form.get("name_ja")).trim(),
    price_minor: price,
    currency,
    image_url: String(form.get("image_url")).trim(),
    page_url: String(form.get("page_url")).trim(),
  });
  state.busy = null;
  if (result.ok) {
    state.status = t("cat.saved", { name: result.data.name });
    $("cat-form").reset();
    await load();
  } else {
    state.formError = result.error;
  }
  render();
}

async function importFile(event) {
  event.preventDefault();
  const file = $("cat-file").files[0];
  if (!file) {
    $("cat-file").focus();
    return;
  }
  state.busy = "import";
  state.importError = null;
  state.status = "";
  render();
  let result;
  try {
    const text = await file.text();
    const response = await fetch("/api/v1/products/import", {
      method: "POST",
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": csrf(), Accept: "application/json" },
      body: text,
      credentials: "same-origin",
    });
    const data = await response.json();
    result = response.ok ? { ok: true, data } : { ok: false, error: data.error };
  } catch {
    result = { ok: false, error: { code: "unknown" } };
  }
  state.busy = null;
  if (result.ok) {
    state.status = t("cat.imported", result.data);
    await load();
  } else {
    state.importError = result.error;
  }
  render();
}

function csrf() {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === "livedesk_csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

async function toggle(event) {
  const button = event.target.closest("button[data-toggle]");
  if (!button) return;
  const product = state.products.find((p) => p.id === button.dataset.toggle);
  state.busy = product.id;
  render();
  const result = await api.patch(`/api/v1/products/${product.id}`, { active: !product.active });
  state.busy = null;
  if (result.ok) Object.assign(product, result.data);
  else state.status = errorText(result.error);
  render();
  $("cat-rows").querySelector(`button[data-toggle="${product.id}"]`)?.focus();
}

async function main() {
  await initI18n({ extraAreas: ["/admin", "/payments", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), location.pathname);
  onLanguageChange(render);
  $("cat-form").addEventListener("submit", save);
  $("cat-import").addEventListener("submit", importFile);
  $("cat-rows").addEventListener("click", toggle);
  const me = await api.get("/api/v1/auth/me");
  nav.show(me.ok ? me.data.role : null);
  await load();
}

main();
