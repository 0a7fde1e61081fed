// @ts-check
// Customer history for staff: search shoppers by name, e-mail, phone number or shop id, then
// their profile, recommendations, notes and the whole timeline (customer panel of the
// console). Supervisors and admins can export a shopper's data; admins can erase or anonymise.
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";
import { api, errorText, setCsrfToken } from "/shared/staff-api.js";
import { CustomerPanel, setViewerRole } from "/shared/customer/panel.js";
import { $, el } from "/shared/dom.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";

const state = { me: null, hits: [], query: "", selected: null, panel: null, searching: false, error: null };

function renderWho() {
  if (!state.me) return;
  $("who").textContent = t("history.signed_in_as", { name: state.me.display_name, role: t(`role.${state.me.role}`) });
}

function renderResults() {
  const list = $("search-results");
  list.replaceChildren(
    ...state.hits.map((hit) => {
      const details = [hit.email, hit.phone].filter(Boolean).join(" · ");
      const button = el("button", { class: "button button-secondary",  type: "button"  }, [
        el("strong", { text: hit.display_name || t("history.unnamed") }),
        details ? el("span", { class: "muted", text: ` — ${details}` }) : null,
      ]);
      if (state.selected === hit.id) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => select(hit));
      return el("li", {}, [button]);
    }),
  );
  const status = $("search-status");
  if (state.searching) status.textContent = t("history.search.searching");
  else if (state.error) status.textContent = errorText(state.error);
  else if (state.query) status.textContent = t("history.search.count", { count: state.hits.length, query: state.query });
  else status.textContent = "";
}

async function search(query) {
  state.query = query;
  state.searching = true;
  state.error = null;
  renderResults();
  const result = await api("GET", `/api/v1/customers/search?${new URLSearchParams({ q: query })}`);
  state.searching = false;
  if (result.ok) state.hits = result.data.hits;
  else {
    state.hits = [];
    state.error = result.error;
  }
  renderResults();
}

let pristine = null; // the customer section as the page came, for a fresh panel per shopper

async function select(hit) {
  state.selected = hit.id;
  renderResults();
  // A fresh panel per shopper: the old one's buttons and observers go with its elements.
  const fresh = pristine.cloneNode(true);
  fresh.hidden = false;
  $("customer").replaceWith(fresh);
  $("customer-title").textContent = hit.display_name || t("history.unnamed");
  const exportLink = $("export-link");
  exportLink.href = `/api/v1/shoppers/${encodeURIComponent(hit.id)}/export`;
  exportLink.setAttribute("download", `shopper-${hit.id}.json`);
  $("privacy").hidden = !["supervisor", "admin"].includes(state.me.role);
  $("erase-open").hidden = state.me.role !== "admin";
  wirePrivacy();
  state.panel = new CustomerPanel(fresh, hit.id, {});
  $("customer-title").focus();
  await state.panel.start();
}

async function openShopper(shopperId) {
  const result = await api("GET", `/api/v1/shoppers/${encodeURIComponent(shopperId)}`);
  if (!result.ok) {
    state.error = result.error;
    renderResults();
    return;
  }
  const profile = result.data;
  const hit = { id: profile.id, display_name: profile.display_name, email: profile.email, phone: profile.phone };
  state.hits = [hit];
  await select(hit);
}

function wirePrivacy() {
  $("erase-open").addEventListener("click", () => {
    $("erase-text").textContent = t("history.privacy.erase_text", { name: $("customer-title").textContent });
    $("erase-status").textContent = "";
    $("erase-dialog").showModal();
  });
}

async function erase(event) {
  event.preventDefault();
  const mode = new FormData($("erase-form")).get("mode");
  const button = $("erase-confirm");
  button.disabled = true;
  $("erase-status").textContent = t("history.privacy.working");
  const result = await api("POST", `/api/v1/shoppers/${encodeURIComponent(state.selected)}/erase`, {
    mode,
    confirm_shopper_id: state.selected,
  });
  button.disabled = false;
  if (!result.ok) {
    $("erase-status").textContent = errorText(result.error);
    return;
  }
  $("erase-dialog").close();
  $("customer").hidden = true;
  state.hits = state.hits.filter((hit) => hit.id !== state.selected);
  state.selected = null;
  renderResults();
  $("search-status").textContent = t(mode === "erase" ? "history.privacy.erased" : "history.privacy.anonymised");
  $("search-input").focus();
}

function render() {
  document.title = t("history.page_title");
  renderWho();
  renderResults();
  state.panel?.render();
}

async function main() {
  // The customer panel's timeline speaks of surveys (/surveys: "Satisfaction 4/5").
  await initI18n({ extraAreas: ["/staff", "/history", "/recording", "/payments", "/surveys", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), "/history/");
  onLanguageChange(render);
  const me = await api("GET", "/api/v1/auth/me");
  $("checking").hidden = true;
  if (!me.ok) {
    $("signed-out").hidden = false;
    return;
  }
  state.me = me.data;
  setViewerRole(me.data.role);
  nav.show(me.data.role);
  setCsrfToken(me.data.csrf_token);
  $("who").hidden = false;
  $("history-app").hidden = false;
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("search-input").value.trim();
    if (query.length < 2) {
      $("search-status").textContent = t("history.search.too_short");
      return;
    }
    search(query);
  });
  $("erase-form").addEventListener("submit", erase);
  $("erase-cancel").addEventListener("click", () => $("erase-dialog").close());
  pristine = $("customer").cloneNode(true);
  render();
  const params = new URLSearchParams(location.search);
  const preset = params.get("q");
  if (preset) {
    $("search-input").value = preset;
    await search(preset);
  }
  // Other staff pages link to one customer (the refunds page: who paid) with ?shopper=<id>.
  const shopperId = params.get("shopper");
  if (shopperId) await openShopper(shopperId);
}

main();
