// @ts-check
// Recording in a call, for both parties: the advisor's record/stop button, the shopper's
// consent prompt (or, under the "announce" policy, a notice with a way to stop it), the
// recording indicator on both sides, and — while recording — the server leg that sends this
// party's camera and microphone to livedesk (/shared/server-leg.js; the call's one leg, which
// live monitoring shares: a party never uploads twice). A ready recording with a party missing
// for a while (their leg's server died) says "saved, but incomplete".
//
//   const panel = new RecordingPanel({ socket, consultationId, role: "advisor" | "shopper",
//                                      token, mount });
//   panel.start();                 // listens to recording.updated; asks recording.current
//   panel.setStream(localStream);  // the call's local media (again whenever it changes)
//   panel.callEnded();             // the call is over here: the leg closes
//
// Strings come from /recording/i18n/<lang>.json: pages load them with
// initI18n({extraAreas: ["/recording"]}).
import { onLanguageChange, t } from "/shared/i18n.js";
import { missingText } from "/shared/recording-player.js";
import { sharedLeg } from "/shared/server-leg.js";
import { el } from "/shared/dom.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const RUNNING = new Set(["awaiting_consent", "recording"]);
const SHOWN_FOR_MS = 6000;

function errorText(error) {
  return sharedErrorText(error ?? {}, "recording.error.", { generic: "recording.error.generic" });
}

export class RecordingPanel {
  /** @param {{socket: any, consultationId: string, role: string, token?: string, mount?: HTMLElement}} options
   *  token: the visitor token (shopper pages); staff pages use their session cookie. */
  constructor({ socket, consultationId, role, token, mount }) {
    this.socket = socket;
    this.consultationId = consultationId;
    this.role = role;
    this.token = token;
    this.recording = null;
    this.stream = null;
    this.leg = null;
    this.busy = false;
    this.error = null;
    this.inCall = false;
    this.fadeTimer = 0;
    this.offs = [];
    this.build(mount ?? document.body);
  }

  build(mount) {
    if (!document.querySelector('link[href="/recording/recording.css"]')) {
      document.head.append(el("link", { rel: "stylesheet", href: "/recording/recording.css" }));
    }
    this.root = el("div", { class: `rec rec-${this.role}`, "data-status": "none" });
    this.indicator = el("p", { class: "rec-indicator", role: "status", "aria-live": "polite", "data-testid": "recording-indicator" });
    this.indicator.hidden = true;
    this.root.append(this.indicator);
    this.errorBox = el("p", { class: "rec-error", role: "alert" });
    this.errorBox.hidden = true;
    if (this.role === "advisor") {
      this.button = el("button", { class: "button rec-button", type: "button", "aria-pressed": "false", "data-testid": "recording-toggle" });
      this.button.addEventListener("click", () => this.toggle());
      this.root.append(this.button);
    } else {
      this.buildConsent();
    }
    this.root.append(this.errorBox);
    mount.append(this.root);
    this.offs.push(onLanguageChange(() => this.render()));
    this.render();
  }

  buildConsent() {
    this.dialog = el("div", { class: "rec-consent card", role: "alertdialog", "aria-modal": "false", "aria-labelledby": "rec-consent-title", "aria-describedby": "rec-consent-body", "data-testid": "recording-consent" });
    this.dialog.hidden = true;
    this.dialogTitle = el("h2", { id: "rec-consent-title", tabindex: "-1" });
    this.dialogBody = el("p", { id: "rec-consent-body" });
    this.acceptButton = el("button", { class: "button", type: "button", "data-testid": "recording-accept" });
    this.refuseButton = el("button", { class: "button button-secondary", type: "button", "data-testid": "recording-refuse" });
    this.acceptButton.addEventListener("click", () => this.answer(true));
    this.refuseButton.addEventListener("click", () => this.answer(false));
    this.dialog.append(
      this.dialogTitle,
      this.dialogBody,
      el("div", { class: "rec-actions" }, [this.acceptButton, this.refuseButton]),
    );
    // Under "announce": the shopper may still say no while it runs.
    this.stopButton = el("button", { class: "button button-secondary rec-stop-own", type: "button", "data-testid": "recording-withdraw" });
    this.stopButton.hidden = true;
    this.stopButton.addEventListener("click", () => this.answer(false));
    this.root.append(this.dialog, this.stopButton);
  }

  start() {
    this.offs.push(this.socket.on("recording.updated", (r) => this.apply(r)));
    this.leg = sharedLeg({ socket: this.socket, consultationId: this.consultationId, token: this.token });
    const changed = () => this.render();
    const refused = (event) => {
      const { purpose, error } = event.detail;
      // not_recording: it stopped meanwhile (the update is on its way).
      if (purpose !== "recording" || error?.code === "not_recording") return;
      this.error = error;
      this.render();
    };
    this.leg.addEventListener("state", changed);
    this.leg.addEventListener("refused", refused);
    this.offs.push(() => {
      this.leg?.removeEventListener("state", changed);
      this.leg?.removeEventListener("refused", refused);
    });
    this.syncLeg();
    this.offs.push(
      this.socket.onState((state) => {
        if (state === "connected") this.refresh();
      }),
    );
  }

  async refresh() {
    try {
      const current = await this.socket.call("recording.current", { consultation_id: this.consultationId });
      if (current) this.apply(current);
      else if (this.recording && RUNNING.has(this.recording.status)) this.apply({ ...this.recording, status: "failed" });
    } catch {
      // Not a party (yet) or offline: the next recording.updated tells.
    }
  }

  /** The call's local media; the leg follows it. */
  setStream(stream) {
    this.stream = stream;
    this.inCall = Boolean(stream);
    this.syncLeg();
    this.render();
  }

  callEnded() {
    this.inCall = false;
    this.stream = null;
    this.closeLeg();
    this.render();
  }

  apply(recording) {
    if (!recording || recording.consultation_id !== this.consultationId) return;
    // Only the newest recording of the consultation matters.
    if (this.recording && this.recording.id !== recording.id && recording.requested_at < this.recording.requested_at) return;
    const before = this.recording?.status;
    this.recording = recording;
    clearTimeout(this.fadeTimer);
    if (!RUNNING.has(recording.status) && recording.status !== "processing") {
      this.fadeTimer = setTimeout(() => {
        if (this.recording?.id === recording.id) {
          this.recording = null;
          this.render();
        }
      }, SHOWN_FOR_MS);
    }
    this.syncLeg();
    this.render();
    if (this.role === "shopper" && recording.status === "awaiting_consent" && before !== "awaiting_consent" && !this.answered(recording)) {
      // Focus goes to the question, and back where it was once it is answered.
      this.returnFocus = /** @type {HTMLElement | null} */ (document.activeElement);
      this.dialogTitle.focus();
    } else if (this.role === "shopper" && this.dialog.hidden && this.dialog.contains(document.activeElement) === false) {
      const back = this.returnFocus;
      this.returnFocus = null;
      if (back && back.isConnected && document.activeElement === document.body) back.focus();
    }
  }

  answered(recording) {
    return (recording.consents ?? []).some((c) => c.participant === "shopper" && c.decision !== "announced");
  }

  syncLeg() {
    if (!this.leg) return;
    const r = this.recording;
    if (r && r.status === "recording" && this.stream) {
      // A failed leg is opened afresh by the shared leg; the server keeps what the old one
      // wrote as a part of its own.
      this.leg.want("recording", { offerEvent: "leg.offer", ref: { recording_id: r.id } }, this.stream);
    } else {
      this.leg.release("recording");
    }
  }

  closeLeg() {
    this.leg?.release("recording");
  }

  async toggle() {
    if (this.busy) return;
    const r = this.recording;
    this.busy = true;
    this.error = null;
    this.render();
    try {
      if (r && RUNNING.has(r.status)) {
        this.apply(await this.socket.call("recording.stop", { recording_id: r.id }));
      } else {
        this.apply(await this.socket.call("recording.start", { consultation_id: this.consultationId }));
      }
    } catch (error) {
      this.error = error;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async answer(accept) {
    const r = this.recording;
    if (!r || this.busy) return;
    this.busy = true;
    this.error = null;
    this.render();
    try {
      this.apply(await this.socket.call("recording.consent", { recording_id: r.id, accept }));
    } catch (error) {
      this.error = error;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  statusText() {
    const r = this.recording;
    if (!r) return "";
    if (r.status === "awaiting_consent") return t(`recording.state.awaiting_consent.${this.role}`);
    if (r.status === "recording" && this.leg && this.leg.state !== "connected") return t("recording.state.connecting");
    if (r.status === "ready" && r.incomplete) return t("recording.state.ready_incomplete", { missing: missingText(r.gaps) });
    return t(`recording.state.${r.status}`);
  }

  render() {
    const r = this.recording;
    const status = r?.status ?? "none";
    this.root.dataset.status = status;
    this.root.dataset.incomplete = String(Boolean(r?.incomplete));
    this.root.dataset.leg = this.leg?.state ?? "none";
    this.indicator.hidden = !r;
    this.indicator.dataset.status = status;
    this.indicator.replaceChildren(
      el("span", { class: "rec-dot", "aria-hidden": "true" }),
      el("span", { text: this.statusText() }),
    );
    this.errorBox.hidden = !this.error;
    this.errorBox.textContent = this.error ? errorText(this.error) : "";
    if (this.role === "advisor") {
      const running = Boolean(r && RUNNING.has(status));
      this.button.textContent = running ? t("recording.stop") : t("recording.record");
      this.button.setAttribute("aria-pressed", String(running));
      this.button.disabled = this.busy || (!running && (!this.inCall || status === "processing"));
      this.button.setAttribute("aria-busy", String(this.busy));
      return;
    }
    const asking = status === "awaiting_consent" && !this.answered(r);
    this.dialog.hidden = !asking;
    this.dialogTitle.textContent = t("recording.consent.title");
    this.dialogBody.textContent = t("recording.consent.body");
    this.acceptButton.textContent = t("recording.consent.accept");
    this.refuseButton.textContent = t("recording.consent.refuse");
    this.acceptButton.disabled = this.busy;
    this.refuseButton.disabled = this.busy;
    this.stopButton.hidden = status !== "recording";
    this.stopButton.disabled = this.busy;
    this.stopButton.textContent = r?.policy === "announce" ? t("recording.withdraw_announced") : t("recording.withdraw");
  }

  destroy() {
    this.closeLeg();
    this.leg = null;
    clearTimeout(this.fadeTimer);
    for (const off of this.offs) off?.();
    this.root.remove();
  }
}
