// @ts-check
// The call of one consultation, on the shared call engine (/shared/call.js, the advisor is the
// impolite side): remote video, self view, mute, camera, voice↔video, screen share, devices,
// quality with words, a timer and a "reconnecting" banner.
import { t } from "/shared/i18n.js";
import { errorText } from "/shared/staff-api.js";
import { el, instantiate, part, setText, uid } from "/shared/dom.js";
import { duration } from "/shared/time.js";
import { RecordingPanel } from "/shared/recording.js";
import { MonitoringNotice } from "/shared/monitoring-notice.js";

const ENDED = new Set(["closed", "failed"]);

/** Errors the engine recovers from by itself, or that change nothing for the advisor. */
function engineErrorIsQuiet(detail) {
  if (detail.kind === "screen" && (detail.name === "NotAllowedError" || detail.name === "AbortError")) return true;
  return ["IceServersError", "CandidateError", "NegotiationError"].includes(detail.name);
}

export class CallView {
  /**
   * socket: the staff LiveSocket; consultationId; mode: "voice" | "video";
   * onSwitchMode(mode): asks the server (call.escalate) before the engine switches.
   */
  constructor({ socket, consultationId, mode, onSwitchMode, onStateChange }) {
    this.socket = socket;
    this.consultationId = consultationId;
    this.mode = mode;
    this.onSwitchMode = onSwitchMode;
    this.onStateChange = onStateChange;
    this.engine = null;
    this.state = "idle";
    this.socketDown = false; // set by the console while its socket reconnects
    this.quality = null;
    this.connectedAt = null;
    this.muted = false;
    this.cameraOff = false;
    this.sharing = false;
    this.error = null;
    this.remoteStream = null;
    this.remoteVideo = false; // the shopper's picture arrives (engine "remotevideo")
    this.remotePicture = null; // what the shopper's side says it sends
    this.root = instantiate("tpl-call", uid("call"));
    this.remote = part(this.root, "remote");
    this.self = part(this.root, "self");
    this.bind();
    // Record / stop, the recording indicator and, while recording, the server leg.
    const controls = this.root.querySelector(".call-controls");
    this.recording = new RecordingPanel({ socket, consultationId, role: "advisor", mount: controls });
    this.recording.start();
    // Live call monitoring: the notice, the monitoring leg and a supervisor's whisper.
    this.monitoring = new MonitoringNotice({ socket, consultationId, role: "advisor", mount: controls });
    this.monitoring.start();
    this.render();
  }

  bind() {
    const on = (name, handler) => part(this.root, name).addEventListener("click", handler);
    on("mute", () => this.toggleMute());
    on("camera", () => this.toggleCamera());
    on("mode", () => this.switchMode(this.mode === "video" ? "voice" : "video"));
    on("share", () => this.toggleShare());
    on("join", () => this.start());
    on("restart", () => this.start());
    on("play", () => this.playRemote());
    part(this.root, "devices").addEventListener("toggle", (event) => {
      if (event.target.open) this.fillDevices();
    });
    for (const kind of ["audioinput", "videoinput"]) {
      part(this.root, kind).addEventListener("change", (event) => this.useDevice(kind, event.target.value));
    }
  }

  /** A call is running here (or starting: the module and the camera take a moment). */
  get active() {
    return this.starting || (this.engine !== null && !ENDED.has(this.state));
  }

  /** Offer to join here instead of starting at once (the call belongs to another tab). */
  offerJoin() {
    this.joinOffered = true;
    this.render();
  }

  async start() {
    if (this.active) return;
    this.starting = true;
    try {
      await this.run();
    } finally {
      this.starting = false;
      this.render();
    }
  }

  async run() {
    this.joinOffered = false;
    this.ended = false;
    this.error = null;
    this.connectedAt = null;
    this.sharing = false;
    this.remoteVideo = false;
    this.remotePicture = null;
    this.setState("connecting");
    let CallEngine;
    try {
      ({ CallEngine } = await import("/shared/call.js"));
    } catch (error) {
      this.error = { code: "call_module", message: String(error?.message ?? error) };
      this.setState("failed");
      return;
    }
    const engine = new CallEngine({ socket: this.socket, consultationId: this.consultationId, polite: false });
    this.engine = engine;
    engine.addEventListener("state", (/** @type {CustomEvent} */ event) => this.setState(event.detail));
    engine.addEventListener("localstream", (/** @type {CustomEvent} */ event) => {
      this.self.srcObject = event.detail;
      this.self.play?.().catch(() => {});
      this.recording.setStream(event.detail);
      this.monitoring.setStream(event.detail);
    });
    engine.addEventListener("remotestream", (/** @type {CustomEvent} */ event) => {
      this.remoteStream = event.detail;
      if (this.remote.srcObject !== event.detail) this.remote.srcObject = event.detail;
      this.playRemote();
    });
    // Whether the shopper's picture shows: frames that arrive and what their side says it
    // sends (/shared/call-picture.js), never track.muted or readyState.
    engine.addEventListener("remotevideo", (/** @type {CustomEvent} */ event) => {
      if (engine !== this.engine) return;
      this.remoteVideo = event.detail.active;
      this.remotePicture = event.detail.picture;
      this.render();
    });
    engine.addEventListener("screenshare", (/** @type {CustomEvent} */ event) => {
      // Also when the browser's own "stop sharing" ended it.
      this.sharing = Boolean(event.detail?.active);
      this.render();
    });
    engine.addEventListener("quality", (/** @type {CustomEvent} */ event) => {
      this.quality = event.detail;
      this.renderQuality();
    });
    engine.addEventListener("error", (/** @type {CustomEvent} */ event) => this.engineError(event.detail ?? {}));
    try {
      await engine.start({ audio: true, video: this.mode === "video" });
      // Muting chosen before the engine existed still holds.
      if (this.muted) engine.setMuted(true);
      if (this.cameraOff) engine.setCameraOff(true);
    } catch (error) {
      this.error = { code: error?.name ?? "call_failed", name: error?.name, message: error?.message ?? "" };
      this.setState("failed");
    }
  }

  /** What the engine reports: media and signalling problems are shown; the rest it recovers from. */
  engineError(detail) {
    if (engineErrorIsQuiet(detail)) {
      console.warn("call:", detail.name, detail.message);
      return;
    }
    this.error = detail;
    this.render();
  }

  playRemote() {
    const played = this.remote.play?.();
    if (played && typeof played.then === "function") {
      played.then(
        () => {
          this.needsPlay = false;
          this.render();
        },
        () => {
          // Autoplay with sound was refused (a reload without a click): ask for one.
          this.needsPlay = true;
          this.render();
        },
      );
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    if (state === "connected" && !this.connectedAt) this.connectedAt = Date.now();
    this.render();
    this.onStateChange?.(state);
  }

  toggleMute() {
    this.muted = !this.muted;
    this.engine?.setMuted(this.muted);
    this.render();
  }

  toggleCamera() {
    this.cameraOff = !this.cameraOff;
    this.engine?.setCameraOff(this.cameraOff);
    this.render();
  }

  async switchMode(mode) {
    if (mode === this.mode) return;
    const button = part(this.root, "mode");
    button.disabled = true;
    try {
      await this.onSwitchMode(mode);
      await this.applyMode(mode);
    } catch (error) {
      this.error = error;
    } finally {
      button.disabled = false;
      this.render();
    }
  }

  /** The consultation's kind changed (here or on the shopper's side): follow it. */
  async applyMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    if (mode === "voice" && this.sharing) await this.stopShare();
    this.render();
    if (this.engine && this.active) {
      try {
        await this.engine.setMode(mode);
        if (mode === "video" && this.cameraOff) this.engine.setCameraOff(true);
      } catch (error) {
        this.error = { code: error?.name ?? "call_failed", name: error?.name, message: error?.message ?? "" };
        this.render();
      }
    }
  }

  async toggleShare() {
    if (!this.engine) return;
    if (this.sharing) {
      await this.stopShare();
      return;
    }
    this.error = null;
    try {
      // false when the person cancelled the browser's picker (an "error" event says why).
      this.sharing = Boolean(await this.engine.shareScreen());
    } catch (error) {
      this.engineError({ name: error?.name ?? "Error", message: error?.message ?? "", kind: "screen" });
    }
    this.render();
  }

  async stopShare() {
    try {
      await this.engine?.stopScreenShare();
    } finally {
      this.sharing = false;
      this.render();
    }
  }

  async fillDevices() {
    if (!this.engine?.devices) return;
    let found;
    try {
      found = await this.engine.devices();
    } catch {
      return;
    }
    for (const kind of ["audioinput", "videoinput"]) {
      const select = part(this.root, kind);
      const list = found?.[kind] ?? [];
      select.replaceChildren(
        ...list.map((device, index) =>
          el("option", { text: device.label || t(`console.call.${kind}_n`, { n: index + 1 }), value: device.deviceId }),
        ),
      );
      select.disabled = !list.length || (kind === "videoinput" && this.mode !== "video");
    }
  }

  async useDevice(kind, deviceId) {
    try {
      await this.engine?.useDevice(kind, deviceId);
    } catch (error) {
      this.error = { code: error?.name ?? "device_failed", name: error?.name, message: error?.message ?? "" };
      this.render();
    }
  }

  /** signal: false when the consultation already ended (the shopper hears it from the server). */
  hangup({ signal = true } = {}) {
    this.joinOffered = false;
    this.ended = true;
    this.recording.callEnded();
    this.monitoring.callEnded();
    if (!this.engine) {
      this.render();
      return;
    }
    try {
      if (!ENDED.has(this.state)) this.engine.hangup({ signal });
    } catch {
      // already gone
    }
    this.setState("closed");
  }

  destroy() {
    this.hangup({ signal: false });
    this.recording.destroy();
    this.monitoring.destroy();
    for (const video of [this.remote, this.self]) {
      video.srcObject = null;
    }
  }

  errorMessage() {
    const error = this.error;
    if (!error) return "";
    const name = error.name ?? error.code;
    if (name === "NotAllowedError") return t("console.call.error.not_allowed");
    if (name === "NotFoundError" || name === "OverconstrainedError") return t("console.call.error.no_device");
    if (name === "NotReadableError") return t("console.call.error.in_use");
    if (error.kind === "screen") return t("console.call.error.screen");
    if (error.code === "call_module") return t("console.call.error.module");
    if (error.code && error.code !== name) return errorText(error);
    return t("console.call.error.generic", { message: error.message ?? "" });
  }

  renderQuality() {
    const q = this.quality;
    const box = part(this.root, "quality");
    if (!q || !this.active) {
      box.dataset.level = "none";
      setText(box, t("console.call.quality.none"));
      return;
    }
    box.dataset.level = q.level;
    const bits = [t(`console.call.quality.${q.level}`)];
    if (typeof q.rttMs === "number") bits.push(t("console.call.rtt", { ms: Math.round(q.rttMs) }));
    if (typeof q.packetLoss === "number") {
      const percent = q.packetLoss <= 1 ? q.packetLoss * 100 : q.packetLoss;
      bits.push(t("console.call.loss", { percent: percent.toFixed(1) }));
    }
    setText(box, bits.join(" · "));
  }

  tick(now = Date.now()) {
    const seconds = this.connectedAt && this.active ? (now - this.connectedAt) / 1000 : 0;
    setText(part(this.root, "timer"), duration(seconds));
  }

  render() {
    const root = this.root;
    const video = this.mode === "video";
    root.dataset.mode = this.mode;
    root.dataset.state = this.state;
    part(root, "mode-label").dataset.kind = this.mode;
    setText(part(root, "mode-label"), t(`console.kind.${this.mode}`));
    setText(part(root, "state"), t(`console.call.state.${this.state}`));
    part(root, "banner").hidden = !(this.state === "reconnecting" || this.socketDown);
    setText(part(root, "banner"), t("console.call.reconnecting"));
    const placeholder = part(root, "placeholder");
    const showVideo = video && this.active && this.remoteVideo;
    placeholder.hidden = showVideo;
    // Hidden, not removed: the same element plays the shopper's voice. A camera that is off
    // sends nothing, so this is the placeholder, never a black or frozen picture.
    this.remote.style.visibility = showVideo ? "" : "hidden";
    let text = t("console.call.waiting");
    if (!video) text = t("console.call.voice_only");
    else if (this.state === "connected" && !["camera", "screen"].includes(this.remotePicture)) {
      text = t("console.call.no_video");
    }
    setText(placeholder, text);

    const mute = part(root, "mute");
    mute.setAttribute("aria-pressed", String(this.muted));
    setText(mute, t("console.call.mute"));
    const camera = part(root, "camera");
    camera.setAttribute("aria-pressed", String(this.cameraOff));
    camera.disabled = !video;
    setText(camera, t("console.call.camera_off"));
    setText(part(root, "mode"), video ? t("console.call.to_voice") : t("console.call.to_video"));
    const share = part(root, "share");
    share.setAttribute("aria-pressed", String(this.sharing));
    share.disabled = !video || !this.active || !navigator.mediaDevices?.getDisplayMedia;
    setText(share, t("console.call.share"));
    for (const name of ["mute", "camera", "mode", "share"]) {
      if (!this.active && name !== "mute") part(root, name).disabled = true;
      else if (name === "mode") part(root, name).disabled = false;
    }
    part(root, "self-wrap").hidden = !video || this.cameraOff;
    part(root, "join").hidden = !this.joinOffered || this.active;
    // The other side hung up, or the call failed, while the consultation goes on.
    part(root, "restart").hidden = this.joinOffered || !this.engine || this.active || this.ended;
    part(root, "play").hidden = !this.needsPlay;
    const error = part(root, "call-error");
    error.hidden = !this.error;
    setText(error, this.errorMessage());
    this.renderQuality();
    this.tick();
  }
}
