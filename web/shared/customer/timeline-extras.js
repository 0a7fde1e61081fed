// @ts-check
// The unified customer history in the advisor console, around the customer panel
// (customer.js): a filter over every kind of event, endless scroll, an event opened in full
// (chat transcript, order lines, recording player, visit), notes, and recommendations from
// purchase history with "add to payment request".
//
// "Add to payment request" calls addToPaymentRequest from /shared/customer/payment.js for the
// consultation the panel belongs to; where there is no payment builder (the customer search
// page) it dispatches the DOM event `livedesk:add-to-payment` with {sku, quantity} instead.
import { formatMoney, t } from "/shared/i18n.js";
import { api, errorText } from "/shared/staff-api.js";
import { el, uid } from "/shared/dom.js";
import { dateTime, shortDate } from "/shared/time.js";

const KINDS = [
  "consultation",
  "recording",
  "shop.order",
  "store.visit",
  "channel.event",
  "booking",
  "payment",
  "survey",
  "note",
];

const STYLESHEET = "/history/history.css";

/** The history parts' styles, added once to whatever page shows them. */
export function useStylesheet() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET }));
}

async function paymentAdder() {
  try {
    const module = await import("/shared/customer/payment.js");
    return module.addToPaymentRequest;
  } catch {
    return null;
  }
}

/** Fill the kind filter with every kind the history holds (keeps the options already there). */
export function fillKindFilter(select) {
  useStylesheet();
  if (!select || select.dataset.allKinds) return;
  select.dataset.allKinds = "1";
  const have = new Set([...select.options].map((o) => o.value));
  for (const kind of KINDS) {
    if (have.has(kind)) continue;
    select.append(el("option", { text: t(`history.kind.${kind}`), value: kind, "data-kind-option": kind }));
  }
}

export function translateKindFilter(select) {
  for (const option of select?.querySelectorAll("[data-kind-option]") ?? []) {
    option.textContent = t(`history.kind.${option.dataset.kindOption}`);
  }
}

/**
 * Endless scroll: when the last entry of the list comes into view — in the page and in the
 * list's own scroll box (the console's timeline scrolls by itself) — load the next page.
 * Call watch() after every render; the "load more" button stays for keyboards.
 */
export function endlessScroll(list, loadMore, canLoad) {
  if (!("IntersectionObserver" in window)) return { watch() {} };
  let watched = null;
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && canLoad()) loadMore();
  });
  return {
    watch() {
      if (watched) observer.unobserve(watched);
      watched = list.lastElementChild;
      if (watched) observer.observe(watched);
    },
  };
}

// --- one event in full ------------------------------------------------------------------------

function transcriptBlock(detail) {
  const c = detail.consultation;
  const parts = [];
  if (c) {
    const facts = el("dl", { class: "facts" });
    const rows = [
      ["history.detail.advisor", c.advisor_name],
      ["history.detail.status", c.status ? t(`console.status.${c.status}`) : null],
      ["history.detail.started", c.accepted_at ? dateTime(c.accepted_at) : null],
      ["history.detail.ended", c.ended_at ? dateTime(c.ended_at) : null],
      ["history.detail.notes", c.notes],
    ];
    for (const [key, value] of rows) if (value) facts.append(el("dt", { text: t(key) }), el("dd", { text: value }));
    parts.push(facts);
  }
  const messages = (detail.transcript ?? []).filter((m) => m.kind !== "event");
  if (messages.length) {
    parts.push(el("h3", { class: "detail-sub", text: t("history.detail.transcript") }));
    parts.push(
      el(
        "ol",
        { class: "transcript" },
        messages.map((m) =>
          el("li", { class: `transcript-${m.sender}` }, [
            el("span", { class: "transcript-who", text: t(`history.sender.${m.sender}`) }),
            el("time", { class: "transcript-at", text: dateTime(m.at), datetime: m.at }),
            el("p", { text: m.body || t(`history.message.${m.kind}`) }),
          ]),
        ),
      ),
    );
  } else if (c) {
    parts.push(el("p", { class: "muted", text: t("history.detail.no_messages") }));
  }
  return parts;
}

function orderDetail(order) {
  const rows = order.lines.map((line) =>
    el("tr", {}, [
      el("td", { text: line.name }),
      el("td", { text: line.sku }),
      el("td", { class: "num", text: String(line.quantity) }),
      el("td", { class: "num", text: formatMoney(line.unit_price_minor, order.currency) }),
    ]),
  );
  return [
    el("p", { text:
        order.channel === "call"
          ? t("history.detail.order_call", { id: order.external_id })
          : order.store_name
            ? t("history.detail.order_store", { id: order.external_id, store: order.store_name })
            : t("history.detail.order_web", { id: order.external_id }) }),
    el("table", { class: "data-table" }, [
      el("thead", {}, [
        el("tr", {}, [
          el("th", { text: t("history.detail.item"), scope: "col" }),
          el("th", { text: t("history.detail.sku"), scope: "col" }),
          el("th", { class: "num", text: t("history.detail.quantity"), scope: "col" }),
          el("th", { class: "num", text: t("history.detail.price"), scope: "col" }),
        ]),
      ]),
      el("tbody", {}, rows),
    ]),
    el("p", { class: "order-total" }, [
      el("span", { text: t("history.detail.total") }),
      el("strong", { text: formatMoney(order.total_minor, order.currency) }),
    ]),
  ];
}

function detailBody(event, detail) {
  const parts = [];
  if (detail.recording) {
    const video = el("video", { class: "recording-video", controls: "", preload: "metadata", src: detail.recording.media_url, "aria-label": t("history.detail.player") });
    parts.push(video);
  }
  if (detail.order) parts.push(...orderDetail(detail.order));
  if (detail.channel_event) {
    const e = detail.channel_event;
    const facts = el("dl", { class: "facts" });
    for (const [key, value] of [
      ["history.detail.kind", e.kind],
      ["history.detail.store", e.store_name],
      ["history.detail.description", e.description],
    ]) {
      if (value) facts.append(el("dt", { text: t(key) }), el("dd", { text: value }));
    }
    parts.push(facts);
  }
  if (detail.consultation || detail.transcript) parts.push(...transcriptBlock(detail));
  if (event.kind === "note") parts.push(el("p", { class: "note-text", text: event.data?.text ?? event.summary }));
  if (event.kind === "survey" && Array.isArray(event.data?.answers)) {
    const list = el("dl", { class: "facts" });
    for (const answer of event.data.answers) {
      const label = answer.label?.[document.documentElement.lang] ?? answer.label?.en ?? answer.question ?? answer.id ?? "";
      const value = Array.isArray(answer.value) ? answer.value.join(", ") : String(answer.value ?? answer.answer ?? "");
      list.append(el("dt", { text: String(label) }), el("dd", { text: value }));
    }
    parts.push(list);
  }
  if (!parts.length) parts.push(el("p", { text: event.summary || t(`console.tl.${event.kind}`) }));
  if (detail.actor_name) parts.push(el("p", { class: "muted", text: t("history.detail.by", { name: detail.actor_name }) }));
  return parts;
}

let dialog = null;

function detailDialog() {
  if (dialog) return dialog;
  const titleId = uid("detail-title");
  dialog = el("dialog", { class: "history-detail", "aria-labelledby": titleId });
  dialog.innerHTML = "";
  dialog.append(
    el("div", { class: "dialog-head" }, [
      el("h2", { text: "", id: titleId, "data-part": "title" }),
      el("button", { class: "button button-secondary button-small", text: t("history.detail.close"), type: "button", "data-part": "close" }),
    ]),
    el("div", { "data-part": "body", role: "status", "aria-live": "polite" }),
  );
  dialog.querySelector("[data-part=close]").addEventListener("click", () => dialog.close());
  document.body.append(dialog);
  return dialog;
}

/** Open one timeline event in full, in a modal dialog; focus returns to `opener` afterwards. */
export async function openEvent(shopperId, event, opener) {
  const box = detailDialog();
  box.querySelector("[data-part=title]").textContent = `${t(`console.tl.${event.kind}`)} · ${dateTime(event.occurred_at)}`;
  box.querySelector("[data-part=close]").textContent = t("history.detail.close");
  const body = box.querySelector("[data-part=body]");
  body.replaceChildren(el("p", { text: t("history.detail.loading") }));
  box.addEventListener("close", () => opener?.focus(), { once: true });
  if (!box.open) box.showModal();
  const result = await api(
    "GET",
    `/api/v1/shoppers/${encodeURIComponent(shopperId)}/timeline/${encodeURIComponent(event.id)}`,
  );
  if (!result.ok) {
    body.replaceChildren(el("p", { class: "alert alert-error", text: errorText(result.error) }));
    return;
  }
  body.replaceChildren(...detailBody(event, result.data.detail ?? {}));
}

/** The "open" button of one timeline entry. */
export function openButton(shopperId, event) {
  const button = el("button", { class: "button button-secondary button-small tl-open", text: t("history.open"), type: "button", "aria-label": t("history.open_label", { kind: t(`console.tl.${event.kind}`), when: dateTime(event.occurred_at) }) });
  button.addEventListener("click", () => openEvent(shopperId, event, button));
  return button;
}

// --- notes ------------------------------------------------------------------------------------

/** A small form that adds a note to the shopper's timeline; onAdded runs after it is saved. */
export function noteForm(shopperId, onAdded) {
  const id = uid("note");
  const form = el("form", { class: "note-form" });
  const label = el("label", { text: t("history.note.label"), for: id });
  const input = el("textarea", { id, rows: "2", maxlength: "5000", required: "" });
  const button = el("button", { class: "button button-small", text: t("history.note.add"), type: "submit" });
  const status = el("p", { class: "muted note-status", role: "status" });
  form.append(label, input, button, status);
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    if (!input.value.trim()) {
      status.textContent = t("history.note.empty");
      input.focus();
      return;
    }
    button.disabled = true;
    status.textContent = t("history.note.saving");
    const result = await api("POST", `/api/v1/shoppers/${encodeURIComponent(shopperId)}/notes`, { text: input.value });
    button.disabled = false;
    if (!result.ok) {
      status.textContent = errorText(result.error);
      return;
    }
    input.value = "";
    status.textContent = t("history.note.saved");
    await onAdded?.();
  });
  form.relabel = () => {
    label.textContent = t("history.note.label");
    button.textContent = t("history.note.add");
  };
  return form;
}

// --- recommendations ---------------------------------------------------------------------------

export class Recommendations {
  constructor(container, shopperId, { consultationId = null } = {}) {
    this.shopperId = shopperId;
    this.consultationId = consultationId;
    this.data = null;
    this.error = null;
    this.titleId = uid("reco-title");
    this.root = el("section", { class: "recommendations", "aria-labelledby": this.titleId });
    container.append(this.root);
  }

  async load() {
    const result = await api("GET", `/api/v1/shoppers/${encodeURIComponent(this.shopperId)}/recommendations`);
    if (result.ok) this.data = result.data;
    else this.error = result.error;
    this.render();
  }

  async add(item, status) {
    const adder = this.consultationId ? await paymentAdder() : null;
    // A repurchase is in their own history; an item bought together by others is in the catalogue.
    const source = item.last_bought_at ? "history" : "catalogue";
    const added = adder ? adder(this.consultationId, { sku: item.sku, quantity: item.quantity, source }) : false;
    if (!added) {
      this.root.dispatchEvent(
        new CustomEvent("livedesk:add-to-payment", { bubbles: true, detail: { sku: item.sku, quantity: item.quantity } }),
      );
    }
    status.textContent = t(added || !this.consultationId ? "history.reco.added" : "history.reco.not_added", { name: item.name });
  }

  itemRow(item, extra, status) {
    const button = el("button", { class: "button button-secondary button-small", text: t("history.reco.add"), type: "button", "aria-label": t("history.reco.add_label", { name: item.name }) });
    button.addEventListener("click", () => this.add(item, status));
    return el("li", { class: "reco-item" }, [
      el("span", { class: "reco-name", text: item.name }),
      el("span", { class: "reco-extra muted", text: extra }),
      el("span", { class: "reco-price", text: formatMoney(item.unit_price_minor, item.currency) }),
      button,
    ]);
  }

  render() {
    const status = el("p", { class: "muted", role: "status" });
    /** @type {HTMLElement[]} */
    const parts = [el("h5", { text: t("history.reco.title"), id: this.titleId })];
    if (this.error) {
      parts.push(el("p", { class: "alert alert-error", text: errorText(this.error) }));
    } else if (!this.data) {
      parts.push(el("p", { class: "muted", text: t("history.reco.loading") }));
    } else {
      const { reminders, bought_together: together } = this.data;
      if (!reminders.length && !together.length) parts.push(el("p", { class: "muted", text: t("history.reco.none") }));
      if (reminders.length) {
        parts.push(el("h6", { text: t("history.reco.reminders") }));
        parts.push(
          el("ul", { class: "reco-list" }, reminders.map((r) =>
              this.itemRow(
                r,
                t(r.overdue ? "history.reco.overdue" : "history.reco.due", {
                  date: shortDate(r.due_at),
                  days: r.interval_days,
                }),
                status,
              ),
            )
          ),
        );
      }
      if (together.length) {
        parts.push(el("h6", { text: t("history.reco.together") }));
        parts.push(
          el("ul", { class: "reco-list" }, together.map((x) => this.itemRow(x, t("history.reco.orders", { count: x.orders_together }), status))
          ),
        );
      }
    }
    parts.push(status);
    this.root.replaceChildren(...parts);
  }
}
