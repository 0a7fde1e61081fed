// @ts-check
// Payments and refunds (supervisors and admins): the newest payment requests with who paid
// (a link to the customer's history), who sold, the items and the order number, and a refund
// form on each paid one — all or part of what is left. Refunding everything that is left is
// asked for first (an empty amount means "all", which is easy to do by accident). One
// submission refunds once: the form keeps its client key until the server has answered.
import { confirmAction, renderConfirm, setupConfirm } from "/shared/confirm.js";
import { request, setCsrfToken } from "/shared/api.js";
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { toMinor } from "/shared/money.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { $, el } from "/shared/dom.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const PAID = ["paid", "partially_refunded", "refunded"];
const state = { me: null, rows: [], busy: null, status: null, error: null, keys: new Map() };

function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function errorText(error) {
  return sharedErrorText(error ?? {}, "ref.error.");
}

function alertBox(node, text) {
  node.textContent = text;
  node.classList.toggle("is-empty", !text);
}

async function load() {
  const filter = $("ref-filter").value;
  const query = filter === "paid" ? `?${PAID.map((s) => `status=${s}`).join("&")}` : "";
  const result = await request("GET", `/api/v1/payment-requests${query}`);
  $("ref-checking").hidden = true;
  if (!result.ok) {
    $("ref-denied").hidden = false;
    return;
  }
  state.rows = result.data;
  $("ref-panel").hidden = false;
  render();
  showTarget();
}

// ?request=<id>: the payment a purchase on a customer's history links to, marked and brought
// into view (once; the filter or a refund later leaves the page where the person put it).
const target = new URLSearchParams(location.search).get("request");
let targetShown = false;

function showTarget() {
  if (!target || targetShown) return;
  const row = [...$("ref-rows").querySelectorAll("tr[data-request-id]")].find((tr) => tr.dataset.requestId === target);
  if (!row) return;
  targetShown = true;
  row.scrollIntoView({ block: "center" });
  row.focus({ preventScroll: true });
}

/** A cell that says what its column is when the table is stacked (phone width). */
function cell(label, text, attrs = {}, children = []) {
  return el("td", { "data-label": t(label), ...attrs }, [el("div", { text: text }, children)]);
}

function customerName(r) {
  return r.shopper_name || r.shopper_email || t("ref.unnamed");
}

// Pending refunds hold their amount (the provider is still deciding): not refundable again.
const HOLDING = new Set(["pending", "succeeded"]);

function remaining(r) {
  const held = (r.refunds ?? []).filter((x) => HOLDING.has(x.status)).reduce((sum, x) => sum + x.amount_minor, 0);
  return r.total_minor - held;
}

/** Each refund of a payment with where it is (pending, refunded, failed, canceled). */
function refundList(r) {
  if (!r.refunds?.length) return null;
  return el(
    "ul",
    { class: "ref-refunds", "aria-label": t("ref.refunds_of", { amount: formatMoney(r.total_minor, r.currency) }) },
    r.refunds.map((x) =>
      el("li", { class: `ref-refund-item ref-refund-${x.status}`, "data-refund-status": x.status }, [
        el("span", { text: formatMoney(x.amount_minor, x.currency ?? r.currency), class: "num" }),
        " ",
        el("span", { text: t(`ref.refund_state.${x.status}`), class: "ref-refund-state" }),
        x.failure_reason ? el("span", { text: ` (${x.failure_reason})`, class: "muted" }) : null,
      ]),
    ),
  );
}

function refundForm(r) {
  const amount = formatMoney(r.total_minor, r.currency);
  const form = el("form", { class: "pay-inline-form", "data-request-id": r.id, novalidate: "" });
  const amountId = `ref-amount-${r.id}`;
  const reasonId = `ref-reason-${r.id}`;
  form.append(
    el("label", { text: t("ref.amount_of", { amount }), for: amountId, class: "visually-hidden" }),
    el("input", { id: amountId, name: "amount", inputmode: "decimal", "aria-describedby": "ref-amount-hint", placeholder: t("ref.amount_placeholder") }),
    el("label", { text: t("ref.reason_of", { amount }), for: reasonId, class: "visually-hidden" }),
    el("input", { id: reasonId, name: "reason", maxlength: "500", placeholder: t("ref.reason_placeholder") }),
    el("p", { text: t("ref.left", { amount: formatMoney(remaining(r), r.currency) }), class: "ref-left" }),
  );
  const button = el("button", { text: state.busy === r.id ? t("ref.refunding") : t("ref.refund"), type: "submit", class: "button button-small" });
  button.disabled = state.busy === r.id;
  form.append(button);
  return form;
}

function lineText(line) {
  return t("ref.line", { name: language() === "ja" && line.name_ja ? line.name_ja : line.name, quantity: line.quantity });
}

function render() {
  document.title = t("ref.page_title");
  renderConfirm();
  $("ref-who").hidden = !state.me;
  if (state.me) {
    $("ref-who").textContent = t("ref.signed_in_as", { name: state.me.display_name, role: t(`role.${state.me.role}`) });
  }
  $("ref-empty").hidden = state.rows.length > 0;
  $("ref-table").hidden = state.rows.length === 0;
  const when = new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  });
  $("ref-rows").replaceChildren(
    ...state.rows.map((r) => {
      const row = el("tr", { "data-request-id": r.id, "data-status": r.status });
      if (r.id === target) {
        row.classList.add("ref-target");
        row.setAttribute("aria-current", "true");
        row.tabIndex = -1;
      }
      const status = t(`pay.status.${r.status}`) + (r.test_mode ? ` (${t("ref.test_mode")})` : "");
      const refundCell = cell("ref.col.refund", undefined, { class: "ref-refund" });
      if ((r.status === "paid" || r.status === "partially_refunded") && remaining(r) > 0) /** @type {HTMLElement} */ (refundCell.firstChild).append(refundForm(r));
      const customer = el("a", { text: customerName(r), href: `/history/?shopper=${encodeURIComponent(r.shopper_id)}`, class: "ref-customer" });
      row.append(
        cell("ref.col.when", when.format(new Date(r.paid_at ?? r.created_at))),
        cell("ref.col.customer", undefined, {}, [
          customer,
          r.shopper_email && r.shopper_name ? el("span", { text: r.shopper_email, class: "ref-email" }) : null,
        ]),
        cell("ref.col.advisor", r.advisor_name || t("ref.none"), { class: "ref-advisor" }),
        cell("ref.col.items", undefined, {}, [el("ul", { class: "ref-items" }, r.lines.map((l) => el("li", { text: lineText(l) })))]),
        cell("ref.col.order", r.order_number ?? t("ref.no_order"), { class: r.order_number ? "ref-order" : "ref-order muted" }),
        cell("ref.col.total", formatMoney(r.total_minor, r.currency), { class: "num" }),
        cell("ref.col.status", status),
        cell("ref.col.refunded", formatMoney(r.refunded_minor, r.currency), { class: "num" }, [refundList(r)]),
        refundCell,
      );
      return row;
    }),
  );
  // Kept as a key and its values, so a language switch translates it too.
  alertBox($("ref-status"), state.status ? t(state.status.key, state.status.params) : "");
  alertBox($("ref-error"), state.error ? errorText(state.error) : "");
}

/** Everything that is left, to this customer, for this order: asked before it is done. */
function confirmFullRefund(r) {
  const params = {
    amount: formatMoney(remaining(r), r.currency),
    customer: customerName(r),
    order: r.order_number ?? t("ref.no_order"),
  };
  return confirmAction({
    title: { key: "ref.confirm_title", params },
    text: { key: "ref.confirm_text", params },
    confirm: { key: "ref.confirm_ok", params },
  });
}

async function submit(event) {
  const form = event.target.closest("form[data-request-id]");
  if (!form) return;
  event.preventDefault();
  const r = state.rows.find((x) => x.id === form.dataset.requestId);
  const amountText = form.elements.amount.value.trim();
  const body = { reason: form.elements.reason.value.trim() };
  if (amountText) {
    const minor = toMinor(amountText, r.currency);
    if (minor === null || minor <= 0) {
      state.error = { message: t("cat.bad_price") };
      render();
      return;
    }
    body.amount_minor = minor;
  }
  if (body.amount_minor === undefined || body.amount_minor === remaining(r)) {
    if (!(await confirmFullRefund(r))) return;
  }
  const signature = JSON.stringify([r.id, body]);
  if (!state.keys.has(signature)) state.keys.set(signature, newKey());
  body.client_key = state.keys.get(signature);
  state.busy = r.id;
  state.error = null;
  state.status = null;
  render();
  const result = await request("POST", `/api/v1/payment-requests/${r.id}/refunds`, { json: body });
  state.busy = null;
  if (result.ok) {
    state.keys.delete(signature);
    const refunded = result.data.refunds.at(-1);
    // Stripe often answers "pending": the money is on its way, not back yet.
    const key = refunded.status === "pending" ? "ref.done_pending" : "ref.done";
    state.status = { key, params: { amount: formatMoney(refunded.amount_minor, r.currency) } };
    Object.assign(r, result.data);
  } else {
    state.error = result.error;
  }
  render();
}

async function main() {
  await initI18n({ extraAreas: ["/admin", "/payments", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), "/payments/refunds.html");
  onLanguageChange(render);
  setupConfirm();
  $("ref-filter").addEventListener("change", load);
  $("ref-rows").addEventListener("submit", submit);
  const me = await request("GET", "/api/v1/auth/me");
  if (me.ok) {
    state.me = me.data;
    setCsrfToken(me.data.csrf_token);
    nav.show(me.data.role);
  }
  await load();
}

main();
