// @ts-check
// The advisor's payment builder, one per consultation workspace: pick items from the catalogue
// or from the shopper's past purchases, set quantities, see the total, send. One click (or a
// retry after a lost answer) makes one payment request: the page keeps one client key per
// cart until the server has answered. Sent requests and their status ("paid" …) follow
// payment.updated from the server.
//
// For other parts of the console (e.g. "add to payment request" on recommendations):
//   import { addToPaymentRequest } from "/shared/customer/payment.js";
//   addToPaymentRequest(consultationId, { sku, quantity = 1, source = "catalogue" | "history" })
// adds the item to that consultation's builder and returns true (false when the consultation
// has no builder on this page or the SKU is not offered; before the builder has loaded its
// catalogue the item is kept and added once it has).
import { formatMoney, language, onLanguageChange, t } from "/shared/i18n.js";
import { api } from "/shared/staff-api.js";
import { el, uid } from "/shared/dom.js";
import { shortDate } from "/shared/time.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const builders = new Map();
const STYLESHEET = "/payments/payments.css";

function useStylesheet() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET }));
}

/** @param {string} consultationId @param {{sku?: string, quantity?: number, source?: string}} [item] */
export function addToPaymentRequest(consultationId, { sku, quantity = 1, source = "catalogue" } = {}) {
  const builder = builders.get(consultationId);
  return builder ? builder.add(sku, source, quantity) : false;
}

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function errorText(error) {
  return sharedErrorText(error ?? {}, ["payb.error.", "console.error.", "staff.error."], { unknown: "pay.error.unknown" });
}

export class PaymentBuilder {
  /** container: the workspace's side column; the builder adds its own panel to it. */
  constructor(container, { consultationId, socket, before = null }) {
    this.consultationId = consultationId;
    this.socket = socket;
    this.items = { catalogue: [], history: [] };
    this.cart = []; // {sku, source, quantity}
    this.key = newKey();
    this.requests = new Map();
    this.query = "";
    this.sending = false;
    this.error = null;
    this.notice = "";
    this.loaded = false;
    this.pending = [];
    useStylesheet();
    const prefix = uid("payb");
    this.root = el("section", { class: "payb panel", "aria-labelledby": `${prefix}-title` });
    this.heading = el("h4", { class: "panel-title", id: `${prefix}-title` });
    this.testNote = el("p", { class: "payb-test" });
    this.testNote.hidden = true;
    this.searchLabel = el("label", { for: `${prefix}-search` });
    this.search = el("input", { id: `${prefix}-search`, type: "search", autocomplete: "off" });
    this.search.addEventListener("input", () => {
      this.query = this.search.value.trim().toLowerCase();
      this.renderLists();
    });
    this.catalogueTitle = el("h5");
    this.catalogueList = el("ul", { class: "payb-items payb-catalogue" });
    this.historyTitle = el("h5");
    this.historyList = el("ul", { class: "payb-items payb-history" });
    this.cartTitle = el("h5");
    this.cartList = el("ul", { class: "payb-cart" });
    this.cartEmpty = el("p", { class: "muted" });
    this.totalLine = el("p", { class: "payb-total" });
    this.errorBox = el("p", { class: "alert alert-error", role: "alert" });
    this.errorBox.hidden = true;
    this.status = el("p", { class: "payb-notice", role: "status", "aria-live": "polite" });
    this.send = el("button", { class: "button payb-send", type: "button" });
    this.send.addEventListener("click", () => this.submit());
    this.requestsTitle = el("h5");
    this.requestList = el("ul", { class: "payb-requests" });
    this.root.append(
      this.heading,
      this.testNote,
      el("div", { class: "field" }, [this.searchLabel, this.search]),
      this.catalogueTitle,
      this.catalogueList,
      this.historyTitle,
      this.historyList,
      this.cartTitle,
      this.cartEmpty,
      this.cartList,
      this.totalLine,
      this.errorBox,
      this.send,
      this.status,
      this.requestsTitle,
      this.requestList,
    );
    this.root.addEventListener("click", (/** @type {any} */ event) => {
      const add = event.target.closest("button[data-add]");
      if (add) this.add(add.dataset.add, add.dataset.source, 1);
      const remove = event.target.closest("button[data-remove]");
      if (remove) this.remove(Number(remove.dataset.remove));
    });
    this.root.addEventListener("change", (/** @type {any} */ event) => {
      const input = event.target.closest("input[data-quantity]");
      if (!input) return;
      const line = this.cart[Number(input.dataset.quantity)];
      const value = Math.max(1, Math.min(99, Number.parseInt(input.value, 10) || 1));
      if (line && line.quantity !== value) {
        line.quantity = value;
        this.cartChanged();
      }
    });
    container.insertBefore(this.root, before);
    builders.set(consultationId, this);
    this.offLanguage = onLanguageChange(() => this.render());
    this.offPayment = socket.on("payment.updated", (r) => this.update(r));
    this.render();
  }

  async start() {
    const [items, requests] = await Promise.all([
      api("GET", `/api/v1/consultations/${this.consultationId}/purchasables`),
      api("GET", `/api/v1/consultations/${this.consultationId}/payment-requests`),
    ]);
    if (items.ok) this.items = items.data;
    if (requests.ok) for (const r of requests.data) this.requests.set(r.id, r);
    if (!items.ok) this.error = items.error;
    this.loaded = true;
    for (const [sku, source, quantity] of this.pending.splice(0)) this.add(sku, source, quantity);
    this.render();
  }

  find(sku, source) {
    return (source === "history" ? this.items.history : this.items.catalogue).find((i) => i.sku === sku);
  }

  add(sku, source = "catalogue", quantity = 1) {
    if (!this.loaded) {
      // Asked before the catalogue arrived: added once it has (if it is offered).
      this.pending.push([sku, source, quantity]);
      return true;
    }
    const item = this.find(sku, source);
    if (!item) return false;
    const line = this.cart.find((l) => l.sku === sku && l.source === source);
    if (line) line.quantity = Math.min(99, line.quantity + quantity);
    else this.cart.push({ sku, source, quantity: Math.min(99, quantity) });
    this.cartChanged();
    return true;
  }

  remove(index) {
    this.cart.splice(index, 1);
    this.cartChanged();
  }

  cartChanged() {
    // A different cart is a different request: it gets its own key.
    this.key = newKey();
    this.error = null;
    this.notice = "";
    this.render();
  }

  currency() {
    const currencies = new Set(this.cart.map((l) => this.find(l.sku, l.source)?.currency));
    return currencies.size === 1 ? [...currencies][0] : null;
  }

  total() {
    return this.cart.reduce((sum, l) => sum + (this.find(l.sku, l.source)?.unit_price_minor ?? 0) * l.quantity, 0);
  }

  async submit() {
    if (this.sending || !this.cart.length) return;
    this.sending = true;
    this.error = null;
    this.render();
    const result = await api("POST", `/api/v1/consultations/${this.consultationId}/payment-requests`, {
      client_key: this.key,
      lines: this.cart.map(({ sku, source, quantity }) => ({ sku, source, quantity })),
    });
    this.sending = false;
    if (result.ok) {
      this.update(result.data);
      this.notice = t("payb.sent", { amount: formatMoney(result.data.total_minor, result.data.currency) });
      this.cart = [];
      this.key = newKey();
    } else {
      // The key stays: sending again after a failure cannot make a second request.
      this.error = result.error;
    }
    this.render();
  }

  update(r) {
    if (!r || r.consultation_id !== this.consultationId) return;
    const before = this.requests.get(r.id);
    this.requests.set(r.id, r);
    if (before && before.status !== "paid" && r.status === "paid") {
      this.notice = t("payb.paid_announce", { amount: formatMoney(r.total_minor, r.currency) });
    }
    this.render();
  }

  itemName(item) {
    return language() === "ja" && item.name_ja ? item.name_ja : item.name;
  }

  itemRow(item) {
    const name = this.itemName(item);
    const meta =
      item.source === "history"
        ? `${formatMoney(item.unit_price_minor, item.currency)} · ${t("payb.bought", {
            count: item.times_bought,
            date: item.last_bought_at ? shortDate(item.last_bought_at) : "",
          })}`
        : `${item.sku} · ${formatMoney(item.unit_price_minor, item.currency)}`;
    const picture = item.image_url
      ? el("img", { src: item.image_url, alt: "", width: 36, height: 36 })
      : el("span");
    return el("li", {  "data-sku": item.sku  }, [
      picture,
      el("span", { class: "payb-item-text" }, [
        el("span", { text: name }),
        el("span", { class: "payb-item-meta", text: meta }),
      ]),
      el("button", { class: "button button-secondary button-small", text: t("payb.add"), type: "button", "data-add": item.sku, "data-source": item.source, "aria-label": t("payb.add_named", { name }) }),
    ]);
  }

  renderLists() {
    const match = (item) =>
      !this.query ||
      [item.sku, item.name, item.name_ja].some((text) => (text ?? "").toLowerCase().includes(this.query));
    const catalogue = this.items.catalogue.filter(match);
    const history = this.items.history.filter(match);
    this.catalogueList.replaceChildren(
      ...(catalogue.length
        ? catalogue.map((item) => this.itemRow(item))
        : [el("li", { class: "muted", text: this.loaded ? t("payb.none_found") : "…" })]),
    );
    this.historyList.replaceChildren(
      ...(history.length
        ? history.map((item) => this.itemRow(item))
        : [el("li", { class: "muted", text: t("payb.none_history") })]),
    );
  }

  render() {
    this.heading.textContent = t("payb.title");
    const testMode = this.items.test_mode || [...this.requests.values()].some((r) => r.test_mode);
    this.testNote.hidden = !testMode;
    this.testNote.textContent = t("payb.test_mode");
    this.searchLabel.textContent = t("payb.search");
    this.catalogueTitle.textContent = t("payb.catalogue");
    this.historyTitle.textContent = t("payb.history");
    this.cartTitle.textContent = t("payb.cart");
    this.requestsTitle.textContent = t("payb.requests");
    this.renderLists();
    this.cartEmpty.hidden = this.cart.length > 0;
    this.cartEmpty.textContent = t("payb.cart_empty");
    this.cartList.replaceChildren(
      ...this.cart.map((line, index) => {
        const item = this.find(line.sku, line.source);
        const name = item ? this.itemName(item) : line.sku;
        const id = `${this.root.getAttribute("aria-labelledby")}-q${index}`;
        return el("li", {}, [
          el("label", { class: "pay-line-name", text: name, for: id }),
          el("input", { id, type: "number", min: 1, max: 99, value: line.quantity, "data-quantity": index, "aria-label": t("payb.quantity_of", { name }) }),
          el("span", { class: "pay-line-amount", text: item ? formatMoney(item.unit_price_minor * line.quantity, item.currency) : "" }),
          el("button", { class: "button button-secondary button-small", text: "×", type: "button", "data-remove": index, "aria-label": t("payb.remove", { name }) }),
        ]);
      }),
    );
    const currency = this.currency();
    this.totalLine.hidden = !this.cart.length;
    this.totalLine.replaceChildren(
      el("span", { text: t("payb.total") }),
      el("span", { class: "payb-total-amount", text: currency ? formatMoney(this.total(), currency) : t("payb.mixed") }),
    );
    this.send.textContent = this.sending ? t("payb.sending") : t("payb.send");
    this.send.disabled = this.sending || !this.cart.length || !currency;
    if (this.sending) this.send.setAttribute("aria-busy", "true");
    else this.send.removeAttribute("aria-busy");
    this.errorBox.hidden = !this.error;
    this.errorBox.textContent = this.error ? errorText(this.error) : "";
    this.status.textContent = this.notice;
    const requests = [...this.requests.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    this.requestsTitle.hidden = !requests.length;
    this.requestList.replaceChildren(
      ...requests.map((r) =>
        el("li", { class: "payb-request",  "data-status": r.status, "data-request-id": r.id  }, [
          el("span", { text: formatMoney(r.total_minor, r.currency) }),
          el("span", { class: "payb-request-status", text: t(`pay.status.${r.status}`) }),
        ]),
      ),
    );
  }

  destroy() {
    builders.delete(this.consultationId);
    this.offLanguage?.();
    this.offPayment?.();
    this.root.remove();
  }
}
