// @ts-check
// How an offer reaches an advisor who is not looking at the console: a chime (muted with one
// button, remembered in this browser), a desktop notification while the console is in the
// background (asked for from a button, never on load), and — when she let one time out — a
// notice saying which offer she missed and that she is Away until she says she is back.
import { t } from "/shared/i18n.js";
import { $, setText } from "/shared/dom.js";
import { clockTime } from "/shared/time.js";

const MUTED_KEY = "livedesk.offer_sound_muted";

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage blocked: the default (sound on)
  }
}

export class OfferAlerts {
  /** onBack: the advisor says she is back (sets her presence to available). */
  constructor({ onBack }) {
    this.onBack = onBack;
    this.muted = stored(MUTED_KEY) === "1";
    this.missed = null;
    this.notifications = new Map(); // consultation id -> Notification
  }

  start() {
    $("offer-sound").addEventListener("click", () => this.setMuted(!this.muted));
    $("offer-notify").addEventListener("click", () => this.askNotifications());
    $("missed-back").addEventListener("click", () => this.onBack());
    $("missed-dismiss").addEventListener("click", () => this.clearMissed());
    this.render();
  }

  setMuted(muted) {
    this.muted = muted;
    try {
      localStorage.setItem(MUTED_KEY, muted ? "1" : "0");
    } catch {
      // not remembered, still applied
    }
    if (muted) $("offer-ring").pause();
    this.render();
  }

  async askNotifications() {
    if (!("Notification" in window)) return;
    try {
      await Notification.requestPermission();
    } finally {
      this.render();
    }
  }

  /** A new offer: ring, and notify when the console is in the background. */
  offered(offer, name) {
    if (!this.muted) {
      const ring = $("offer-ring");
      ring.currentTime = 0;
      // Refused before the page had a click: the visible and announced alert still shows.
      ring.play().catch(() => {});
    }
    if (document.visibilityState !== "visible" && "Notification" in window && Notification.permission === "granted") {
      const note = new Notification(t("console.offer.notify_title", { kind: t(`console.kind.${offer.kind}`) }), {
        body: name,
        tag: `offer-${offer.id}`,
        requireInteraction: true,
      });
      note.onclick = () => {
        window.focus();
        note.close();
      };
      this.notifications.set(offer.id, note);
    }
  }

  /** The offer is gone (taken, withdrawn, missed): its notification goes too. */
  gone(id) {
    this.notifications.get(id)?.close();
    this.notifications.delete(id);
  }

  /** offer.missed: which one, when, and whether she was set Away. */
  showMissed(event, name) {
    this.gone(event.consultation_id);
    this.missed = { ...event, name };
    this.render();
    $("missed-offer").focus();
  }

  clearMissed() {
    this.missed = null;
    this.render();
  }

  /** Her presence changed: once she is available again the notice has done its work. */
  presence(view) {
    if (this.missed && view?.status === "available") this.clearMissed();
  }

  render() {
    const sound = $("offer-sound");
    sound.setAttribute("aria-pressed", String(!this.muted));
    setText(sound, this.muted ? t("console.offer.sound_off") : t("console.offer.sound_on"));
    const notify = $("offer-notify");
    notify.hidden = !("Notification" in window) || Notification.permission !== "default";
    const box = $("missed-offer");
    const missed = this.missed;
    box.hidden = !missed;
    if (!missed) return;
    const kind = t(`console.kind.${missed.kind}`);
    setText(
      $("missed-text"),
      t(missed.set_away ? "console.offer.missed_away" : "console.offer.missed", {
        name: missed.name,
        kind,
        time: clockTime(missed.missed_at),
      }),
    );
    $("missed-back").hidden = !missed.set_away;
  }
}
