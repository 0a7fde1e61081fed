// @ts-check
// The shopper as the advisor sees them: profile (GET /api/v1/shoppers/{id}), purchases and the
// timeline (GET /api/v1/shoppers/{id}/timeline, newest first, cursor paging), and the demo
// catalogue for product names in the reader's language and the product picker.
import { formatMoney, language, t } from "/shared/i18n.js";
import { api, errorText } from "/shared/staff-api.js";
import { el, part } from "/shared/dom.js";
import { dateTime, shortDate } from "/shared/time.js";
import { recordingPlayer } from "/shared/recording-player.js";
import {
  Recommendations,
  endlessScroll,
  fillKindFilter,
  noteForm,
  openButton,
  translateKindFilter,
} from "/shared/customer/timeline-extras.js";
import { surveyTimelineNodes } from "/shared/customer/intake.js";

const profiles = new Map(); // shopper id → Promise<{ok, data|error}>
let catalogue = null;
let viewerRole = null; // who reads the panel: supervisors and admins may open the payments page

/** The signed-in staff member's role (the console and the customer page set it). */
export function setViewerRole(role) {
  viewerRole = role;
}

export function loadProfile(shopperId, { fresh = false } = {}) {
  if (fresh || !profiles.has(shopperId)) {
    const request = api("GET", `/api/v1/shoppers/${encodeURIComponent(shopperId)}`);
    request.then((result) => {
      if (!result.ok) profiles.delete(shopperId); // try again next time
    });
    profiles.set(shopperId, request);
  }
  return profiles.get(shopperId);
}

export function loadTimeline(shopperId, { limit = 10, cursor = null, kinds = [] } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  for (const kind of kinds) query.append("kind", kind);
  return api("GET", `/api/v1/shoppers/${encodeURIComponent(shopperId)}/timeline?${query}`);
}

/** The demo catalogue (/demo/catalogue.json), fetched once; [] when it cannot be had. */
export function loadCatalogue() {
  catalogue ??= fetch("/demo/catalogue.json", { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : { products: [] }))
    .then((body) => body.products ?? [])
    .catch(() => {
      catalogue = null;
      return [];
    });
  return catalogue;
}

let products = [];
loadCatalogue().then((list) => {
  products = list;
});

export function productName(sku, fallback) {
  const found = products.find((p) => p.sku === sku);
  return found?.name?.[language()] ?? found?.name?.en ?? fallback ?? sku;
}

export function localeName(locale) {
  const base = String(locale || "").split("-")[0];
  const key = `lang.${base}`;
  const known = t(key);
  if (known !== key) return known;
  try {
    return new Intl.DisplayNames([language()], { type: "language" }).of(locale) ?? locale;
  } catch {
    return locale;
  }
}

/** A <dl> of the profile's contact details and the attributes a shop sends; grouped: each
 * term and its value in a <div class="fact"> (the console lays them out as pairs that wrap
 * whole, never between a term and its value). */
export function profileList(profile, { compact = false, grouped = false } = {}) {
  const rows = [
    ["console.profile.email", profile.email],
    ["console.profile.phone", profile.phone],
    ["console.profile.locale", profile.locale ? localeName(profile.locale) : null],
    ["console.profile.timezone", compact ? null : profile.timezone],
  ];
  const attributes = compact ? {} : profile.attributes ?? {};
  if (attributes.name_latin && attributes.name_latin !== profile.display_name) {
    rows.unshift(["console.profile.name_latin", attributes.name_latin]);
  }
  if (attributes.skin_type) rows.push(["console.profile.skin_type", String(attributes.skin_type)]);
  if (attributes.size) rows.push(["console.profile.size", String(attributes.size)]);
  if (Array.isArray(attributes.interests) && attributes.interests.length) {
    rows.push(["console.profile.interests", attributes.interests.map(skillName).join(", ")]);
  }
  if (attributes.preferred_store) rows.push(["console.profile.preferred_store", String(attributes.preferred_store)]);
  const list = el("dl", { class: grouped ? "facts facts-grouped" : "facts" });
  for (const [key, value] of rows) {
    if (!value) continue;
    const pair = [el("dt", { text: t(key) }), el("dd", { text: value })];
    if (grouped) list.append(el("div", { class: "fact" }, pair));
    else list.append(...pair);
  }
  return list;
}

export function skillName(skill) {
  const key = `skill.${skill}`;
  const known = t(key);
  return known === key ? skill : known;
}

function orderTitle(data) {
  // Paid in a consultation (payments/fulfilment.py): said so, never "web shop order".
  if (data.channel === "call") return t("console.order.call", { id: data.order_number ?? data.external_id ?? "" });
  if (data.channel === "store" || (data.store_name && data.channel !== "web")) {
    return t("console.order.store", { store: data.store_name ?? "", id: data.external_id ?? "" });
  }
  return t("console.order.web", { id: data.external_id ?? "" });
}

/**
 * A purchase paid in a consultation links to its payment on the payments page, for those who
 * may open it (the server refuses the others anyway). In the console the link opens a new tab:
 * leaving the console would drop its call. (Its consultation is in the entry's Open view.)
 */
function paymentLink(data) {
  if (data.channel !== "call" || !data.payment_request_id) return null;
  if (!["supervisor", "admin"].includes(viewerRole)) return null;
  const link = el("a", { text: t("console.order.payment_link"), href: `/payments/refunds.html?request=${encodeURIComponent(data.payment_request_id)}` });
  if (document.body.classList.contains("console-mode")) {
    link.target = "_blank";
    link.rel = "noopener";
    link.append(el("span", { class: "visually-hidden", text: t("console.order.new_tab") }));
  }
  return link;
}

/** One shop order: title, lines and total; compact: three short lines (for offer cards). */
export function orderBlock(event, { compact = false } = {}) {
  const data = event.data ?? {};
  const items = Array.isArray(data.items) ? data.items : [];
  const line = (item) => t("console.order.line", { name: productName(item.sku, item.name), quantity: item.quantity ?? 1 });
  const total =
    typeof data.total_minor === "number" && data.currency ? formatMoney(data.total_minor, data.currency) : null;
  if (compact) {
    const shown = items.slice(0, 2).map(line);
    if (items.length > 2) shown.push(t("console.order.more", { count: items.length - 2 }));
    return el("div", { class: "order order-compact" }, [
      el("p", { class: "order-head" }, [
        el("span", { class: "order-title", text: orderTitle(data) }),
        total ? el("strong", { text: total }) : null,
      ]),
      shown.length ? el("p", { class: "order-line", text: shown.join(t("console.list_separator")) }) : null,
      el("p", { class: "order-date", text: shortDate(event.occurred_at) }),
    ]);
  }
  const block = el("div", { class: "order" });
  block.append(
    el("p", { class: "order-head" }, [
      el("span", { class: "order-title", text: orderTitle(data) }),
      el("span", { class: "order-date", text: shortDate(event.occurred_at) }),
    ]),
  );
  if (items.length) block.append(el("ul", { class: "order-items" }, items.map((item) => el("li", { text: line(item) }))));
  if (total) {
    block.append(
      el("p", { class: "order-total" }, [el("span", { text: t("console.order.total") }), el("strong", { text: total })]),
    );
  }
  const payment = paymentLink(data);
  if (payment) block.append(el("p", { class: "order-links" }, [payment]));
  return block;
}

function consultationText(data, summary) {
  const kind = data.kind ? t(`console.kind.${data.kind}`) : "";
  if (data.status === "closed") return t("console.timeline.closed", { kind });
  if (data.status) return t("console.timeline.consultation", { kind, status: t(`console.status.${data.status}`) });
  return summary;
}

/** One timeline entry, for the customer panel. */
export function timelineItem(event) {
  const data = event.data ?? {};
  const item = el("li", { class: `tl-item tl-${event.kind.replace(".", "-")}` });
  item.dataset.kind = event.kind;
  item.append(
    el("p", { class: "tl-meta" }, [
      el("span", { class: "tl-kind", text: t(`console.tl.${event.kind}`) }),
      el("time", { text: dateTime(event.occurred_at), datetime: event.occurred_at }),
    ]),
  );
  if (event.kind === "shop.order") {
    item.append(orderBlock(event));
  } else if (event.kind === "consultation") {
    item.append(el("p", { class: "tl-summary", text: consultationText(data, event.summary) }));
    if (data.notes) {
      item.append(
        el("p", { class: "tl-notes" }, [
          el("span", { class: "tl-notes-label", text: t("console.timeline.notes") }),
          document.createTextNode(" " + data.notes),
        ]),
      );
    }
  } else if (event.kind === "survey") {
    item.append(...surveyTimelineNodes(event));
  } else if (event.kind === "message") {
    const sender = data.sender === "shopper" ? t("console.chat.shopper") : t("console.chat.advisor");
    item.append(el("p", { class: "tl-summary", text: `${sender}: ${event.summary}` }));
  } else {
    item.append(el("p", { class: "tl-summary", text: event.summary }));
    // A ready recording can be played from here (streamed, access audited).
    const player = recordingPlayer(event);
    if (player) item.append(player);
  }
  return item;
}

/** The customer panel of a consultation: profile, then the timeline with "load more". */
// Steps of a consultation on its way to an advisor: noise in the advisor's view of the history.
const ROUTING_STEPS = new Set(["requested", "queued", "offered"]);

/** Whether the customer panel leaves an event out (the open chat shows its own messages). */
export function hiddenInPanel(event, consultationId) {
  if (event.kind === "consultation" && ROUTING_STEPS.has(event.data?.status)) return true;
  return event.kind === "message" && event.consultation_id === consultationId;
}

export class CustomerPanel {
  /** @param {HTMLElement} root @param {string} shopperId @param {{consultationId?: string, onProfile?: Function, groupedFacts?: boolean}} [options] */
  constructor(root, shopperId, { consultationId, onProfile, groupedFacts = false } = {}) {
    this.root = root;
    this.groupedFacts = groupedFacts;
    this.shopperId = shopperId;
    this.consultationId = consultationId;
    this.onProfile = onProfile;
    this.profile = null;
    this.orders = null; // the latest shop orders (null: loading)
    this.ordersError = null;
    this.events = [];
    this.cursor = null;
    this.loading = false;
    this.error = null;
    this.profileBox = root.querySelector("[data-part=profile]");
    this.purchasesBox = root.querySelector("[data-part=purchases]");
    this.list = part(root, "timeline");
    /** @type {HTMLButtonElement} */
    this.more = part(root, "more");
    this.status = root.querySelector("[data-part=timeline-status]");
    /** @type {HTMLSelectElement | null} */
    this.filter = part(root, "timeline-filter");
    this.more.addEventListener("click", () => this.loadMore());
    this.filter?.addEventListener("change", () => this.reload());
    // The whole history: every kind in the filter, notes, recommendations, endless scroll.
    // A page may say where recommendations and the note form go ([data-part=extras]: the
    // console puts them after the timeline, so profile, latest purchases and the newest history
    // are what the advisor reads first); else right after the profile.
    fillKindFilter(this.filter);
    const extras = el("div", { class: "history-extras" });
    const slot = root.querySelector("[data-part=extras]");
    if (slot) slot.append(extras);
    else this.profileBox.after(extras);
    this.recommendations = new Recommendations(extras, shopperId, { consultationId });
    this.noteForm = noteForm(shopperId, () => this.reload());
    extras.append(this.noteForm);
    this.scroller = endlessScroll(
      this.list,
      () => this.loadMore(),
      () => Boolean(this.cursor) && !this.loading,
    );
  }

  async start() {
    const result = await loadProfile(this.shopperId);
    if (result.ok) {
      this.profile = result.data;
      this.onProfile?.(this.profile);
    } else {
      this.error = result.error;
    }
    this.renderProfile();
    this.recommendations.load();
    await Promise.all([this.loadPurchases(), this.reload()]);
  }

  /** The latest three shop orders, compact (as on the offer card). */
  async loadPurchases() {
    if (!this.purchasesBox) return;
    if (this.orders === null) this.renderPurchases();
    const result = await loadTimeline(this.shopperId, { limit: 3, kinds: ["shop.order"] });
    this.orders = result.ok ? result.data.events : [];
    this.ordersError = result.ok ? null : result.error;
    this.renderPurchases();
  }

  renderPurchases() {
    const box = this.purchasesBox;
    if (!box) return;
    if (this.orders === null) {
      box.replaceChildren(el("p", { class: "muted", text: t("console.timeline.loading") }));
    } else if (this.ordersError) {
      box.replaceChildren(el("p", { class: "muted", text: errorText(this.ordersError) }));
    } else if (!this.orders.length) {
      box.replaceChildren(el("p", { class: "muted", text: t("console.offer.no_purchases") }));
    } else {
      const list = el("ul", { class: "purchase-list" });
      for (const event of this.orders) list.append(el("li", {}, [orderBlock(event, { compact: true })]));
      box.replaceChildren(list);
    }
  }

  kinds() {
    const value = this.filter?.value ?? "";
    return value ? value.split(",") : [];
  }

  async reload() {
    this.generation = (this.generation ?? 0) + 1;
    this.events = [];
    this.cursor = null;
    this.loading = false;
    this.list.replaceChildren();
    await this.loadMore(true);
  }

  async loadMore(first = false, hadFocus = document.activeElement === this.more) {
    if (this.loading || (!first && !this.cursor)) return;
    const generation = this.generation;
    this.loading = true;
    this.more.disabled = true;
    this.status.textContent = t("console.timeline.loading");
    const result = await loadTimeline(this.shopperId, { limit: 10, cursor: this.cursor, kinds: this.kinds() });
    if (generation !== this.generation) return; // the filter changed meanwhile
    this.loading = false;
    this.more.disabled = false;
    if (!result.ok) {
      this.status.textContent = errorText(result.error);
      return;
    }
    const firstNew = this.list.children.length;
    this.events.push(...result.data.events);
    this.cursor = result.data.next_cursor;
    this.renderTimeline();
    const shown = this.list.children.length;
    if (shown === firstNew && this.cursor) {
      // Everything on this page was left out (routing steps, this chat's messages): next page.
      await this.loadMore(false, hadFocus);
      return;
    }
    if (!shown) this.status.textContent = t("console.timeline.empty");
    else this.status.textContent = first ? "" : t("console.timeline.loaded", { count: shown - firstNew });
    // Keyboard users who pressed "load more" continue at the first new entry.
    if (!first && hadFocus) this.list.children[firstNew]?.focus();
  }

  /** Something new happened to this shopper (a consultation closed): read the top again. */
  async refresh() {
    await Promise.all([this.loadPurchases(), this.reload()]);
  }

  renderProfile() {
    const box = this.profileBox;
    box.replaceChildren();
    if (!this.profile) {
      box.append(el("p", { class: "alert alert-error", text: errorText(this.error) }));
      return;
    }
    box.append(
      el("p", { class: "profile-name", text: this.profile.display_name }),
      profileList(this.profile, { grouped: this.groupedFacts }),
    );
    if (this.profile.notes) {
      box.append(el("p", { class: "profile-notes", text: this.profile.notes }));
    }
  }

  renderTimeline() {
    this.list.replaceChildren(
      ...this.events
        .filter((event) => !hiddenInPanel(event, this.consultationId))
        .map((event) => {
          const item = timelineItem(event);
          item.tabIndex = -1;
          item.append(openButton(this.shopperId, event));
          return item;
        }),
    );
    this.more.hidden = !this.cursor;
    this.scroller.watch();
  }

  render() {
    this.renderProfile();
    this.renderPurchases();
    this.renderTimeline();
    this.recommendations.render();
    this.noteForm.relabel();
    translateKindFilter(this.filter);
  }
}
