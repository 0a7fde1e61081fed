// Payments and refunds (supervisors and admins): the newest payment requests, and a refund
// form on each paid one — all or part of what is left. One submission refunds once: the form
// keeps its client key until the server has answered.
import { request } from "/shared/api.js";
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { toMinor } from "/payments/money.js";

const $ = (id) => document.getElementById(id);
const PAID = ["paid", "partially_refunded", "refunded"];
const state = { rows: [], busy: null, status: "", error: null, keys: new Map() };

function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function errorText(error) {
  const key = `ref.error.${error?.code}`;
  const text = t(key);
  return text !== key ? text : error?.message || t("ref.error.unknown");
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
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function refundForm(r) {
  const amount = formatMoney(r.total_minor, r.currency);
  const form = el("form", undefined, { class: "pay-inline-form", "data-request-id": r.id, novalidate: "" });
  const amountId = `ref-amount-${r.id}`;
  const reasonId = `ref-reason-${r.id}`;
  form.append(
    el("label", t("ref.amount_of", { amount }), { for: amountId, class: "visually-hidden" }),
    el("input", undefined, {
      id: amountId,
      name: "amount",
      inputmode: "decimal",
      "aria-describedby": "ref-amount-hint",
      placeholder: t("ref.amount_placeholder"),
    }),
    el("label", t("ref.reason_of", { amount }), { for: reasonId, class: "visually-hidden" }),
    el("input", undefined, { id: reasonId, name: "reason", maxlength: "500", placeholder: t("ref.reason_placeholder") }),
  );
  const button = el("button", state.busy === r.id ? t("ref.refunding") : t("ref.refund"), {
    type: "submit",
    class: "button button-small",
  });
  button.disabled = state.busy === r.id;
  form.append(button);
  return form;
}

function render() {
  document.title = t("ref.page_title");
  $("ref-empty").hidden = state.rows.length > 0;
  $("ref-table").hidden = state.rows.length === 0;
  const when = new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  });
  $("ref-rows").replaceChildren(
    ...state.rows.map((r) => {
      const row = el("tr", undefined, { "data-request-id": r.id, "data-status": r.status });
      const status = t(`pay.status.${r.status}`) + (r.test_mode ? ` (${t("ref.test_mode")})` : "");
      const refundCell = el("td");
      if (r.status === "paid" || r.status === "partially_refunded") refundCell.append(refundForm(r));
      row.append(
        el("td", when.format(new Date(r.created_at))),
        el("td", r.lines.map((l) => `${language() === "ja" && l.name_ja ? l.name_ja : l.name} × ${l.quantity}`).join(", ")),
        el("td", formatMoney(r.total_minor, r.currency), { class: "num" }),
        el("td", status),
        el("td", formatMoney(r.refunded_minor, r.currency), { class: "num" }),
        refundCell,
      );
      return row;
    }),
  );
  alertBox($("ref-status"), state.status);
  alertBox($("ref-error"), state.error ? errorText(state.error) : "");
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
  const signature = JSON.stringify([r.id, body]);
  if (!state.keys.has(signature)) state.keys.set(signature, newKey());
  body.client_key = state.keys.get(signature);
  state.busy = r.id;
  state.error = null;
  state.status = "";
  render();
  const result = await request("POST", `/api/v1/payment-requests/${r.id}/refunds`, { json: body });
  state.busy = null;
  if (result.ok) {
    state.keys.delete(signature);
    const refunded = result.data.refunds.at(-1);
    state.status = t("ref.done", { amount: formatMoney(refunded.amount_minor, r.currency) });
    Object.assign(r, result.data);
  } else {
    state.error = result.error;
  }
  render();
}

async function main() {
  await initI18n({ extraAreas: ["/admin", "/payments"] });
  onLanguageChange(render);
  $("ref-filter").addEventListener("change", load);
  $("ref-rows").addEventListener("submit", submit);
  await load();
}

main();
