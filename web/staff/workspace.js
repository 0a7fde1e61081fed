// @ts-check
// One consultation the advisor holds: a tab and its panel with the call (voice/video), the
// chat, the customer panel, notes, "End" (→ wrap-up) and "Close with notes".
import { t } from "/shared/i18n.js";
import { errorText } from "/shared/staff-api.js";
import { CallView } from "/staff/call-view.js";
import { ChatView } from "/staff/chat-view.js";
import { CustomerPanel } from "/shared/customer/panel.js";
import { PaymentBuilder } from "/shared/customer/payment.js";
import { instantiate, part, setText, uid } from "/shared/dom.js";
import { duration, secondsSince } from "/shared/time.js";
import { renderIntake } from "/shared/customer/intake.js";

const CALL_KINDS = new Set(["voice", "video"]);
const OWNED_KEY = "livedesk.console.calls";
const NOTES_KEY = "livedesk.console.notes.";

function session(key, value) {
  try {
    if (value === undefined) return sessionStorage.getItem(key);
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage disabled: drafts and call ownership just don't survive a reload
  }
  return null;
}

/** Calls this tab runs: kept per tab (sessionStorage) so a reload resumes them and a second tab does not. */
export const ownedCalls = {
  list() {
    try {
      return JSON.parse(session(OWNED_KEY) ?? "[]");
    } catch {
      return [];
    }
  },
  has(id) {
    return this.list().includes(id);
  },
  add(id) {
    if (!this.has(id)) session(OWNED_KEY, JSON.stringify([...this.list(), id]));
  },
  remove(id) {
    session(OWNED_KEY, JSON.stringify(this.list().filter((x) => x !== id)));
  },
};

export class Workspace {
  constructor(consultation, { socket, me, host }) {
    this.c = consultation;
    this.socket = socket;
    this.me = me;
    this.host = host; // the console: announce(), selected(), callElsewhere(), removeWorkspace()
    this.name = null;
    this.error = null;
    this.unread = 0;
    this.call = null;
    const prefix = uid("ws");
    this.prefix = prefix;
    this.tab = instantiate("tpl-tab", prefix);
    this.root = instantiate("tpl-workspace", prefix);
    this.tab.id = `${prefix}-tab`;
    this.root.id = `${prefix}-panel`;
    this.tab.setAttribute("aria-controls", this.root.id);
    this.root.setAttribute("aria-labelledby", this.tab.id);
    this.tab.dataset.consultationId = consultation.id;
    this.root.dataset.consultationId = consultation.id;

    this.notes = part(this.root, "notes");
    this.notes.value = session(NOTES_KEY + consultation.id) ?? "";
    this.notes.addEventListener("input", () => session(NOTES_KEY + consultation.id, this.notes.value));
    part(this.root, "end").addEventListener("click", () => this.end());
    part(this.root, "close").addEventListener("click", () => this.close());
    part(this.root, "start-video").addEventListener("click", () => this.startCall("video"));
    part(this.root, "start-voice").addEventListener("click", () => this.startCall("voice"));

    this.chat = new ChatView(part(this.root, "chat"), {
      chat: socket.chat(consultation.id),
      consultationId: consultation.id,
      me,
      isVisible: () => this.host.selected() === this && document.visibilityState === "visible",
      onUnread: (count) => {
        this.unread = count;
        this.renderTab();
      },
      onShopperMessage: () => {
        if (this.host.selected() !== this) {
          this.host.announce(t("console.chat.new_message", { name: this.displayName() }));
        }
      },
    });
    this.customer = new CustomerPanel(part(this.root, "customer"), consultation.shopper_id, {
      consultationId: consultation.id,
      groupedFacts: true,
      onProfile: (profile) => {
        this.name = profile.display_name;
        this.render();
      },
    });
    // The payment builder follows the customer's history in the side pane (it scrolls in itself).
    this.payment = new PaymentBuilder(part(this.root, "side"), { consultationId: consultation.id, socket });
    this.tab.addEventListener("keydown", (event) => this.tabKeys(event));
    this.render();
  }

  get id() {
    return this.c.id;
  }

  displayName() {
    return this.name ?? t("console.offer.shopper");
  }

  async start({ fromAccept = false } = {}) {
    this.chat.start();
    this.customer.start();
    this.payment.start();
    if (CALL_KINDS.has(this.c.kind) && this.c.status === "active") {
      if (fromAccept) ownedCalls.add(this.id);
      this.ensureCall(ownedCalls.has(this.id));
    }
  }

  /** This tab accepted the consultation: its call runs here. */
  claimCall() {
    if (CALL_KINDS.has(this.c.kind) && this.c.status === "active" && !this.call?.active) {
      ownedCalls.add(this.id);
      this.ensureCall(true);
    }
  }

  ensureCall(startNow) {
    if (!this.call) {
      this.call = new CallView({
        socket: this.socket,
        consultationId: this.id,
        mode: this.c.kind,
        onSwitchMode: (mode) => this.socket.call("call.escalate", { consultation_id: this.id, kind: mode }),
        onStateChange: () => this.render(),
      });
      // A browser that cannot share its screen (phones, some embedded browsers) is not offered it.
      if (!navigator.mediaDevices?.getDisplayMedia) part(this.call.root, "share").hidden = true;
      part(this.root, "call-slot").append(this.call.root);
    }
    if (startNow) {
      ownedCalls.add(this.id);
      this.call.start();
    } else if (!this.call.active) {
      this.call.offerJoin();
      // "Join here" takes the call over in this tab.
      part(this.call.root, "join").addEventListener("click", () => ownedCalls.add(this.id), { once: true });
    }
    this.render();
  }

  /** A consultation.updated for this consultation. */
  update(consultation) {
    const before = this.c;
    this.c = { ...before, ...consultation };
    const c = this.c;
    if (c.status === "active" && CALL_KINDS.has(c.kind)) {
      if (!this.call) {
        // The shopper turned the chat into a call: the tab that shows it answers.
        this.ensureCall(ownedCalls.has(this.id) || this.host.selected() === this);
      } else if (before.kind !== c.kind) {
        this.call.applyMode(c.kind);
      }
    }
    if (before.status === "active" && c.status === "wrap_up") {
      this.call?.hangup({ signal: false });
      ownedCalls.remove(this.id);
      this.host.announce(t("console.ws.ended_announce", { name: this.displayName() }));
    }
    this.render();
  }

  async startCall(kind) {
    this.error = null;
    if (this.host.callElsewhere(this)) {
      this.error = { code: "advisor_in_call" };
      this.render();
      return;
    }
    const buttons = [part(this.root, "start-video"), part(this.root, "start-voice")];
    for (const b of buttons) b.disabled = true;
    try {
      const updated = await this.socket.call("call.escalate", { consultation_id: this.id, kind });
      ownedCalls.add(this.id);
      this.c = { ...this.c, ...updated };
      this.ensureCall(true);
    } catch (error) {
      this.error = error;
    } finally {
      for (const b of buttons) b.disabled = false;
      this.render();
    }
  }

  async end() {
    this.error = null;
    const button = part(this.root, "end");
    button.disabled = true;
    try {
      // Hang up first, while the call may still signal: the shopper's side closes at once.
      this.call?.hangup();
      const updated = await this.socket.call("consultation.end", { consultation_id: this.id });
      ownedCalls.remove(this.id);
      this.update(updated);
      this.notes.focus();
    } catch (error) {
      this.error = error;
    } finally {
      button.disabled = false;
      this.render();
    }
  }

  async close() {
    this.error = null;
    const button = part(this.root, "close");
    button.disabled = true;
    try {
      if (this.c.status === "active") this.call?.hangup();
      const updated = await this.socket.call("consultation.close", {
        consultation_id: this.id,
        notes: this.notes.value.trim(),
      });
      this.c = { ...this.c, ...updated };
      this.host.announce(t("console.ws.closed_announce", { name: this.displayName() }));
      this.host.removeWorkspace(this.id);
    } catch (error) {
      this.error = error;
      button.disabled = false;
      this.render();
    }
  }

  destroy() {
    this.payment.destroy();
    this.call?.destroy();
    this.chat.destroy();
    ownedCalls.remove(this.id);
    session(NOTES_KEY + this.id, null);
  }

  /** The tab was shown: read the chat now. */
  shown() {
    this.chat.markRead();
  }

  statusText(now = Date.now()) {
    const c = this.c;
    if (c.status === "active") {
      return t("console.ws.active_for", { time: duration(secondsSince(c.accepted_at, now)) });
    }
    if (c.status === "wrap_up") return t("console.ws.wrap_up");
    return t(`console.status.${c.status}`);
  }

  tick(now = Date.now()) {
    setText(part(this.root, "status"), this.statusText(now));
    this.call?.tick(now);
  }

  /** The consultations are a vertical list in the rail: Up/Down move along it too (console.js
   * handles Left/Right, Home and End). */
  tabKeys(event) {
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (!step) return;
    const tabs = [...this.tab.parentElement.querySelectorAll("[role=tab]")];
    const next = tabs[(tabs.indexOf(this.tab) + step + tabs.length) % tabs.length];
    event.preventDefault();
    next.click();
    next.focus();
  }

  /** Notes come first in wrap-up (the call is over; they are what is left to do), after the
   * customer panel while the consultation is active. Focus stays where it was. */
  placeNotes() {
    const notes = part(this.root, "wrapup");
    const body = notes.parentElement;
    const first = this.c.status === "wrap_up";
    if (first ? body.firstElementChild === notes : body.lastElementChild === notes) return;
    const focused = notes.contains(document.activeElement) ? /** @type {HTMLElement} */ (document.activeElement) : null;
    if (first) body.prepend(notes);
    else body.append(notes);
    focused?.focus();
  }

  renderTab() {
    setText(part(this.tab, "name"), this.displayName());
    setText(part(this.tab, "kind"), t(`console.kind.${this.c.kind}`));
    setText(part(this.tab, "state"), this.c.status === "wrap_up" ? t("console.ws.wrap_up") : "");
    const badge = part(this.tab, "unread");
    badge.hidden = !this.unread;
    setText(badge, this.unread ? t("console.ws.unread", { count: this.unread }) : "");
    this.tab.dataset.status = this.c.status;
    this.tab.dataset.kind = this.c.kind;
  }

  render() {
    const c = this.c;
    const root = this.root;
    root.dataset.status = c.status;
    root.dataset.kind = c.kind;
    setText(part(root, "title"), this.displayName());
    part(root, "kind").dataset.kind = c.kind;
    setText(part(root, "kind"), t(`console.kind.${c.kind}`));
    renderIntake(part(root, "intake"), c.intake);
    const active = c.status === "active";
    const isCall = CALL_KINDS.has(c.kind);
    part(root, "start-video").hidden = !active || isCall;
    part(root, "start-voice").hidden = !active || isCall;
    part(root, "end").hidden = !active;
    part(root, "wrapup-hint").hidden = c.status !== "wrap_up";
    this.placeNotes();
    const error = part(root, "ws-error");
    error.hidden = !this.error;
    setText(error, this.error ? errorText(this.error) : "");
    if (this.call) {
      part(root, "call-slot").hidden = !(isCall && active) && !this.call.active;
      this.call.render();
    } else {
      part(root, "call-slot").hidden = true;
    }
    this.renderTab();
    this.tick();
  }

  /** After a language change: everything drawn by script. */
  rerender() {
    this.render();
    this.chat.render();
    this.customer.render();
  }
}
