// @ts-check
// Admin page: the audit log (GET /api/v1/audit), newest first — when (the reader's local
// time), who (a staff member, or "—" for the system or a shopper), what (a label per action in
// the reader's language, else the action's own name), which record (linked to the customer's
// history where there is one) and the details, compact. Filters: action family, staff member,
// record type, from a date; "Load older" follows the API's cursor. Admins only: the API
// refuses everyone else, and so does this page.
import { initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { request } from "/shared/api.js";
import { $, el } from "/shared/dom.js";

const PAGE_SIZE = 50;
const DETAILS_SHOWN = 120; // characters of details before "Show all"

// Families for the action filter ("recording." lists every recording action).
export const FAMILIES = ["recording", "shopper", "staff", "team", "integration", "webhook", "chat_file"];
export const TARGET_TYPES = [
  "shopper",
  "recording",
  "staff",
  "team",
  "integration",
  "webhook_endpoint",
  "webhook_delivery",
  "chat_file",
];
// Every action written today has a label (audit.action.<action>); one written later without a
// label shows its own name.
export const ACTIONS = [
  "recording.view",
  "recording.view_denied",
  "recording.play",
  "recording.play_denied",
  "recording.list",
  "recording.list_denied",
  "recording.expired",
  "recording.erased",
  "chat_file.read",
  "shopper.export",
  "shopper.erase",
  "shopper.anonymise",
  "shopper.merge",
  "staff.login",
  "staff.login_failed",
  "staff.created",
  "staff.updated",
  "staff.disabled",
  "staff.enabled",
  "staff.password_changed",
  "staff.photo_changed",
  "team.created",
  "team.updated",
  "team.deleted",
  "integration.create",
  "integration.key.create",
  "integration.key.revoke",
  "webhook.endpoint.create",
  "webhook.endpoint.update",
  "webhook.endpoint.rotate",
  "webhook.endpoint.test",
  "webhook.delivery.retry",
];
// Acts after which the record is gone: no link to a page that would say "not found".
const GONE_AFTER = new Set(["shopper.erase", "recording.erased"]);

const state = { entries: [], next: null, staff: [], loading: false, failed: null, generation: 0 };

/** The translation of key, or fallback when the tables have none. */
function label(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

export function actionLabel(action) {
  return label(`audit.action.${action}`, action);
}

function targetLabel(type) {
  return label(`audit.target.${type}`, type);
}

function when(iso) {
  return new Date(iso).toLocaleString(language() === "ja" ? "ja-JP" : "en-GB", {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** Where a row's record can be seen: the customer's history (a recording is played there). */
function recordHref(entry) {
  if (GONE_AFTER.has(entry.action)) return null;
  if (entry.target_type === "shopper") return `/history/?shopper=${encodeURIComponent(entry.target_id)}`;
  const shopper = entry.details?.shopper_id;
  if (entry.target_type === "recording" && typeof shopper === "string") {
    return `/history/?shopper=${encodeURIComponent(shopper)}`;
  }
  return null;
}

function compactValue(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(compactValue).join(", ");
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([key, inner]) => `${key}=${typeof inner === "object" && inner !== null ? JSON.stringify(inner) : inner}`)
      .join(", ");
  }
  return String(value);
}

export function compactDetails(details) {
  return Object.entries(details ?? {})
    .map(([key, value]) => `${key}: ${compactValue(value)}`)
    .join(" · ");
}

function detailsCell(details) {
  const text = compactDetails(details);
  if (text.length <= DETAILS_SHOWN) return [el("span", { class: "audit-details", text })];
  const all = el("details", { class: "audit-details-all" }, [
    el("summary", { text: t("audit.details.all") }),
    el("pre", { text: JSON.stringify(details, null, 2) }),
  ]);
  return [el("span", { class: "audit-details", text: `${text.slice(0, DETAILS_SHOWN)}…` }), all];
}

function row(entry) {
  const who = entry.actor
    ? el("span", { class: "audit-who" }, [
        el("span", { class: "audit-who-name", text: entry.actor.display_name }),
        el("span", { class: "audit-who-email muted", text: entry.actor.email }),
      ])
    : el("span", { title: t("audit.nobody") }, [
        el("span", { text: "—", "aria-hidden": "true" }),
        el("span", { class: "visually-hidden", text: t("audit.nobody") }),
      ]);
  // A staff member is named (the filter's list has every account); other records by id.
  const person = entry.target_type === "staff" ? state.staff.find((p) => p.id === entry.target_id) : null;
  const recordText = `${targetLabel(entry.target_type)} ${person ? person.display_name : entry.target_id.slice(0, 8)}`;
  const href = recordHref(entry);
  const record = href
    ? el("a", { text: recordText, href, title: entry.target_id })
    : el("span", { text: recordText, title: entry.target_id });
  const cell = (key, children, className) =>
    el("td", { class: className, "data-label": t(`audit.col.${key}`) }, children);
  return el("tr", { "data-action": entry.action, "data-id": entry.id }, [
    cell("time", [el("time", { text: when(entry.at), datetime: entry.at })], "audit-time"),
    cell("who", [who]),
    cell("what", [
      el("span", { class: "audit-what", text: actionLabel(entry.action) }),
      el("code", { class: "audit-action muted", text: entry.action }),
    ]),
    cell("record", [record]),
    cell("details", detailsCell(entry.details), "audit-details-cell"),
  ]);
}

function filters() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const family = $("audit-action").value;
  if (family) params.set("action", `${family}.`);
  if ($("audit-actor").value) params.set("actor", $("audit-actor").value);
  if ($("audit-target").value) params.set("target_type", $("audit-target").value);
  const since = $("audit-since").value;
  // The start of that day where the reader is.
  if (since) params.set("since", new Date(`${since}T00:00:00`).toISOString());
  return params;
}

function filtered() {
  return ["audit-action", "audit-actor", "audit-target", "audit-since"].some((id) => $(id).value);
}

function renderStatus() {
  const status = $("audit-status");
  if (state.loading) status.textContent = t("audit.loading");
  else if (state.failed) status.textContent = "";
  else if (!state.entries.length) status.textContent = t(filtered() ? "audit.empty" : "audit.empty_all");
  else status.textContent = t(state.next ? "audit.count_more" : "audit.count", { count: state.entries.length });
  $("audit-table").setAttribute("aria-busy", state.loading ? "true" : "false");
  $("audit-table").hidden = !state.entries.length;
  $("audit-error").hidden = !state.failed;
  $("audit-error-message").textContent = state.failed ?? "";
  $("audit-older").hidden = !state.next || Boolean(state.failed);
  $("audit-older").disabled = state.loading;
  $("audit-end").hidden = Boolean(state.next || state.loading || state.failed || !state.entries.length);
}

function renderRows() {
  $("audit-table").querySelector("tbody").replaceChildren(...state.entries.map(row));
}

/** First page (fresh = the filters changed) or the next older one. */
async function load({ older = false } = {}) {
  const generation = older ? state.generation : ++state.generation;
  const params = filters();
  if (older) params.set("before", state.next);
  else {
    state.entries = [];
    state.next = null;
    renderRows();
  }
  state.loading = true;
  state.failed = null;
  renderStatus();
  const result = await request("GET", `/api/v1/audit?${params}`);
  if (generation !== state.generation) return; // the filters changed meanwhile
  state.loading = false;
  if (!result.ok) {
    state.failed = result.error?.message || (result.status ? `HTTP ${result.status}` : "");
    renderStatus();
    return;
  }
  const first = state.entries.length;
  state.entries = state.entries.concat(result.data.entries);
  state.next = result.data.next;
  renderRows();
  renderStatus();
  if (older) {
    // Keep the reader's place: on the first new row, or on "No older entries".
    const added = $("audit-table").querySelectorAll("tbody tr")[first];
    if (state.next) $("audit-older").focus();
    else if (added) $("audit-end").focus();
  }
}

function option(value, text) {
  return el("option", { text, value });
}

function renderFilters() {
  const keep = (id, options) => {
    const select = $(id);
    const value = select.value;
    select.replaceChildren(...options);
    select.value = value;
  };
  keep("audit-action", [
    option("", t("audit.filters.action.any")),
    ...FAMILIES.map((family) => option(family, label(`audit.family.${family}`, family))),
  ]);
  keep("audit-actor", [
    option("", t("audit.filters.actor.any")),
    ...state.staff.map((person) => option(person.id, `${person.display_name} (${person.email})`)),
  ]);
  keep("audit-target", [
    option("", t("audit.filters.target.any")),
    ...TARGET_TYPES.map((type) => option(type, targetLabel(type))),
  ]);
}

function render() {
  document.title = t("audit.page_title");
  renderFilters();
  renderRows();
  renderStatus();
}

async function main() {
  await initI18n({ extraAreas: ["/admin", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), location.pathname);
  const me = await request("GET", "/api/v1/auth/me");
  nav.show(me.ok ? me.data.role : null);
  $("checking").hidden = true;
  if (!me.ok || me.data.role !== "admin") {
    $("audit-denied").hidden = false;
    $("audit-denied-title").textContent = t(me.ok ? "audit.forbidden" : "audit.signed_out");
    $("audit-denied-title").focus();
    return;
  }
  const staff = await request("GET", "/api/v1/staff");
  if (staff.ok) state.staff = staff.data;
  $("audit-panel").hidden = false;
  onLanguageChange(render);
  render();
  const form = $("audit-filters");
  form.addEventListener("change", () => load());
  form.addEventListener("submit", (event) => event.preventDefault());
  // After the reset the fields are empty: read them then.
  form.addEventListener("reset", () => setTimeout(() => load()));
  $("audit-older").addEventListener("click", () => load({ older: true }));
  $("audit-retry").addEventListener("click", () => load({ older: Boolean(state.entries.length && state.next) }));
  await load();
}

main();
