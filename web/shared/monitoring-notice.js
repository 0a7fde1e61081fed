// @ts-check
// Live call monitoring, on the parties' side (the shopper's call page and the advisor's call
// view): the notice "a supervisor is listening" / "a supervisor joined", the send-only
// monitoring leg to livedesk while a supervisor listens (the call's own tracks; the call's one
// server leg, shared with recording: /shared/server-leg.js sharedLeg), and the supervisor's
// voice when they whisper to the advisor or barge in.
//
//   const notice = new MonitoringNotice({ socket, consultationId, role: "advisor" | "shopper",
//                                         token, mount });
//   notice.start();                 // listens to monitor.state / monitor.voice; asks monitor.current
//   notice.setStream(localStream);  // the call's local media (again whenever it changes)
//   notice.callEnded();             // the call is over here: leg and voice close
//
// Strings come from /monitoring/i18n/<lang>.json (initI18n({extraAreas: ["/monitoring"]})).
import { onLanguageChange, t } from "/shared/i18n.js";
import { gathered, iceServers } from "/shared/monitor-voice.js";
import { sharedLeg } from "/shared/server-leg.js";
import { el } from "/shared/dom.js";

export class MonitoringNotice {
  /** @param {{socket: any, consultationId: string, role: string, token?: string, mount?: HTMLElement}} options */
  constructor({ socket, consultationId, role, token, mount }) {
    this.socket = socket;
    this.consultationId = consultationId;
    this.role = role;
    this.token = token;
    this.state = { legs: false, listening: false, barge: false };
    this.stream = null;
    this.leg = null;
    this.voices = new Map(); // talk_id → { pc, audio }
    this.offs = [];
    this.build(mount ?? document.body);
  }

  build(mount) {
    if (!document.querySelector('link[href="/monitoring/monitoring.css"]')) {
      document.head.append(el("link", { rel: "stylesheet", href: "/monitoring/monitoring.css" }));
    }
    this.root = el("div", { class: `mon-notice mon-${this.role}`, "data-testid": "monitoring-notice" });
    this.text = el("p", { class: "mon-text", role: "status", "aria-live": "polite" });
    this.root.append(this.text);
    this.root.hidden = true;
    mount.append(this.root);
    this.offs.push(onLanguageChange(() => this.render()));
  }

  start() {
    this.leg = sharedLeg({ socket: this.socket, consultationId: this.consultationId, token: this.token });
    const changed = () => {
      this.root.dataset.leg = this.leg?.state ?? "none";
    };
    this.leg.addEventListener("state", changed);
    this.offs.push(() => this.leg?.removeEventListener("state", changed));
    this.offs.push(this.socket.on("monitor.state", (s) => this.apply(s)));
    this.offs.push(this.socket.on("monitor.voice", (v) => this.voice(v)));
    this.offs.push(
      this.socket.onState((state) => {
        if (state === "connected") this.refresh();
      }),
    );
  }

  async refresh() {
    try {
      this.apply(await this.socket.call("monitor.current", { consultation_id: this.consultationId }));
    } catch {
      // Not a party (yet) or offline: the next monitor.state tells.
    }
  }

  apply(state) {
    if (!state || state.consultation_id !== this.consultationId) return;
    this.state = { legs: Boolean(state.legs), listening: Boolean(state.listening), barge: Boolean(state.barge) };
    this.syncLeg();
    this.render();
  }

  setStream(stream) {
    this.stream = stream;
    this.syncLeg();
  }

  callEnded() {
    this.stream = null;
    this.closeLeg();
    for (const id of [...this.voices.keys()]) this.hangupVoice(id);
    this.render();
  }

  syncLeg() {
    if (!this.leg) return;
    if (this.state.legs && this.stream) {
      // Already open for a recording: the same connection serves the supervisor too.
      const offer = { offerEvent: "monitor.leg_offer", ref: { consultation_id: this.consultationId } };
      this.leg.want("monitoring", offer, this.stream);
    } else {
      this.leg.release("monitoring");
    }
  }

  closeLeg() {
    this.leg?.release("monitoring");
  }

  /** The supervisor's voice: an offer (answer it, play it) or a hang-up. */
  async voice(message) {
    if (!message || message.consultation_id !== this.consultationId) return;
    if (message.type === "hangup") {
      this.hangupVoice(message.talk_id);
      this.render();
      return;
    }
    // Only the tab that holds the call answers (its media is on).
    if (message.type !== "offer" || !this.stream) return;
    this.hangupVoice(message.talk_id);
    const pc = new RTCPeerConnection({ iceServers: await iceServers(this.token), bundlePolicy: "max-bundle" });
    const audio = el("audio", { "data-testid": "monitoring-voice" });
    audio.autoplay = true;
    audio.hidden = true;
    this.root.append(audio);
    const entry = { pc, audio };
    this.voices.set(message.talk_id, entry);
    pc.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      audio.play?.().catch(() => {});
    });
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      if (this.voices.get(message.talk_id) !== entry) return;
      await this.socket.call("monitor.talk_answer", {
        consultation_id: this.consultationId,
        talk_id: message.talk_id,
        type: "answer",
        sdp: pc.localDescription.sdp,
      });
    } catch {
      this.hangupVoice(message.talk_id);
    }
    this.render();
  }

  hangupVoice(talkId) {
    const entry = this.voices.get(talkId);
    if (!entry) return;
    this.voices.delete(talkId);
    entry.pc.close();
    entry.audio.srcObject = null;
    entry.audio.remove();
  }

  render() {
    const { listening, barge } = this.state;
    let key = "";
    if (barge) key = "monitoring.notice.joined";
    else if (this.role === "advisor" && this.voices.size) key = "monitoring.notice.whisper";
    else if (listening) key = "monitoring.notice.listening";
    this.root.hidden = !key;
    this.root.dataset.state = barge ? "barge" : this.voices.size ? "whisper" : listening ? "listening" : "none";
    this.text.textContent = key ? t(key) : "";
  }

  destroy() {
    this.callEnded();
    this.leg = null;
    for (const off of this.offs) off?.();
    this.root.remove();
  }
}
