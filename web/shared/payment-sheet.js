// @ts-check
// The shopper's payment sheet inside the call page: it appears when the advisor sends a
// payment request (socket event payment.updated), shows the items and the total, and takes
// the payment — with Stripe's Payment Element (confirmPayment, redirect only if required; the
// card goes from the browser to Stripe, never to livedesk) or, without Stripe keys, with the
// clearly labelled test-mode sandbox. Both parties see "paid" when the server says so.
import { formatMoney, language, onLanguageChange, t } from "/shared/i18n.js";
import { el } from "/shared/dom.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const STRIPE_JS = "https://js.stripe.com/v3/";
const OPEN = new Set(["open", "processing"]);
const PAID = new Set(["paid", "partially_refunded", "refunded"]);
let stripeLoading = null;

export function loadStripe() {
  // Only ever loaded on the call and booking pages with Stripe keys configured (the CSP allows it
  // only then).
  if (window.Stripe) return Promise.resolve(window.Stripe);
  if (!stripeLoading) {
    stripeLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = STRIPE_JS;
      script.onload = () => (window.Stripe ? resolve(window.Stripe) : reject(new Error("no Stripe")));
      script.onerror = () => {
        stripeLoading = null;
        reject(new Error("Stripe.js did not load"));
      };
      document.head.append(script);
    });
  }
  return stripeLoading;
}

function errorText(error) {
  return sharedErrorText(error ?? {}, "pay.error.");
}

export class PaymentSheet {
  /** socket: the page's LiveSocket; token: the visitor token; mount: where the sheet goes.
   * @param {{socket: any, consultationId: string, token?: string, mount?: HTMLElement}} options */
  constructor({ socket, consultationId, token, mount }) {
    this.socket = socket;
    this.consultationId = consultationId;
    this.token = token;
    this.requests = new Map();
    this.current = null;
    this.hidden = false;
    this.busy = null; // the action under way ("pay", "decline" …)
    this.error = null;
    this.checkout = null; // the checkout answer for the current request
    this.stripe = null; // {stripe, elements, requestId}
    this.confirming = false;
    this.build(mount ?? document.body);
  }

  build(mount) {
    if (!document.querySelector('link[href="/payments/payments.css"]')) {
      document.head.append(el("link", { rel: "stylesheet", href: "/payments/payments.css" }));
    }
    this.root = el("section", { class: "pay-sheet card", "aria-labelledby": "pay-title", "data-status": "none" });
    this.root.hidden = true;
    this.title = el("h2", { id: "pay-title", tabindex: "-1" });
    this.badge = el("span", { class: "pay-test-badge" });
    this.close = el("button", { class: "pay-close",  type: "button"  }, [
      el("span", { text: "×", "aria-hidden": "true" }),
    ]);
    this.close.addEventListener("click", () => this.hide());
    this.intro = el("p", { class: "pay-intro" });
    this.status = el("p", { class: "pay-status", role: "status", "aria-live": "polite" });
    this.lines = el("ul", { class: "pay-lines" });
    this.total = el("p", { class: "pay-total" });
    // Once paid: the receipt (order number, when, total in its currency) under the items.
    this.receipt = el("section", { class: "pay-receipt", "aria-labelledby": "pay-receipt-title" });
    this.receipt.hidden = true;
    this.errorBox = el("p", { class: "alert alert-error pay-error", role: "alert" });
    this.errorBox.hidden = true;
    this.actions = el("div", { class: "pay-actions" });
    this.secure = el("p", { class: "pay-secure" });
    this.root.append(
      el("div", { class: "pay-head" }, [this.title, this.badge, this.close]),
      this.intro,
      this.lines,
      this.total,
      this.status,
      this.receipt,
      this.errorBox,
      this.actions,
      this.secure,
    );
    this.reopen = el("button", { class: "button pay-reopen", type: "button" });
    this.reopen.hidden = true;
    this.reopen.addEventListener("click", () => this.show());
    mount.append(this.root, this.reopen);
    this.actions.addEventListener("click", (/** @type {any} */ event) => {
      const button = event.target.closest("button[data-action]");
      if (button && !button.disabled) this.act(button.dataset.action);
    });
    onLanguageChange(() => this.render());
  }

  start() {
    this.socket.on("payment.updated", (r) => this.update(r));
    this.socket.onState((s) => {
      if (s === "connected") this.refresh();
    });
    this.refresh();
  }

  async api(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: {
          Accept: "application/json",
          Authorization: `Bearer ${this.token}`,
          ...(body ? { "Content-Type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch {
      return { ok: false, error: { code: "network_error" } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return response.ok ? { ok: true, data } : { ok: false, error: data?.error ?? { code: "unknown" } };
  }

  /** What the server has for this consultation: after the first connect and every reconnect. */
  async refresh() {
    const result = await this.api("GET", `/api/v1/consultations/${this.consultationId}/payment-requests`);
    if (!result.ok) return;
    for (const r of result.data) this.update(r, { quiet: true });
  }

  update(r, { quiet = false } = {}) {
    if (!r || r.consultation_id !== this.consultationId) return;
    const before = this.requests.get(r.id);
    this.requests.set(r.id, r);
    const newest = [...this.requests.values()].sort((a, b) => a.created_at.localeCompare(b.created_at)).at(-1);
    const switched = this.current?.id !== newest.id;
    this.current = newest;
    if (switched) {
      this.checkout = null;
      this.error = null;
      this.confirming = false;
      this.teardownStripe();
    }
    if (r.id === this.current.id && before?.status !== r.status) {
      this.confirming = false;
      this.busy = null;
      if (r.status === "open" && r.failure_code) this.error = { declined: r.failure_message || r.failure_code };
      else this.error = null;
      if (!OPEN.has(r.status)) this.teardownStripe();
    } else if (r.id === this.current.id && r.failure_code && r.failure_code !== before?.failure_code) {
      this.busy = null;
      this.error = { declined: r.failure_message || r.failure_code };
    }
    const fresh = !before && OPEN.has(r.status) && r.id === this.current.id;
    if (fresh && !quiet) this.hidden = false;
    this.render();
    if (fresh && !quiet) this.title.focus();
    if (OPEN.has(this.current.status) && !this.hidden) this.prepare();
  }

  /** Ask the server how to pay (provider, test mode, Stripe client secret) once per request. */
  async prepare() {
    const r = this.current;
    if (!r || this.checkout?.request.id === r.id || this.preparing === r.id) return;
    this.preparing = r.id;
    const result = await this.api("POST", `/api/v1/payment-requests/${r.id}/checkout`);
    this.preparing = null;
    if (this.current?.id !== r.id) return;
    if (!result.ok) {
      this.error = result.error;
      this.render();
      return;
    }
    this.checkout = result.data;
    this.render();
    if (this.checkout.provider === "stripe" && this.checkout.client_secret) this.mountStripe();
  }

  async mountStripe() {
    const r = this.current;
    const slot = this.actions.querySelector(".pay-element");
    if (!slot || this.stripe?.requestId === r.id) return;
    try {
      const Stripe = await loadStripe();
      const stripe = Stripe(this.checkout.publishable_key, { locale: language() });
      const elements = stripe.elements({ clientSecret: this.checkout.client_secret, locale: language() });
      const element = elements.create("payment");
      element.mount(slot);
      this.stripe = { stripe, elements, element, requestId: r.id };
    } catch {
      this.error = { code: "stripe_unavailable" };
    }
    this.render();
  }

  teardownStripe() {
    this.stripe?.element?.destroy?.();
    this.stripe = null;
  }

  async act(action) {
    const r = this.current;
    if (!r || this.busy) return;
    this.busy = action;
    this.error = null;
    this.render();
    if (this.checkout?.provider === "stripe") {
      const { error } = await this.stripe.stripe.confirmPayment({
        elements: this.stripe.elements,
        redirect: "if_required",
      });
      this.busy = null;
      if (error) this.error = { message: error.message };
      else this.confirming = true; // paid at Stripe: "paid" comes with the signed webhook
      this.render();
      return;
    }
    const result = await this.api("POST", `/api/v1/payment-requests/${r.id}/sandbox`, { action });
    this.busy = null;
    if (result.ok) this.update(result.data);
    else this.error = result.error;
    this.render();
  }

  hide() {
    this.hidden = true;
    this.render();
    this.reopen.focus();
  }

  show() {
    this.hidden = false;
    this.render();
    this.title.focus();
    if (OPEN.has(this.current?.status)) this.prepare();
  }

  button(action, text, secondary = false) {
    const b = el("button", { class: `button${secondary ? " button-secondary" : ""}`, text, type: "button", "data-action": action });
    b.disabled = Boolean(this.busy) || this.confirming;
    if (this.busy === action) b.setAttribute("aria-busy", "true");
    return b;
  }

  renderActions(r) {
    const amount = formatMoney(r.total_minor, r.currency);
    const stripeSlot = this.actions.querySelector(".pay-element");
    if (!OPEN.has(r.status) || !this.checkout) {
      if (!stripeSlot || !OPEN.has(r.status)) this.actions.replaceChildren();
      return;
    }
    if (this.checkout.provider === "stripe") {
      // The Payment Element keeps its own DOM: build the slot once and only redraw the button.
      if (!stripeSlot) this.actions.replaceChildren(el("div", { class: "pay-element" }));
      this.actions.querySelector(".pay-submit")?.remove();
      const pay = this.button("pay", this.busy ? t("pay.paying") : t("pay.pay", { amount }));
      pay.classList.add("pay-submit");
      pay.disabled = pay.disabled || !this.stripe;
      this.actions.append(pay);
      return;
    }
    if (r.status === "processing" && r.failure_code === "authentication_required") {
      this.actions.replaceChildren(
        el("p", { class: "pay-auth-title", text: t("pay.auth_title") }),
        this.button("authenticate", t("pay.auth_confirm")),
        this.button("fail_authentication", t("pay.auth_fail"), true),
      );
      return;
    }
    this.actions.replaceChildren(
      el("p", { class: "pay-test-note", text: t("pay.test_note") }),
      this.button("pay", this.busy === "pay" ? t("pay.paying") : t("pay.pay_test", { amount })),
      this.button("decline", t("pay.decline_test"), true),
      this.button("require_authentication", t("pay.auth_test"), true),
    );
  }

  renderReceipt(r, paid) {
    this.receipt.hidden = !paid;
    this.root.dataset.orderNumber = paid ? r.order_number : "";
    if (!paid) {
      this.receipt.replaceChildren();
      return;
    }
    const when = new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
      dateStyle: "medium",
      timeStyle: "short",
    });
    const row = (label, value, className) =>
      el("div", { class: "pay-receipt-row" }, [el("dt", { text: label }), el("dd", { class: className, text: value })]);
    this.receipt.replaceChildren(
      el("h3", { text: t("pay.receipt.title"), id: "pay-receipt-title" }),
      el("dl", {}, [
        row(t("pay.receipt.order_number"), r.order_number, "pay-order-number"),
        r.paid_at ? row(t("pay.receipt.paid_at"), when.format(new Date(r.paid_at)), "pay-paid-at") : null,
        row(
          t("pay.receipt.amount", { currency: r.currency }),
          formatMoney(r.total_minor, r.currency),
          "pay-receipt-amount",
        ),
      ]),
      el("p", { class: "pay-receipt-keep", text: t("pay.receipt.keep") }),
    );
  }

  render() {
    const r = this.current;
    if (!r) return;
    const amount = formatMoney(r.total_minor, r.currency);
    this.root.hidden = this.hidden;
    this.reopen.hidden = !this.hidden;
    this.reopen.textContent = t("pay.show", { amount });
    this.root.dataset.status = r.status;
    this.root.dataset.requestId = r.id;
    this.title.textContent = t("pay.title");
    this.badge.hidden = !r.test_mode;
    this.badge.textContent = t("pay.test_mode");
    this.close.setAttribute("aria-label", t("pay.hide"));
    this.close.title = t("pay.hide");
    const paid = PAID.has(r.status) && Boolean(r.order_number);
    this.intro.textContent = paid ? t("pay.receipt.intro") : t("pay.from_advisor");
    this.lines.replaceChildren(
      ...r.lines.map((line) =>
        el("li", {}, [
          el("span", { class: "pay-line-name", text: language() === "ja" && line.name_ja ? line.name_ja : line.name }),
          el("span", { class: "pay-line-qty", text: t("pay.quantity", { quantity: line.quantity }) }),
          el("span", { class: "pay-line-amount", text: formatMoney(line.amount_minor, r.currency) }),
        ]),
      ),
    );
    this.total.replaceChildren(
      el("span", { text: t("pay.total") }),
      el("strong", { class: "pay-total-amount", text: amount }),
    );
    let status = t(`pay.status.${r.status}`);
    if (this.confirming && OPEN.has(r.status)) status = t("pay.confirming");
    else if (OPEN.has(r.status) && !this.checkout) status = t("pay.loading");
    this.status.textContent = status;
    const problem = this.error?.declined
      ? t("pay.declined", { message: this.error.declined })
      : this.error
        ? errorText(this.error)
        : "";
    this.errorBox.hidden = !problem;
    this.errorBox.textContent = problem;
    // With Stripe the card goes from this page to Stripe: say so (the sandbox takes no card).
    const stripe = r.provider === "stripe";
    this.secure.textContent = stripe ? t("pay.secure_note") : "";
    this.secure.hidden = !stripe;
    this.renderReceipt(r, paid);
    this.renderActions(r);
  }
}
