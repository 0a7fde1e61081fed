// @ts-check
// /widget/ — the shopper's start: pick an advisor (or anyone) and how to talk, wait in the
// queue with a live place and estimate, and move to /call/ when an advisor accepts.
// Opened inside the shop's panel (see /widget.js) or directly in a tab.
import { initI18n, language, onLanguageChange, setLanguage, t } from "/shared/i18n.js";
import { LiveSocket } from "/shared/socket.js";
import { advisorName, connectHost, errorText, fetchAdvisors, postToHost, readPlace, readVisitor, savePlace, startVisit, takeEmbedParams } from "/shared/shopper.js";
import { $, el } from "/shared/dom.js";
import { Intake } from "/widget/intake.js";

const ADVISOR_POLL_MS = 15_000;
const VIEWS = ["loading", "start", "survey", "ask", "queue", "ended", "booking", "failed"];
const WAITING = ["queued", "offered"];
const TOKEN_REFUSED = ["token_expired", "token_invalid", "token_missing"];

const state = {
  view: "loading",
  embed: null,
  socket: null,
  advisors: null, // [] once loaded
  advisorsFailed: false,
  selected: "", // advisor id, "" = anyone
  consultation: null, // the open consultation, as the server last said
  place: null, // the last queue.position for it
  pendingKind: null, // what "talk now" asked for, kept for the "wait / anyone" question
  ask: null, // {advisorId, status} when asking about an unavailable nominee
  busy: false,
  notice: null, // {key} shown on the start view
  error: null, // {view, error} an error shown on a view
  ended: null, // "missed"
  socketState: "connecting",
};

// ------------------------------------------------------------------ views

function showView(name, { focus = true } = {}) {
  const changed = state.view !== name;
  state.view = name;
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  render();
  if (changed && focus) {
    // Screen reader and keyboard users land on the new view's heading.
    $(`view-${name}`).querySelector("h1")?.focus();
  }
}

function setError(view, error) {
  state.error = error ? { view, error } : null;
  render();
}

function showError(id, view) {
  const box = $(id);
  const error = state.error?.view === view ? state.error.error : null;
  box.hidden = !error;
  box.textContent = error ? errorText(error, "widget") : "";
}

function statusText(status) {
  return t(`widget.status.${status}`);
}

function kindText(kind) {
  return t(`widget.kind.${kind}`);
}

function waitText(seconds) {
  if (seconds < 60) return t("widget.queue_wait_short");
  return t("widget.queue_wait", { minutes: Math.ceil(seconds / 60) });
}

function findAdvisor(id) {
  return state.advisors?.find((a) => a.id === id) ?? null;
}

// ------------------------------------------------------------------ advisor picker

function advisorOption(advisor) {
  const id = `advisor-${advisor.id}`;
  const bio = language() === "en" && advisor.bio_en ? advisor.bio_en : advisor.bio;
  const skills = advisor.skills.map((s) => {
    const key = `skill.${s}`;
    const text = t(key);
    return text === key ? s : text;
  });
  const langs = advisor.languages.map((l) => {
    const key = `lang.${l}`;
    const text = t(key);
    return text === key ? l : text;
  });
  return el(
    "li",
    { class: "advisor-item", "data-advisor-id": advisor.id },
    el(
      "label",
      { class: "advisor-option", for: id },
      el("input", {
        type: "radio",
        name: "advisor",
        id,
        value: advisor.id,
        checked: state.selected === advisor.id,
      }),
      el("img", { class: "advisor-photo", src: advisor.photo_url || "/favicon.svg", alt: "", width: "56", height: "56" }),
      el(
        "span",
        { class: "advisor-text" },
        el("span", { class: "advisor-name", text: advisorName(advisor) }),
        el(
          "span",
          { class: `status-badge status-${advisor.status}`, "data-status": advisor.status },
          el("span", { class: "status-dot", "aria-hidden": "true" }),
          el("span", { class: "status-text", text: statusText(advisor.status) }),
        ),
        el("span", { class: "advisor-meta", text: skills.join(" · ") }),
        el("span", { class: "advisor-meta", text: `${t("widget.languages")}: ${langs.join(" / ")}` }),
        bio ? el("span", { class: "advisor-bio", text: bio }) : null,
      ),
    ),
  );
}

function anyoneText() {
  const available = (state.advisors ?? []).filter((a) => a.status === "available").length;
  return available ? t("widget.anyone_available", { count: available }) : t("widget.anyone_none");
}

function anyoneOption() {
  return el(
    "li",
    { class: "advisor-item advisor-item-anyone" },
    el(
      "label",
      { class: "advisor-option", for: "advisor-anyone" },
      el("input", { type: "radio", name: "advisor", id: "advisor-anyone", value: "", checked: state.selected === "" }),
      el("span", { class: "advisor-photo advisor-photo-anyone", "aria-hidden": "true" }),
      el(
        "span",
        { class: "advisor-text" },
        el("span", { class: "advisor-name", text: t("widget.anyone") }),
        el("span", { class: "advisor-meta", text: anyoneText() }),
      ),
    ),
  );
}

function renderAdvisors() {
  const list = $("advisor-list");
  const status = $("advisors-status");
  if (state.advisors === null) {
    status.textContent = state.advisorsFailed ? t("widget.advisors_failed") : t("widget.advisors_loading");
    list.replaceChildren();
    return;
  }
  status.textContent = state.advisorsFailed ? t("widget.advisors_stale") : "";
  const ids = ["", ...state.advisors.map((a) => a.id)].join(" ");
  const language_ = language();
  if (list.dataset.ids === ids && list.dataset.lang === language_) {
    // The same people: only their live status changed (the 15 s poll). Touch nothing else, so
    // focus, scroll position and images stay put.
    for (const advisor of state.advisors) {
      const badge = list.querySelector(`[data-advisor-id="${advisor.id}"] .status-badge`);
      if (!badge || badge.dataset.status === advisor.status) continue;
      badge.className = `status-badge status-${advisor.status}`;
      badge.dataset.status = advisor.status;
      badge.querySelector(".status-text").textContent = statusText(advisor.status);
    }
    const anyone = list.querySelector(".advisor-item-anyone .advisor-meta");
    if (anyone) anyone.textContent = anyoneText();
    return;
  }
  // Rebuilding keeps the choice; keep keyboard focus on the same radio button too.
  const active = /** @type {HTMLInputElement | null} */ (document.activeElement);
  const focusedId = active?.name === "advisor" ? active.id : null;
  list.replaceChildren(anyoneOption(), ...state.advisors.map(advisorOption));
  list.dataset.ids = ids;
  list.dataset.lang = language_;
  if (focusedId) $(focusedId)?.focus();
}

async function loadAdvisors() {
  try {
    // Who can talk now first; otherwise the server's order (by name).
    const rank = { available: 0, busy: 1, away: 2, offline: 3 };
    const list = await fetchAdvisors();
    state.advisors = list
      .map((a, i) => [a, i])
      .sort(([a, i], [b, j]) => (rank[a.status] ?? 4) - (rank[b.status] ?? 4) || i - j)
      .map(([a]) => a);
    state.advisorsFailed = false;
    if (state.selected && !findAdvisor(state.selected)) state.selected = "";
  } catch {
    state.advisorsFailed = true;
  }
  renderAdvisors();
}

function pollAdvisors() {
  // Presence has no shopper-facing events: a gentle poll, paused while the tab is hidden.
  setInterval(() => {
    if (!document.hidden && (state.view === "start" || state.view === "queue")) loadAdvisors();
  }, ADVISOR_POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.view === "start") loadAdvisors();
  });
}

// ------------------------------------------------------------------ render

function render() {
  document.title = t("widget.page_title");
  renderBanner();
  if (state.view === "start") {
    renderAdvisors();
    const notice = $("start-notice");
    notice.hidden = !state.notice;
    notice.textContent = state.notice ? t(state.notice.key) : "";
    showError("start-error", "start");
    for (const button of document.querySelectorAll(/** @type {"button"} */ (".talk-button"))) button.disabled = state.busy;
  }
  if (state.view === "ask") renderAsk();
  if (state.view === "queue") renderQueue();
  if (state.view === "ended") renderEnded();
  if (state.view === "failed") {
    $("failed-text").textContent = state.error ? errorText(state.error.error, "widget") : "";
  }
}

function renderBanner() {
  const banner = $("connection-banner");
  const reconnecting = state.socket && state.socketState === "reconnecting";
  const down = state.socket && state.socketState === "disconnected";
  banner.hidden = !(reconnecting || down);
  banner.textContent = reconnecting ? t("widget.reconnecting") : down ? t("widget.disconnected") : "";
}

function renderAsk() {
  const advisor = findAdvisor(state.ask?.advisorId);
  const name = advisor ? advisorName(advisor) : t("widget.your_advisor");
  $("ask-title").textContent = t("widget.ask_title", { name });
  $("ask-text").textContent = t("widget.ask_text", { name, status: statusText(state.ask?.status ?? "offline") });
  $("ask-wait").textContent = t("widget.ask_wait", { name });
  showError("ask-error", "ask");
  for (const id of ["ask-wait", "ask-anyone", "ask-back"]) $(id).disabled = state.busy;
}

function renderQueue() {
  const c = state.consultation;
  if (!c) return;
  const place = state.place?.consultation_id === c.id ? state.place : null;
  const offered = c.status === "offered";
  $("queue-kind").textContent = t("widget.queue_kind", { kind: kindText(c.kind) });
  $("queue-position").textContent = place ? String(place.position) : "…";
  $("queue-position-label").textContent = place
    ? t("widget.queue_position", { position: place.position })
    : t("widget.queue_position_unknown");
  $("queue-wait").textContent = place && !offered ? waitText(place.estimated_wait_seconds) : "";
  $("queue-wait").hidden = !place || offered;
  $("queue-connecting").hidden = !offered;
  $("queue-online").textContent = place
    ? place.advisors_online > 0
      ? t("widget.queue_online", { count: place.advisors_online })
      : t("widget.queue_none_online")
    : "";
  const nominee = c.nominated_advisor_id ? findAdvisor(c.nominated_advisor_id) : null;
  const waitingForNominee = c.wait_for_nominated && c.status === "queued";
  $("queue-nominee").hidden = !waitingForNominee;
  if (waitingForNominee) {
    $("queue-nominee-text").textContent = t("widget.queue_waiting_for", {
      name: nominee ? advisorName(nominee) : t("widget.your_advisor"),
      status: statusText(nominee?.status ?? "offline"),
    });
  }
  $("queue-check").href = `/call/?c=${encodeURIComponent(c.id)}`;
  showError("queue-error", "queue");
  $("queue-cancel").disabled = state.busy;
  $("queue-anyone").disabled = state.busy;
}

function renderEnded() {
  const key = state.ended ?? "missed";
  $("ended-title").textContent = t(`widget.ended.${key}_title`);
  $("ended-text").textContent = t(`widget.ended.${key}_text`);
}

// ------------------------------------------------------------------ the consultation

function hostState() {
  const c = state.consultation;
  if (!c) return "idle";
  if (WAITING.includes(c.status)) return "queued";
  if (c.status === "active") return "in_consultation";
  return "idle";
}

function goToCall(c) {
  // Same tab (or frame): the visitor token stays in this tab's sessionStorage.
  location.assign(`/call/?c=${encodeURIComponent(c.id)}`);
}

function follow(c, { fromJoin = false } = {}) {
  if (!c) return;
  const mine = state.consultation;
  // Events about an older consultation (one just left) must not pull the page back.
  if (mine && c.id !== mine.id && !fromJoin && !["queued", "offered", "active"].includes(c.status)) return;
  state.consultation = c;
  if (state.place?.consultation_id !== c.id) state.place = readPlace(c.id);
  postToHost({ type: "livedesk:state", state: hostState() });
  switch (c.status) {
    case "requested":
    case "queued":
    case "offered":
      showView("queue", { focus: state.view !== "queue" });
      break;
    case "active":
      goToCall(c);
      break;
    case "wrap_up":
      // The advisor is still writing notes on the last one; joining again returns it until
      // they close it, so say so on the picker.
      state.consultation = null;
      state.notice = { key: "widget.wrap_up_notice" };
      if (state.view !== "start") showView("start", { focus: state.view !== "loading" });
      else render();
      break;
    case "missed":
      state.consultation = null;
      state.ended = "missed";
      showView("ended");
      break;
    case "abandoned":
    case "closed":
    default:
      state.consultation = null;
      if (state.view === "queue" || state.view === "loading") showView("start");
      else render();
  }
}

async function resync() {
  // After a (re)connect: where do we stand? The newest open consultation wins.
  try {
    const open = await state.socket.call("consultation.current", {});
    const current = [...(open ?? [])].sort((a, b) => (a.requested_at < b.requested_at ? 1 : -1))[0];
    if (current) follow(current, { fromJoin: true });
    else if (state.consultation && WAITING.includes(state.consultation.status)) {
      // It ended while we were away (missed, or left from another tab).
      state.consultation = null;
      showView("start");
    } else if (state.view === "loading") {
      showView(location.hash === "#booking" ? "booking" : "start", { focus: false });
    }
  } catch (error) {
    if (state.view === "loading") showView("start", { focus: false });
    console.warn("livedesk: consultation.current failed", error);
  }
}

async function join(kind, ifUnavailable = "ask") {
  if (state.busy) return;
  // The pre-call survey first, if one is assigned; answering it joins.
  if (await state.intake.intercept(() => join(kind, ifUnavailable))) return;
  state.busy = true;
  state.pendingKind = kind;
  state.notice = null;
  setError(state.view, null);
  const payload = { kind, if_nominated_unavailable: ifUnavailable, language: language() };
  if (state.selected) payload.nominated_advisor_id = state.selected;
  if (state.intake.pending) payload.survey_response_id = state.intake.pending;
  try {
    const c = await state.socket.call("queue.join", payload);
    state.intake.used();
    state.busy = false;
    state.ask = null;
    follow(c, { fromJoin: true });
  } catch (error) {
    state.busy = false;
    // Answers that can no longer be used: the next try asks again.
    if (["survey_response_not_found", "survey_response_used"].includes(error?.code)) state.intake.used();
    if (error?.code === "nominated_unavailable") {
      state.ask = { advisorId: error.details?.advisor_id ?? state.selected, status: error.details?.status ?? "offline" };
      showView("ask");
      return;
    }
    if (error?.code === "unknown_advisor") {
      state.selected = "";
      loadAdvisors();
    }
    setError(state.view === "ask" ? "ask" : "start", error);
  }
}

async function leaveQueue() {
  const c = state.consultation;
  if (!c || state.busy) return;
  state.busy = true;
  render();
  try {
    const left = await state.socket.call("queue.leave", { consultation_id: c.id });
    state.busy = false;
    state.notice = { key: "widget.left_queue" };
    follow(left);
  } catch (error) {
    state.busy = false;
    if (error?.code === "not_waiting") {
      await resync();
      return;
    }
    setError("queue", error);
  }
}

async function talkToAnyone() {
  const c = state.consultation;
  if (!c || state.busy) return;
  state.busy = true;
  render();
  try {
    follow(await state.socket.call("queue.update", { consultation_id: c.id, wait_for_nominated: false }));
    state.busy = false;
    render();
  } catch (error) {
    state.busy = false;
    setError("queue", error);
  }
}

function onPosition(place) {
  state.place = place;
  savePlace(place);
  if (state.view === "queue") renderQueue();
}

// ------------------------------------------------------------------ start

async function connect() {
  let visitor;
  try {
    visitor = await startVisit({
      shopCustomerId: state.embed.shopCustomerId || null,
      shopSignature: state.embed.shopSignature || null,
    });
  } catch (error) {
    // The server is unreachable or refused: a token from earlier in this tab may still do.
    visitor = readVisitor();
    if (!visitor) {
      state.error = { view: "failed", error: { code: error.code ?? "network_error", message: error.message } };
      showView("failed");
      return;
    }
  }
  const socket = LiveSocket.shopper(visitor.token);
  state.socket = socket;
  socket.on("consultation.updated", (c) => follow(c));
  socket.on("queue.position", onPosition);
  socket.onState((s, info = {}) => {
    state.socketState = s;
    renderBanner();
    if (s === "connected") resync();
    if (TOKEN_REFUSED.includes(info.error?.code)) renewVisit(socket);
  });
}

// The server refused the visitor token (it expired while the page stayed open): start the
// visit again and reconnect with the new token.
async function renewVisit(socket) {
  if (state.renewing) return;
  state.renewing = true;
  try {
    const visitor = await startVisit({
      shopCustomerId: state.embed.shopCustomerId || null,
      shopSignature: state.embed.shopSignature || null,
    });
    socket.setToken(visitor.token);
    socket.connect();
  } catch (error) {
    console.warn("livedesk: could not renew the visit", error);
  } finally {
    state.renewing = false;
  }
}

function wire() {
  for (const button of document.querySelectorAll(/** @type {"button"} */ (".talk-button"))) {
    button.addEventListener("click", () => join(button.dataset.kind));
  }
  $("advisor-list").addEventListener("change", (event) => {
    if (event.target.name === "advisor") state.selected = event.target.value;
  });
  $("ask-wait").addEventListener("click", () => join(state.pendingKind ?? "video", "wait"));
  $("ask-anyone").addEventListener("click", () => join(state.pendingKind ?? "video", "anyone"));
  $("ask-back").addEventListener("click", () => showView("start"));
  $("queue-cancel").addEventListener("click", leaveQueue);
  $("queue-anyone").addEventListener("click", talkToAnyone);
  $("ended-again").addEventListener("click", () => {
    state.ended = null;
    showView("start");
  });
  $("failed-retry").addEventListener("click", () => location.reload());
  $("booking-back").addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState(null, "", location.pathname + location.search);
    route();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
}

function route() {
  if (location.hash === "#booking") {
    showView("booking");
    return;
  }
  if (state.view === "booking") showView(state.consultation ? "queue" : "start");
}

// A signed-in shop customer books as themselves: the booking page gets the shop's signed id
// in its fragment (never sent to a server, so never in a log), and the booking is confirmed
// at once instead of waiting for a mail.
function passShopIdentity(embed) {
  if (!embed.shopCustomerId || !embed.shopSignature) return;
  const fragment = new URLSearchParams({ scid: embed.shopCustomerId, ssig: embed.shopSignature });
  $("booking-open").href = `/booking/#${fragment}`;
}

async function main() {
  await initI18n({ extraAreas: ["/widget", "/surveys"] });
  state.embed = takeEmbedParams();
  // The shop page's language, when the launcher passed it (kept, so /call/ follows it too).
  if (state.embed.lang && state.embed.lang !== language()) await setLanguage(state.embed.lang);
  connectHost(state.embed);
  passShopIdentity(state.embed);
  onLanguageChange(render);
  state.intake = new Intake({ showView, token: () => state.socket?.token, back: () => showView("start") });
  wire();
  pollAdvisors();
  await Promise.all([loadAdvisors(), connect()]);
  // The first consultation.current normally decides the view; if the socket is slow to
  // connect, show the picker meanwhile (the banner says what is going on).
  setTimeout(() => {
    if (state.view === "loading") showView(location.hash === "#booking" ? "booking" : "start", { focus: false });
  }, 3000);
}

main();
