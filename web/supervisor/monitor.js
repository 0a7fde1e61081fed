// @ts-check
// Live call monitoring on the supervisor board: "Listen" on a live call opens a receive-only
// connection to livedesk, which forwards both parties' audio and video from its server leg
// (no re-encoding); the supervisor can then whisper to the advisor (only the advisor hears)
// or barge in (both hear) — their microphone goes browser to browser, signalled through
// livedesk, which checks every step (docs/monitoring.md).
//
//   const panel = new MonitorPanel({ socket, mount, advisorName, kindLabel });
//   panel.setCalls(calls);   // the board's live calls [{id, advisor_id, kind}], whenever they change
//
// Strings come from /monitoring/i18n/<lang>.json (the board loads that area).
import { onLanguageChange, t } from "/shared/i18n.js";
import { gathered, iceServers } from "/shared/monitor-voice.js";
import { el } from "/shared/dom.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const MODES = ["listen", "whisper", "barge"];
// Who hears the supervisor in each mode (the server enforces the same).
const HEARS = { listen: [], whisper: ["advisor"], barge: ["advisor", "shopper"] };
const PARTICIPANTS = ["shopper", "advisor"];

function errorText(error) {
  const shaped = typeof error === "object" && error ? error : { message: String(error ?? "") };
  return sharedErrorText(shaped, "monitoring.error.", { generic: "monitoring.error.generic" });
}

/** VP8 and Opus first: what livedesk forwards as the parties' browsers sent it. */
function preferForwarded(transceiver, kind) {
  const capabilities = globalThis.RTCRtpReceiver?.getCapabilities?.(kind);
  if (!capabilities || typeof transceiver.setCodecPreferences !== "function") return;
  const wanted = kind === "video" ? "video/vp8" : "audio/opus";
  const first = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  const rest = capabilities.codecs.filter((c) => c.mimeType.toLowerCase().endsWith("/rtx"));
  if (first.length) transceiver.setCodecPreferences([...first, ...rest]);
}

export class MonitorPanel {
  constructor({ socket, mount, advisorName, kindLabel }) {
    this.socket = socket;
    this.advisorName = advisorName;
    this.kindLabel = kindLabel;
    this.calls = [];
    this.rows = new Map(); // consultation id → row
    this.current = null; // { consultationId, monitorId, pc, mode, talks: Map(party → pc), streams }
    this.status = "idle"; // idle | connecting | listening | ended
    this.busy = false;
    this.error = null;
    this.mic = null;
    this.build(mount);
    socket.on("monitor.talk_answer", (answer) => this.talkAnswered(answer));
    socket.on("monitor.ended", (ended) => this.ended(ended));
    socket.onState((state) => {
      // The server ends a monitor when its socket goes: listen again once back.
      if (state === "connected" && this.current && this.lost) this.resume();
      if (state !== "connected" && this.current) this.lost = true;
    });
    onLanguageChange(() => this.render());
  }

  build(mount) {
    if (!document.querySelector('link[href="/supervisor/monitor.css"]')) {
      document.head.append(el("link", { rel: "stylesheet", href: "/supervisor/monitor.css" }));
    }
    this.heading = el("h2", { class: "section-title", id: "monitor-heading" });
    this.empty = el("p", { class: "empty" });
    this.list = el("ul", { class: "mon-calls", "aria-labelledby": "monitor-heading" });
    this.status_ = el("p", { class: "mon-status", role: "status", "aria-live": "polite", "data-testid": "monitor-status" });
    this.errorBox = el("p", { class: "mon-error", role: "alert" });
    this.errorBox.hidden = true;
    this.tiles = el("div", { class: "mon-tiles" });
    this.videos = {};
    this.captions = {};
    for (const participant of PARTICIPANTS) {
      const video = el("video", { "data-participant": participant, playsinline: "", "data-testid": `monitor-video-${participant}` });
      video.autoplay = true;
      const caption = el("figcaption");
      this.videos[participant] = video;
      this.captions[participant] = caption;
      this.tiles.append(el("figure", { class: "mon-tile" }, [video, caption]));
    }
    this.modeLabel = el("span", { class: "mon-modes-label", id: "monitor-modes-label" });
    this.modeButtons = {};
    const modes = el("div", { class: "mon-modes", role: "group", "aria-labelledby": "monitor-modes-label" });
    for (const mode of MODES) {
      const button = el("button", { class: "button button-secondary", type: "button", "aria-pressed": "false", "data-mode": mode, "data-testid": `monitor-mode-${mode}` });
      button.addEventListener("click", () => this.setMode(mode));
      this.modeButtons[mode] = button;
      modes.append(button);
    }
    this.hint = el("p", { class: "mon-hint" });
    this.stopButton = el("button", { class: "button", type: "button", "data-testid": "monitor-stop" });
    this.stopButton.addEventListener("click", () => this.stop());
    this.live = el("div", { class: "mon-live",  "data-testid": "monitor-live"  }, [
      this.tiles,
      el("div", { class: "mon-controls" }, [this.modeLabel, modes, this.stopButton]),
      this.hint,
    ]);
    this.live.hidden = true;
    this.root = el("section", { class: "panel card mon-panel", "aria-labelledby": "monitor-heading", "data-testid": "monitor-panel" }, [
      this.heading,
      this.empty,
      this.list,
      this.status_,
      this.errorBox,
      this.live,
    ]);
    mount.append(this.root);
    this.render();
  }

  /** The board's live calls; rows are kept (not rebuilt) so keyboard focus stays put. */
  setCalls(calls) {
    this.calls = calls;
    const ids = new Set(calls.map((c) => c.id));
    for (const [id, row] of this.rows) {
      if (!ids.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    for (const c of calls) {
      let row = this.rows.get(c.id);
      if (!row) {
        const label = el("span", { class: "mon-call-label" });
        const button = el("button", { class: "button button-secondary", type: "button", "data-testid": "monitor-listen" });
        button.addEventListener("click", () => this.listen(c.id));
        const li = el("li", { class: "mon-call", "data-consultation-id": c.id }, [label, button]);
        row = { li, label, button };
        this.rows.set(c.id, row);
        this.list.append(li);
      }
      row.call = c;
    }
    this.render();
  }

  async listen(consultationId) {
    if (this.busy) return;
    if (this.current) await this.stop({ quiet: true });
    this.busy = true;
    this.error = null;
    this.status = "connecting";
    this.render();
    try {
      await this.open(consultationId);
      this.status = "listening";
    } catch (error) {
      this.close();
      this.status = "idle";
      this.error = error;
    } finally {
      this.busy = false;
      this.render();
    }
    if (this.current) this.stopButton.focus();
  }

  async open(consultationId) {
    const pc = new RTCPeerConnection({ iceServers: await iceServers(), bundlePolicy: "max-bundle" });
    const current = { consultationId, monitorId: null, pc, mode: "listen", talks: new Map(), tracks: new Map() };
    this.current = current;
    this.lost = false;
    // Shopper then advisor, audio and video each: the server answers in this order.
    for (const kind of ["audio", "video", "audio", "video"]) {
      preferForwarded(pc.addTransceiver(kind, { direction: "recvonly" }), kind);
    }
    const streams = { shopper: new MediaStream(), advisor: new MediaStream() };
    pc.addEventListener("track", (event) => {
      const participant = current.tracks.get(event.transceiver.mid);
      if (!participant) return;
      streams[participant].addTrack(event.track);
      const video = this.videos[participant];
      if (video.srcObject !== streams[participant]) video.srcObject = streams[participant];
      video.play?.().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && this.current === current) {
        this.error = { code: "connection_failed" };
        this.render();
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await this.socket.call("monitor.start", {
      consultation_id: consultationId,
      type: "offer",
      sdp: pc.localDescription.sdp,
    });
    if (this.current !== current) {
      this.socket.call("monitor.stop", { monitor_id: answer.monitor_id }).catch(() => {});
      return;
    }
    current.monitorId = answer.monitor_id;
    for (const track of answer.tracks) current.tracks.set(track.mid, track.participant);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  /** After a reconnect: the same call again, in the same mode. */
  async resume() {
    const previous = this.current;
    if (!previous || this.busy) return;
    this.lost = false;
    const mode = previous.mode;
    await this.listen(previous.consultationId);
    if (this.current && mode !== "listen") await this.setMode(mode);
  }

  async setMode(mode) {
    const current = this.current;
    if (!current?.monitorId || this.busy || current.mode === mode) return;
    this.busy = true;
    this.error = null;
    this.render();
    try {
      if (mode !== "listen" && !this.mic) {
        this.mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      }
      await this.socket.call("monitor.mode", { monitor_id: current.monitorId, mode });
      current.mode = mode;
      // The server hangs up on a party the new mode leaves out; open what it adds.
      for (const [party, pc] of current.talks) {
        if (!HEARS[mode].includes(party)) {
          pc.close();
          current.talks.delete(party);
        }
      }
      for (const party of HEARS[mode]) {
        if (!current.talks.has(party)) await this.talk(current, party);
      }
    } catch (error) {
      this.error = error;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async talk(current, party) {
    const pc = new RTCPeerConnection({ iceServers: await iceServers(), bundlePolicy: "max-bundle" });
    current.talks.set(party, pc);
    const track = this.mic.getAudioTracks()[0];
    pc.addTransceiver(track, { direction: "sendonly", streams: [this.mic] });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    await this.socket.call("monitor.talk", {
      monitor_id: current.monitorId,
      to: party,
      type: "offer",
      sdp: pc.localDescription.sdp,
    });
  }

  async talkAnswered(answer) {
    const current = this.current;
    if (!current || answer?.monitor_id !== current.monitorId) return;
    const pc = current.talks.get(answer.from);
    // Another tab of the party may answer too: the first answer wins.
    if (!pc || pc.signalingState !== "have-local-offer") return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (error) {
      this.error = error;
      this.render();
    }
  }

  ended(message) {
    if (!this.current || message?.monitor_id !== this.current.monitorId) return;
    if (message.reason === "disconnected") return; // resume() takes over
    // The process that held the call's media died and another took the call over: listen
    // again (same call, same mode), now answered there.
    if (message.reason === "moved") {
      this.current.pc?.close();
      return this.resume();
    }
    this.close();
    this.status = message.reason === "call_ended" ? "ended" : "idle";
    this.render();
  }

  async stop({ quiet = false } = {}) {
    const current = this.current;
    if (!current) return;
    this.close();
    this.status = "idle";
    if (current.monitorId) {
      try {
        await this.socket.call("monitor.stop", { monitor_id: current.monitorId });
      } catch (error) {
        // not_monitoring: it had already ended on the server.
        if (!quiet && error?.code !== "not_monitoring") this.error = error;
      }
    }
    this.render();
  }

  close() {
    const current = this.current;
    this.current = null;
    if (!current) return;
    for (const pc of current.talks.values()) pc.close();
    current.pc.close();
    for (const video of Object.values(this.videos)) video.srcObject = null;
    for (const track of this.mic?.getTracks() ?? []) track.stop();
    this.mic = null;
  }

  callLabel(c) {
    return t("monitoring.call_label", { name: this.advisorName(c.advisor_id), kind: this.kindLabel(c.kind) });
  }

  render() {
    const current = this.current;
    this.heading.textContent = t("monitoring.heading");
    this.empty.textContent = t("monitoring.no_calls");
    this.empty.hidden = this.calls.length > 0;
    for (const [id, row] of this.rows) {
      const label = this.callLabel(row.call);
      row.label.textContent = label;
      const listening = current?.consultationId === id;
      row.li.dataset.listening = String(listening);
      row.button.textContent = listening ? t("monitoring.listening_now") : t("monitoring.listen");
      row.button.setAttribute("aria-label", `${listening ? t("monitoring.listening_now") : t("monitoring.listen")}: ${label}`);
      row.button.disabled = this.busy || listening;
    }
    const call = current ? this.calls.find((c) => c.id === current.consultationId) : null;
    const statusKey = { connecting: "monitoring.status.connecting", listening: "monitoring.status.listening", ended: "monitoring.status.ended" }[this.status];
    this.root.dataset.status = this.status;
    this.status_.hidden = !statusKey;
    this.status_.textContent = statusKey ? t(statusKey, { call: call ? this.callLabel(call) : "" }) : "";
    this.errorBox.hidden = !this.error;
    this.errorBox.textContent = this.error ? errorText(this.error) : "";
    this.live.hidden = !current || this.status !== "listening";
    this.captions.shopper.textContent = t("monitoring.customer");
    this.captions.advisor.textContent = call ? this.advisorName(call.advisor_id) : t("monitoring.advisor");
    this.modeLabel.textContent = t("monitoring.your_voice");
    const mode = current?.mode ?? "listen";
    this.root.dataset.mode = mode;
    for (const [name, button] of Object.entries(this.modeButtons)) {
      button.textContent = t(`monitoring.mode.${name}`);
      button.setAttribute("aria-pressed", String(name === mode));
      button.disabled = this.busy;
      button.setAttribute("aria-busy", String(this.busy));
    }
    this.hint.textContent = t(`monitoring.hint.${mode}`);
    this.stopButton.textContent = t("monitoring.stop");
  }
}
