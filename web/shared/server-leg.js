// @ts-check
// The browser's side of the server media leg: a send-only RTCPeerConnection to livedesk's
// aiortc leg, opened while the call is recorded (later: monitored). The tracks are the call's
// own local tracks (no second camera prompt); the server records them without re-encoding, so
// video goes as VP8 and sound as Opus.
//
//   const leg = new ServerLeg({ socket, recordingId, token });
//   await leg.open(localStream);      // offer (all ICE candidates in it) → leg.offer → answer
//   leg.replaceStream(newStream);     // the call switched camera/microphone: follow it
//   leg.close();
//
// Signalling is one Socket.IO event, leg.offer {recording_id, type: "offer", sdp}, answered in
// its ack with {type: "answer", sdp, placement}: the offer waits for ICE gathering so nothing
// trickles. ICE servers come from GET /api/v1/ice-servers, as for the call (never a public default).
//
// One leg per call, whatever needs it: recording and monitoring share it through
//   const leg = sharedLeg({ socket, consultationId, token });
//   leg.want("recording", { offerEvent: "leg.offer", ref: { recording_id } }, stream);
//   leg.want("monitoring", { offerEvent: "monitor.leg_offer", ref: { consultation_id } }, stream);
//   leg.release("recording");       // the connection closes when nothing wants it
// The server keeps all of a call's legs in one process; when that process dies another takes
// the call over and says leg.moved (a page that reconnects asks leg.placement): the shared leg
// offers again, to the new holder.

const GATHER_TIMEOUT_MS = 3000;

function cleanIceServers(list) {
  return (Array.isArray(list) ? list : [])
    .filter((server) => server && server.urls)
    .map((server) => {
      const clean = { urls: server.urls };
      if (server.username != null) clean.username = server.username;
      if (server.credential != null) clean.credential = server.credential;
      return clean;
    });
}

/** VP8 (with its retransmissions) first: what the server can put in WebM without re-encoding. */
function preferRecordable(transceiver, kind) {
  const capabilities = globalThis.RTCRtpSender?.getCapabilities?.(kind);
  if (!capabilities || typeof transceiver.setCodecPreferences !== "function") return;
  const wanted = kind === "video" ? "video/vp8" : "audio/opus";
  const codecs = capabilities.codecs;
  const first = codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  const rtx = codecs.filter((c) => c.mimeType.toLowerCase().endsWith("/rtx"));
  if (first.length) transceiver.setCodecPreferences([...first, ...rtx]);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    // With no STUN/TURN configured host candidates come at once; never wait forever.
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export class ServerLeg extends EventTarget {
  /**
   * socket: the page's LiveSocket; token: the visitor token (shoppers) for the ICE servers.
   * offerEvent / ref: another leg user's offer event and reference (live call monitoring sends
   * monitor.leg_offer {consultation_id}); recording's leg.offer {recording_id} by default.
   */
  constructor({ socket, recordingId, token, offerEvent = "leg.offer", ref = null }) {
    super();
    this.socket = socket;
    this.recordingId = recordingId;
    this.offerEvent = offerEvent;
    this.ref = ref ?? { recording_id: recordingId };
    this.token = token;
    this.pc = null;
    this.senders = new Map(); // kind → RTCRtpSender
    this.state = "idle"; // "idle" | "connecting" | "connected" | "failed" | "closed"
  }

  #setState(state) {
    if (this.state === state || this.state === "closed") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  async #iceServers() {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    try {
      const response = await fetch("/api/v1/ice-servers", { headers, credentials: "same-origin" });
      if (!response.ok) return [];
      return cleanIceServers((await response.json()).ice_servers);
    } catch {
      return [];
    }
  }

  /** Send the stream's audio and video tracks to the server leg. */
  async open(stream) {
    if (this.pc) return;
    this.#setState("connecting");
    const pc = new RTCPeerConnection({ iceServers: await this.#iceServers(), bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === "connected") this.#setState("connected");
      if (pc.connectionState === "failed") this.#setState("failed");
    });
    for (const kind of ["audio", "video"]) {
      const track = stream?.getTracks().find((t) => t.kind === kind && t.readyState === "live");
      if (!track) continue;
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      preferRecordable(transceiver, kind);
      this.senders.set(kind, transceiver.sender);
    }
    if (!this.senders.size) {
      this.close();
      throw Object.assign(new Error("Nothing to record: no microphone or camera track"), { code: "no_media" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (pc !== this.pc) return;
    const answer = await this.socket.call(this.offerEvent, {
      ...this.ref,
      type: "offer",
      sdp: pc.localDescription.sdp,
    });
    if (pc !== this.pc) return;
    this.placement = answer.placement ?? null;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  /** The call's local media changed (another camera, voice ↔ video): send the new tracks. */
  async replaceStream(stream) {
    for (const [kind, sender] of this.senders) {
      const track = stream?.getTracks().find((t) => t.kind === kind && t.readyState === "live") ?? null;
      if (sender.track !== track) await sender.replaceTrack(track).catch(() => {});
    }
  }

  close() {
    const pc = this.pc;
    this.pc = null;
    this.senders.clear();
    // The tracks belong to the call: only the connection goes.
    pc?.close();
    this.#setState("closed");
  }
}

const REOPEN_AFTER_MS = 1000;
const sharedLegs = new Map(); // socket → Map(consultation id → SharedLeg)

/** The call's one server leg on this page, shared by recording and monitoring. */
export function sharedLeg({ socket, consultationId, token }) {
  let bySocket = sharedLegs.get(socket);
  if (!bySocket) sharedLegs.set(socket, (bySocket = new Map()));
  let leg = bySocket.get(consultationId);
  if (!leg) bySocket.set(consultationId, (leg = new SharedLeg({ socket, consultationId, token })));
  return leg;
}

class SharedLeg extends EventTarget {
  constructor({ socket, consultationId, token }) {
    super();
    this.socket = socket;
    this.consultationId = consultationId;
    this.token = token;
    this.purposes = new Map(); // purpose → { offerEvent, ref }
    this.stream = null;
    this.leg = null;
    this.opening = null;
    socket.on("leg.moved", (moved) => {
      if (moved?.consultation_id === consultationId && moved.placement !== this.leg?.placement) this.reopen();
    });
    socket.onState((state) => {
      if (state === "connected") this.checkPlacement();
    });
  }

  get state() {
    return this.leg?.state ?? "idle";
  }

  /** ``purpose`` needs the leg (with its offer event and reference); opens it if needed. */
  want(purpose, offer, stream) {
    this.purposes.set(purpose, offer);
    if (stream !== undefined && stream !== this.stream) {
      // The call's media changed (another camera, voice ↔ video): the open leg follows it.
      this.stream = stream;
      if (this.leg && stream) this.leg.replaceStream(stream);
    }
    return this.sync();
  }

  release(purpose) {
    this.purposes.delete(purpose);
    return this.sync();
  }

  setStream(stream) {
    this.stream = stream;
    if (this.leg) this.leg.replaceStream(stream);
    return this.sync();
  }

  reopen() {
    const leg = this.leg;
    this.leg = null;
    leg?.close();
    return this.sync();
  }

  async checkPlacement() {
    if (!this.leg?.placement) return;
    try {
      const where = await this.socket.call("leg.placement", { consultation_id: this.consultationId });
      if (where?.placement !== this.leg?.placement) this.reopen();
    } catch {
      // Offline again: the next connect asks again.
    }
  }

  async sync() {
    if (!this.purposes.size || !this.stream) {
      const leg = this.leg;
      this.leg = null;
      leg?.close();
      this.#changed();
      return;
    }
    if (this.leg && !["failed", "closed"].includes(this.leg.state)) return;
    if (this.opening) return this.opening;
    this.opening = this.#open().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  async #open() {
    // The first purpose whose offer the server takes (a monitoring offer is refused once the
    // supervisor left; the recording's may still be wanted).
    for (const [purpose, offer] of [...this.purposes]) {
      const leg = new ServerLeg({ socket: this.socket, token: this.token, ...offer });
      this.leg = leg;
      leg.addEventListener("state", () => {
        this.#changed();
        if (leg.state === "failed" && leg === this.leg) {
          setTimeout(() => leg === this.leg && this.reopen(), REOPEN_AFTER_MS);
        }
      });
      try {
        await leg.open(this.stream);
        this.#changed();
        return;
      } catch (error) {
        if (leg === this.leg) {
          this.leg = null;
          leg.close();
        }
        this.dispatchEvent(new CustomEvent("refused", { detail: { purpose, error } }));
      }
    }
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new CustomEvent("state", { detail: this.state }));
  }
}
