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
// its ack with {type: "answer", sdp}: the offer waits for ICE gathering so nothing trickles.
// ICE servers come from GET /api/v1/ice-servers, as for the call (never a public default).

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
