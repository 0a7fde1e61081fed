// @ts-check
// The supervisor board (/supervisor/): sign-in like the staff console, then — for
// supervisors and admins — the live board over Socket.IO: board.snapshot once, then the
// server's change events (presence.changed, consultation.updated) applied as they come;
// fresh figures (board.figures) when consultations are answered or end, and every minute.
// Durations and alerts tick every second from the same data, with no server round trip.
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { LiveSocket } from "/shared/socket.js";
import { api, errorText, setCsrfToken } from "/shared/staff-api.js";
import { Charts, chartRows } from "/supervisor/charts.js";
import { BoardState, duration, startOfWait } from "/supervisor/state.js";
import { MonitorPanel } from "/supervisor/monitor.js";
import { $, el } from "/shared/dom.js";

const SUPERVISING = new Set(["supervisor", "admin"]);
const FIGURES_DEBOUNCE_MS = 1_000;
const FIGURES_EVERY_MS = 60_000;
const RECONNECT_MS = 5_000;
const TEAM_KEY = "livedesk.board.team";

const state = new BoardState();
let me = null;
let socket = null;
let charts = null;
let view = "checking";
let signinError = null;
let boardError = null;
let connState = "connecting";
let figuresTimer = null;
let figuresLoading = false;
let lastChangeAt = null; // the server's time of the last change that moves today's figures
let announced = new Set();
let monitorPanel = null;
let nav = null; // links to the other staff pages this role may open

// ---------------------------------------------------------------- sign-in

function show(next) {
  view = next;
  $("checking").hidden = next !== "checking";
  $("signin-panel").hidden = next !== "signin";
  $("forbidden-panel").hidden = next !== "forbidden";
  $("board").hidden = next !== "board";
  $("who").hidden = !me;
  nav?.show(me?.role);
  // The board's tools (team, clock, connection) only with the board.
  for (const id of ["team-filter-wrap", "board-clock", "conn-state"]) $(id).hidden = next !== "board";
  render();
}

function showMessage(el, message) {
  el.hidden = !message;
  if (!message) el.textContent = "";
  else el.textContent = message.code ? errorText(message, ["staff.error.", "supervisor.error."]) : t(message.key);
}

async function signIn(event) {
  event.preventDefault();
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  if (!email || !password) {
    signinError = { code: "missing_fields" };
    render();
    $(email ? "signin-password" : "signin-email").focus();
    return;
  }
  const button = $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = t("staff.signing_in");
  const result = await api("POST", "/api/v1/auth/login", { email, password });
  button.disabled = false;
  button.textContent = t("staff.signin_button");
  if (!result.ok) {
    signinError = result.error;
    render();
    return;
  }
  signinError = null;
  $("signin-password").value = "";
  signedIn(result.data, { focus: true });
}

async function signOut() {
  const result = await api("POST", "/api/v1/auth/logout");
  if (!result.ok && result.status !== 401) {
    showMessage($("signout-error"), result.error);
    return;
  }
  // A fresh page drops the socket and every timer.
  location.reload();
}

function signedIn(who, { focus }) {
  me = who;
  setCsrfToken(me.csrf_token);
  if (!SUPERVISING.has(me.role)) {
    show("forbidden");
    if (focus) $("forbidden-title").focus();
    return;
  }
  show("board");
  startBoard();
  if (focus) $("board-title").focus();
}

// ---------------------------------------------------------------- live data

function startBoard() {
  if (socket) {
    // Signed in again after the session ended: the same socket, connected anew.
    socket.connect();
    return;
  }
  charts = new Charts($("volume-chart"), $("wait-chart"));
  socket = LiveSocket.staff();
  // Listen / whisper / barge-in on live calls (docs/monitoring.md), beside the calls table.
  monitorPanel = new MonitorPanel({ socket, mount: $("calls-table").closest("section").parentElement, advisorName, kindLabel });
  socket.on("presence.changed", (view) => {
    if (!state.applyPresence(view)) loadSnapshot();
    else render();
  });
  socket.on("consultation.updated", (c) => {
    const changedAt = state.applyConsultation(c);
    if (changedAt) {
      if (!lastChangeAt || Date.parse(changedAt) > Date.parse(lastChangeAt)) lastChangeAt = changedAt;
      scheduleFigures();
    }
    render();
  });
  socket.onState((next) => {
    connState = next;
    if (next === "connected") loadSnapshot();
    if (next === "disconnected") afterDisconnect();
    renderConnection();
  });
  setInterval(tick, 1_000);
  setInterval(() => loadFigures(), FIGURES_EVERY_MS);
}

/** The server closed the socket (it does when the login session ends) or refused it: back to
 * the sign-in form if the session is gone, else try again in a moment — a wall screen has
 * nobody to press reload. */
async function afterDisconnect() {
  const answer = await api("GET", "/api/v1/auth/me");
  if (!answer.ok && answer.status === 401) {
    me = null;
    signinError = answer.error.code === "session_expired" ? answer.error : { code: "session_expired" };
    show("signin");
    return;
  }
  setTimeout(() => {
    if (view === "board") socket.connect();
  }, RECONNECT_MS);
}

async function loadSnapshot() {
  try {
    // Reading the board twice does no harm, so a lost answer is asked again.
    const snapshot = await socket.call("board.snapshot", {}, { idempotent: true });
    state.applySnapshot(snapshot);
    boardError = null;
    renderTeams();
    if (state.teamId) await loadFigures();
  } catch (error) {
    boardError = error;
  }
  render();
}

/** Fresh figures a moment after a change: one read for a burst of changes (answer, presence,
 * routing), and never postponed by a busy floor. The server shares a computation between the
 * pages asking at once, unless it may predate the last change this page heard of. */
function scheduleFigures() {
  if (figuresTimer) return;
  figuresTimer = setTimeout(async () => {
    figuresTimer = null;
    await loadFigures();
  }, FIGURES_DEBOUNCE_MS);
}

async function loadFigures() {
  if (!socket?.connected) return;
  figuresLoading = true;
  renderKpis();
  const asked = lastChangeAt;
  try {
    const payload = {};
    if (state.teamId) payload.team_id = state.teamId;
    if (asked) payload.fresh_after = asked;
    state.figures = await socket.call("board.figures", payload, { idempotent: true });
    boardError = null;
  } catch (error) {
    boardError = error;
  } finally {
    figuresLoading = false;
  }
  // Changes that came in while asking: once more.
  if (lastChangeAt !== asked) scheduleFigures();
  render();
}

/** The advisor's name as the page's language has it (English pages: the English name). */
function nameOf(advisor) {
  return language() === "ja" ? advisor.display_name : advisor.display_name_en || advisor.display_name;
}

function advisorName(id) {
  if (!id) return "—";
  const advisor = state.advisors.get(id);
  return advisor ? nameOf(advisor) : t("supervisor.unknown_advisor");
}

function kindLabel(kind) {
  return t(`supervisor.kind.${kind}`);
}

function clockText(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    timeZone: state.timezone,
  }).format(new Date(iso));
}

function render() {
  document.title = t("supervisor.page_title");
  showMessage($("signin-error"), signinError);
  const invalid = ["login_failed", "missing_fields"].includes(signinError?.code);
  for (const id of ["signin-email", "signin-password"]) {
    if (invalid) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  if (me) {
    $("who-name").textContent = t("supervisor.signed_in_as", { name: me.display_name, role: t(`role.${me.role}`) });
    $("forbidden-text").textContent = t("supervisor.forbidden_text", {
      name: me.display_name,
      role: t(`role.${me.role}`),
    });
  }
  if (view !== "board") return;
  showMessage($("board-error"), boardError);
  renderConnection();
  renderKpis();
  renderAdvisors();
  renderQueue();
  renderCalls();
  renderAlerts();
  renderCharts();
}

function renderConnection() {
  const node = $("conn-state");
  node.dataset.state = connState;
  node.textContent = t(`supervisor.conn.${connState}`);
}

function renderTeams() {
  const select = $("team-filter");
  const keep = state.teamId;
  for (const option of [...select.options].slice(1)) option.remove();
  for (const team of state.teams) select.append(el("option", { text: team.name, value: team.id }));
  select.value = keep;
}

/** @param {string} key @param {string} value @param {{note?: string, tone?: string}} [options] */
function kpi(key, value, { note, tone } = {}) {
  const box = el("div", { class: `kpi${tone ? ` kpi-${tone}` : ""}` });
  box.append(el("dt", { text: t(`supervisor.kpi.${key}`) }));
  box.append(el("dd", { class: "kpi-value", text: value }));
  if (note) box.append(el("dd", { class: "kpi-note", text: note }));
  return box;
}

function renderKpis() {
  const list = $("kpi-list");
  const f = state.figures;
  list.setAttribute("aria-busy", String(figuresLoading || !f));
  const team = state.teams.find((x) => x.id === state.teamId);
  $("kpi-scope").textContent = team
    ? t("supervisor.kpi.scope_team", { team: team.name })
    : t("supervisor.kpi.scope_all");
  if (f) {
    $("board-day").textContent = t("supervisor.day", {
      day: new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", { dateStyle: "full", timeZone: "UTC" }).format(
        new Date(`${f.day}T00:00:00Z`),
      ),
      timezone: f.timezone,
    });
  }
  if (!f) return;
  const percent = (v) => (v === null ? "—" : `${Math.round(v * 1000) / 10}%`);
  const revenue = f.revenue.length
    ? f.revenue.map((r) => formatMoney(r.amount_minor, r.currency)).join(" · ")
    : formatMoney(0, state.currency);
  const csat = f.satisfaction?.average_csat;
  const brandWide = team ? t("supervisor.kpi.brand_wide") : undefined;
  const longWait = state.thresholds.long_wait_seconds;
  list.replaceChildren(
    kpi("offered", String(f.offered)),
    kpi("answered", String(f.answered), {
      note: f.offered ? t("supervisor.kpi.answered_rate", { rate: percent(f.answered / f.offered) }) : undefined,
    }),
    kpi("abandoned", String(f.abandoned), {
      note: t("supervisor.kpi.missed_note", { missed: f.missed }),
      tone: f.abandoned + f.missed ? "warn" : undefined,
    }),
    kpi("waiting", String(state.queue().length)),
    kpi("average_wait", duration(f.average_wait_seconds)),
    kpi("longest_wait", duration(f.longest_wait_seconds), {
      tone: f.longest_wait_seconds !== null && f.longest_wait_seconds >= longWait ? "warn" : undefined,
    }),
    kpi("average_handle", duration(f.average_handle_seconds)),
    kpi("conversion", percent(f.conversion), {
      note: brandWide ?? t("supervisor.kpi.paid_note", { paid: f.paid_consultations }),
    }),
    kpi("revenue", revenue, { note: brandWide }),
    kpi("satisfaction", csat === null || csat === undefined ? "—" : `${csat.toFixed(1)} / 5`, {
      note: brandWide ?? t("supervisor.kpi.responses", { count: f.satisfaction?.responses ?? 0 }),
    }),
  );
}

function stateBadge(status) {
  const text = t(`supervisor.state.${status}`);
  return el("span", { class: "state-badge", text, "data-status": status });
}

function renderAdvisors() {
  const advisors = state.visibleAdvisors(nameOf);
  const online = advisors.filter((a) => a.status !== "offline").length;
  $("advisors-count").textContent = t("supervisor.advisors.count", { online, total: advisors.length });
  const counts = {};
  for (const a of advisors) counts[a.status] = (counts[a.status] ?? 0) + 1;
  $("advisors-summary").textContent = ["available", "busy", "away", "offline"]
    .map((s) => `${t(`supervisor.state.${s}`)} ${counts[s] ?? 0}`)
    .join(" · ");
  $("advisor-rows").replaceChildren(
    ...advisors.map((a) => {
      const current = state.currentOf(a.staff_id);
      let currentText = "—";
      const length = current?.since ? duration(state.secondsSince(current.since)) : "";
      if (current?.kind === "offer") currentText = t("supervisor.current.offer");
      else if (current?.kind === "wrap_up") currentText = t("supervisor.current.wrap_up", { length });
      else if (current?.kind === "chat") currentText = t("supervisor.current.chats", { count: current.count, length });
      else if (current) currentText = t("supervisor.current.call", { kind: kindLabel(current.kind), length });
      return el("tr", {  "data-staff-id": a.staff_id, "data-status": a.status  }, [
        el("th", { text: nameOf(a), scope: "row" }),
        el("td", {}, [stateBadge(a.status)]),
        el("td", { class: "num", text: a.since ? duration(state.secondsSince(a.since)) : "—" }),
        el("td", { text: currentText }),
      ]);
    }),
  );
}

function renderQueue() {
  const queue = state.queue();
  $("queue-count").textContent = String(queue.length);
  $("queue-empty").hidden = queue.length > 0;
  $("queue-table").hidden = queue.length === 0;
  const longWait = state.thresholds.long_wait_seconds;
  $("queue-rows").replaceChildren(
    ...queue.map((c) => {
      const waited = Math.floor((state.now() - startOfWait(c)) / 1000);
      const status = c.status === "offered" && c.offered_to_id
        ? t("supervisor.queue.offered_to", { name: advisorName(c.offered_to_id) })
        : t(`supervisor.queue.${c.status === "offered" ? "offered" : "waiting"}`);
      const nominated = c.nominated_advisor_id
        ? t(c.wait_for_nominated ? "supervisor.queue.nominated_only" : "supervisor.queue.nominated", {
            name: advisorName(c.nominated_advisor_id),
          })
        : t("supervisor.queue.anyone");
      const attrs = { "data-consultation-id": c.id, ...(waited >= longWait ? { "data-alert": "true" } : {}) };
      return el("tr", { ...attrs }, [
        el("td", { text: kindLabel(c.kind) }),
        el("td", { class: "num", text: duration(waited) }),
        el("td", { text: nominated }),
        el("td", { text: status }),
      ]);
    }),
  );
}

function renderCalls() {
  const calls = state.calls();
  monitorPanel?.setCalls(calls);
  $("calls-count").textContent = String(calls.length);
  $("calls-empty").hidden = calls.length > 0;
  $("calls-table").hidden = calls.length === 0;
  const longCall = state.thresholds.long_call_seconds;
  $("call-rows").replaceChildren(
    ...calls.map((c) => {
      const length = state.secondsSince(c.accepted_at);
      const attrs = { "data-consultation-id": c.id, ...(length >= longCall ? { "data-alert": "true" } : {}) };
      return el("tr", { ...attrs }, [
        el("th", { text: advisorName(c.advisor_id), scope: "row" }),
        el("td", { text: kindLabel(c.kind) }),
        el("td", { class: "num", text: duration(length) }),
      ]);
    }),
  );
}

function alertText(alert) {
  if (alert.kind === "long_wait") {
    const kind = kindLabel(alert.consultation.kind);
    return t("supervisor.alerts.long_wait", { kind, length: duration(alert.seconds) });
  }
  return t("supervisor.alerts.long_call", { name: advisorName(alert.advisorId), length: duration(alert.seconds) });
}

function renderAlerts() {
  const alerts = state.alerts();
  $("alerts-none").hidden = alerts.length > 0;
  $("alert-list").replaceChildren(
    ...alerts.map((a) =>
      el("li", { class: "alert-item", text: alertText(a), "data-kind": a.kind, "data-consultation-id": a.id }),
    ),
  );
  // Say each new alert once (a screen reader would otherwise hear the list every second).
  const fresh = alerts.filter((a) => !announced.has(`${a.kind}:${a.id}`));
  if (fresh.length) $("alert-announcer").textContent = fresh.map(alertText).join(" ");
  announced = new Set(alerts.map((a) => `${a.kind}:${a.id}`));
}

function renderCharts() {
  charts?.render(state.figures);
  const rows = chartRows(state.figures);
  // The first cell (the hour) heads its row.
  const cell = (v, i) => el(i ? "td" : "th", { text: String(v), ...i ? {} : { scope: "row" } });
  const tableRows = (list) => list.map((cells) => el("tr", {}, cells.map(cell)));
  $("volume-rows").replaceChildren(...tableRows(rows.volume));
  $("wait-rows").replaceChildren(...tableRows(rows.wait));
}

/** Every second: durations, alerts and the clock move on. */
function tick() {
  $("board-clock").textContent = clockText(new Date(state.now()).toISOString());
  if (view !== "board") return;
  renderAdvisors();
  renderQueue();
  renderCalls();
  renderAlerts();
}

// ---------------------------------------------------------------- start

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage can be disabled; the choice lasts until the page reloads
  }
}

function recall(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

async function start() {
  await initI18n({ extraAreas: ["/staff", "/supervisor", "/monitoring", NAV_AREA] });
  nav = new StaffNav($("staff-nav"), "/supervisor/", { wide: true });
  onLanguageChange(render);
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("team-filter").addEventListener("change", (event) => {
    state.teamId = event.target.value;
    remember(TEAM_KEY, state.teamId);
    render();
    loadFigures();
  });
  // A wall screen keeps its team across reloads.
  state.teamId = recall(TEAM_KEY) ?? "";
  const result = await api("GET", "/api/v1/auth/me");
  if (result.ok) {
    signedIn(result.data, { focus: false });
    return;
  }
  if (result.status !== 401 || result.error.code === "session_expired") signinError = result.error;
  show("signin");
  $("signin-email").focus();
}

start();
