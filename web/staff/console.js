// @ts-check
// The advisor console: presence, incoming offers and the consultations the advisor holds, on
// one staff socket (/shared/socket.js). Loaded by login.js once an advisor is signed in.
import { LiveSocket } from "/shared/socket.js";
import { onLanguageChange, t } from "/shared/i18n.js";
import { api, errorText } from "/shared/staff-api.js";
import { setViewerRole } from "/shared/customer/panel.js";
import { $, setText } from "/shared/dom.js";
import { clockTime } from "/shared/time.js";
import { OfferAlerts } from "/staff/offer-alerts.js";
import { OfferCard } from "/staff/offers.js";
import { Workspace } from "/staff/workspace.js";

const HELD = new Set(["active", "wrap_up"]);
const ALERT_MS = 10000;
// Read by login.js after the reload: the sign-in form says why it is back.
const SESSION_ENDED_FLAG = "livedesk.staff.session_ended";
// Refusals that mean "no session": the staff namespace's connect_error codes.
const NO_SESSION = new Set(["unauthenticated", "session_expired"]);

class AdvisorConsole {
  constructor(me, socket) {
    this.me = me;
    this.socket = socket;
    this.offers = new Map();
    this.accepting = new Set(); // offers accepted here whose answer has not come yet
    this.workspaces = new Map();
    this.current = null;
    this.presence = null;
    this.presenceError = null;
    this.connection = "connecting";
    this.wasConnected = false;
    this.alertTimer = null;
    this.names = new Map(); // consultation id -> shopper's name, kept after its offer card goes
    this.alerts = new OfferAlerts({ onBack: () => this.setPresence("available") });
  }

  start() {
    $("console-name").textContent = this.me.display_name;
    $("presence-select").addEventListener("change", (event) => this.setPresence(event.target.value));
    $("ws-tabs").addEventListener("keydown", (event) => this.tabKeys(event));
    $("reload").addEventListener("click", () => this.reload());
    const socket = this.socket;
    socket.on("offer.new", (offer) => this.addOffer(offer, { announce: true }));
    socket.on("offer.withdrawn", (event) => this.offerWithdrawn(event));
    socket.on("offer.missed", (event) =>
      this.alerts.showMissed(event, this.names.get(event.consultation_id) ?? t("console.offer.shopper")),
    );
    socket.on("consultation.updated", (c) => this.consultationUpdated(c));
    socket.on("presence.changed", (view) => {
      if (view.staff_id !== this.me.id) return;
      this.showPresence(view);
      this.alerts.presence(view);
    });
    socket.onState((state, info) => this.connectionChanged(state, info));
    document.addEventListener("visibilitychange", () => this.current?.shown());
    onLanguageChange(() => this.rerender());
    setInterval(() => this.tick(), 1000);
    this.alerts.start();
    this.render();
    import("/staff/calendar.js").then(({ mountCalendar }) => mountCalendar($("booking-calendar"), this.me));
  }

  // ------------------------------------------------------------ connection and state

  connectionChanged(state, info = {}) {
    if (this.connection === "signed_out") return; // final: only signing in again leaves it
    if (state === "disconnected") this.checkSession(info);
    const again = state === "connected" && this.wasConnected && this.connection !== "connected";
    this.connection = state;
    if (state === "connected") {
      if (again) this.announce(t("console.conn.back"));
      this.wasConnected = true;
      this.refresh();
    }
    for (const ws of this.workspaces.values()) {
      if (ws.call) {
        ws.call.socketDown = state === "reconnecting";
        ws.call.render();
      }
    }
    this.renderConnection();
  }

  /**
   * A closed or refused socket is often an ended session: signed out in another tab, expired,
   * or the account disabled or changed by an admin (the server then closes every socket of
   * it). Find out, so the advisor reads that in words instead of "Disconnected".
   */
  async checkSession(info) {
    if (NO_SESSION.has(info.error?.code)) {
      this.sessionEnded();
      return;
    }
    const me = await api("GET", "/api/v1/auth/me");
    if (!me.ok && me.status === 401) this.sessionEnded();
  }

  sessionEnded() {
    this.connection = "signed_out";
    this.socket.disconnect(); // no reconnecting with a session that is gone
    document.body.classList.add("session-ended");
    this.renderConnection();
    $("reload").focus();
  }

  reload() {
    if (this.connection === "signed_out") {
      try {
        sessionStorage.setItem(SESSION_ENDED_FLAG, "1");
      } catch {
        // the sign-in form shows without the reason; nothing else is lost
      }
    }
    location.reload();
  }

  /** What the server says is ours now: after the first connect and after every reconnect. */
  async refresh() {
    let list;
    try {
      list = await this.socket.call("consultation.current", {});
    } catch (error) {
      this.showError(error);
      return;
    }
    this.showError(null);
    const seen = new Set();
    for (const c of list ?? []) {
      seen.add(c.id);
      if (c.status === "offered") {
        if (this.offers.has(c.id)) this.offers.get(c.id).update(c);
        else this.addOffer(c, { announce: false });
      } else if (HELD.has(c.status) && c.advisor_id === this.me.id) {
        this.removeOffer(c.id);
        this.holdConsultation(c);
      }
    }
    for (const id of [...this.offers.keys()]) if (!seen.has(id)) this.removeOffer(id);
    for (const id of [...this.workspaces.keys()]) if (!seen.has(id)) this.removeWorkspace(id);
    try {
      const views = await this.socket.call("presence.list", {});
      const mine = (views ?? []).find((v) => v.staff_id === this.me.id);
      if (mine) this.showPresence(mine);
    } catch (error) {
      this.presenceError = error;
      this.renderPresence();
    }
  }

  showError(error) {
    const box = $("console-error");
    box.hidden = !error;
    box.textContent = error ? errorText(error) : "";
  }

  // ------------------------------------------------------------ presence

  async setPresence(status) {
    const select = $("presence-select");
    select.disabled = true;
    this.presenceError = null;
    try {
      this.showPresence(await this.socket.call("presence.set", { status }));
    } catch (error) {
      this.presenceError = error;
    } finally {
      select.disabled = false;
      this.renderPresence();
    }
  }

  showPresence(view) {
    this.presence = view;
    this.renderPresence();
  }

  renderPresence() {
    const view = this.presence;
    const select = $("presence-select");
    const badge = $("presence-state");
    if (view) {
      // What the advisor chose (busy and offline are facts, not choices).
      if (!select.disabled) select.value = view.chosen === "away" ? "away" : "available";
      badge.dataset.status = view.status;
      setText(badge, t("console.presence.since", { status: t(`console.presence.${view.status}`), time: clockTime(view.since) }));
    } else {
      badge.dataset.status = "offline";
      setText(badge, t("console.presence.unknown"));
    }
    const error = $("presence-error");
    error.hidden = !this.presenceError;
    setText(error, this.presenceError ? errorText(this.presenceError) : "");
    const away = view && view.status !== "available" && view.status !== "busy";
    $("offers-empty").textContent = away ? t("console.offers.empty_away") : t("console.offers.empty");
  }

  // ------------------------------------------------------------ offers

  addOffer(offer, { announce }) {
    if (this.workspaces.has(offer.id)) return;
    let card = this.offers.get(offer.id);
    if (card) {
      card.update(offer);
      return;
    }
    card = new OfferCard(offer, {
      me: this.me,
      onAccept: (c) => this.accept(c),
      onDecline: (c) => this.decline(c),
    });
    this.offers.set(offer.id, card);
    $("offer-list").append(card.root);
    this.renderOffers();
    if (announce) {
      // Announce once the shopper's name is known (or after a moment without it).
      Promise.race([card.ready, new Promise((resolve) => setTimeout(resolve, 1500))]).then(() => {
        if (!this.offers.has(offer.id)) return;
        this.alert(card.announcement(), offer.id);
        this.alerts.offered(offer, card.name());
      });
    }
  }

  removeOffer(id) {
    const card = this.offers.get(id);
    if (!card) return;
    const hadFocus = card.root.contains(document.activeElement);
    if (this.alertFor === id) this.clearAlert();
    this.names.set(id, card.name());
    this.alerts.gone(id);
    card.root.remove();
    this.offers.delete(id);
    this.renderOffers();
    if (hadFocus) ($("offer-list").querySelector("button") ?? $("offers-heading")).focus();
  }

  offerWithdrawn({ consultation_id: id, reason }) {
    const card = this.offers.get(id);
    if (!card) return;
    const key = `console.offer.withdrawn.${reason === "abandoned" ? "abandoned" : reason === "timed out" ? "timed_out" : "other"}`;
    this.announce(t(key, { name: card.name() }));
    this.removeOffer(id);
  }

  async accept(card) {
    card.setBusy(true);
    card.error = null;
    this.accepting.add(card.id);
    try {
      const c = await this.socket.call("offer.accept", { consultation_id: card.id });
      this.removeOffer(card.id);
      const ws = this.holdConsultation(c, { fromAccept: true });
      this.select(ws, { focus: true });
    } catch (error) {
      if (error?.code === "offer_gone") {
        this.announce(t("console.offer.gone", { name: card.name() }));
        this.removeOffer(card.id);
      } else {
        card.setBusy(false);
        card.showError(error);
      }
    } finally {
      this.accepting.delete(card.id);
    }
  }

  async decline(card) {
    card.setBusy(true);
    try {
      await this.socket.call("offer.decline", { consultation_id: card.id });
      this.removeOffer(card.id);
    } catch (error) {
      if (error?.code === "offer_gone") this.removeOffer(card.id);
      else {
        card.setBusy(false);
        card.showError(error);
      }
    }
  }

  renderOffers() {
    const count = this.offers.size;
    $("offers-empty").hidden = count > 0;
    setText($("offers-count"), count ? t("console.offers.count", { count }) : "");
    $("console").classList.toggle("has-offers", count > 0);
    document.title = (count ? `(${count}) ` : "") + t("staff.title", { area: t("staff.area.advisor") });
  }

  // ------------------------------------------------------------ consultations

  consultationUpdated(c) {
    const card = this.offers.get(c.id);
    if (card && c.status !== "offered") this.removeOffer(c.id);
    const ws = this.workspaces.get(c.id);
    if (ws) {
      if (HELD.has(c.status)) ws.update(c);
      else this.removeWorkspace(c.id);
    } else if (HELD.has(c.status) && c.advisor_id === this.me.id) {
      // Accepted here (the update overtook the answer) or in another tab of ours.
      this.holdConsultation(c, { fromAccept: this.accepting.has(c.id) });
    }
  }

  holdConsultation(c, { fromAccept = false } = {}) {
    let ws = this.workspaces.get(c.id);
    if (ws) {
      ws.update(c);
      if (fromAccept) ws.claimCall();
      return ws;
    }
    ws = new Workspace(c, { socket: this.socket, me: this.me, host: this });
    this.workspaces.set(c.id, ws);
    $("ws-tabs").append(ws.tab);
    $("ws-panels").append(ws.root);
    ws.tab.addEventListener("click", () => this.select(ws));
    if (!this.current) this.select(ws);
    else ws.root.hidden = true;
    ws.start({ fromAccept });
    this.renderWorkspaces();
    return ws;
  }

  removeWorkspace(id) {
    const ws = this.workspaces.get(id);
    if (!ws) return;
    const hadFocus = ws.root.contains(document.activeElement) || ws.tab === document.activeElement;
    ws.destroy();
    ws.tab.remove();
    ws.root.remove();
    this.workspaces.delete(id);
    if (this.current === ws) {
      this.current = null;
      const next = this.workspaces.values().next().value;
      if (next) this.select(next, { focus: hadFocus });
      else if (hadFocus) $("ws-heading").focus();
    }
    this.renderWorkspaces();
  }

  selected() {
    return this.current;
  }

  /** Another consultation of ours has a live call (one call at a time). */
  callElsewhere(ws) {
    for (const other of this.workspaces.values()) {
      if (other !== ws && other.c.status === "active" && (other.call?.active || other.c.kind !== "chat")) return true;
    }
    return false;
  }

  select(ws, { focus = false } = {}) {
    this.current = ws;
    for (const other of this.workspaces.values()) {
      const on = other === ws;
      other.tab.setAttribute("aria-selected", String(on));
      other.tab.tabIndex = on ? 0 : -1;
      other.root.hidden = !on;
    }
    ws.shown();
    if (focus) ws.tab.focus();
  }

  tabKeys(event) {
    const tabs = [...this.workspaces.values()];
    const index = tabs.indexOf(this.current);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      event.preventDefault();
      this.select(next, { focus: true });
    }
  }

  renderWorkspaces() {
    const count = this.workspaces.size;
    $("ws-empty").hidden = count > 0;
    $("ws-tabs").hidden = count === 0;
    setText($("ws-count"), count ? t("console.ws.count", { count }) : "");
    $("console").classList.toggle("has-workspaces", count > 0);
  }

  // ------------------------------------------------------------ announcements and drawing

  /** Polite, invisible: for things the advisor can also see happen. */
  announce(text) {
    const region = $("announcer");
    region.textContent = "";
    // A fresh text node after a tick, so repeating the same sentence is read again.
    setTimeout(() => {
      region.textContent = text;
    }, 50);
  }

  /** Visible and announced: a new offer (until it is taken, withdrawn, or a while passed). */
  alert(text, offerId) {
    const box = $("offer-alert");
    clearTimeout(this.alertTimer);
    this.alertFor = offerId;
    box.hidden = false;
    box.textContent = text;
    this.alertTimer = setTimeout(() => this.clearAlert(), ALERT_MS);
  }

  clearAlert() {
    clearTimeout(this.alertTimer);
    this.alertFor = null;
    const box = $("offer-alert");
    box.hidden = true;
    box.textContent = "";
  }

  renderConnection() {
    const banner = $("conn-banner");
    const state = this.connection;
    banner.hidden = state === "connected" || (state === "connecting" && !this.wasConnected);
    banner.dataset.state = state;
    setText($("conn-text"), t(`console.conn.${state}`));
    $("reload").hidden = state !== "disconnected" && state !== "signed_out";
    setText($("reload"), t(state === "signed_out" ? "console.conn.sign_in_again" : "console.conn.reload"));
  }

  tick() {
    const now = Date.now();
    for (const card of this.offers.values()) card.tick(now);
    for (const ws of this.workspaces.values()) ws.tick(now);
  }

  render() {
    this.renderPresence();
    this.renderOffers();
    this.renderWorkspaces();
    this.renderConnection();
  }

  rerender() {
    this.render();
    this.alerts.render();
    const alerted = this.offers.get(this.alertFor);
    if (alerted) $("offer-alert").textContent = alerted.announcement();
    for (const card of this.offers.values()) card.render();
    for (const ws of this.workspaces.values()) ws.rerender();
  }
}

/** Open the console for the signed-in advisor (the /auth/me shape). */
export function startConsole(me) {
  setViewerRole(me.role);
  const socket = LiveSocket.staff();
  const advisorConsole = new AdvisorConsole(me, socket);
  advisorConsole.start();
  return { socket, console: advisorConsole };
}
