// @ts-check
// The one call engine (docs/browser-contract.md): a browser-to-browser WebRTC call between the
// two parties of a consultation, signalled through call.signal on the page's LiveSocket.
//
// Negotiation is MDN's "perfect negotiation" (the shopper polite, the advisor impolite), with
// three additions that make reloads and lost signals safe:
//  - every signal carries the sender's engine id and peer-connection id (`engine`, `pc`) and,
//    once known, the receiver's peer-connection id (`to`): a signal meant for a peer
//    connection that no longer exists (the page reloaded) is dropped instead of confusing the
//    new one;
//  - a starting engine says `restart` first; the other side drops a peer connection that was
//    negotiated with someone else (keeping its camera and microphone) and offers afresh;
//  - the impolite side makes the first offer; the polite side only offers once a session
//    exists (renegotiation, ICE restart). Call set-up then takes one offer/answer, not a glare.
// Offers are numbered per engine, so an offer received twice (re-sent after a lost signal) is
// answered once.
//
// Video is switched without renegotiating once a video section sends: camera off, voice mode
// and the end of a screen share put no track on the sender (replaceTrack(null)), video mode and
// a share put one back. Whether the other side's picture shows is RemotePicture's call
// (call-picture.js): frames that really arrive, and what the other side says it sends.
import { RemotePicture } from "/shared/call-picture.js";

const STATS_EVERY_MS = 2_000;
const RECONNECT_GIVE_UP_MS = 20_000;
const SIGNAL_TIMEOUT_MS = 10_000;
const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };

function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID().replaceAll("-", "");
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function mediaError(error) {
  return { name: error?.name ?? "Error", message: String(error?.message ?? error ?? "") };
}

function cleanIceServers(list) {
  // The API gives {urls, username, credential, credentialType}; nulls are left out because
  // RTCPeerConnection rejects a TURN entry with a null credential.
  return (Array.isArray(list) ? list : [])
    .filter((server) => server && server.urls && (!Array.isArray(server.urls) || server.urls.length))
    .map((server) => {
      const clean = { urls: server.urls };
      if (server.username != null) clean.username = server.username;
      if (server.credential != null) clean.credential = server.credential;
      return clean;
    });
}

export class CallEngine extends EventTarget {
  #socket;
  #consultationId;
  #polite;
  #token;
  #iceServers = null;
  #state = "idle";
  #closed = false;
  #ready = null;
  #offs = [];
  #signals = Promise.resolve();

  #pc = null;
  #pcId = null;
  #peerPc = null; // the remote peer connection this one negotiates with
  #lastRemoteOffer = 0;
  #offerSeq = 0;
  #pendingOffer = 0; // number of our offer awaiting an answer
  #makingOffer = false;
  #ignoreOffer = false;

  #local = new MediaStream();
  #remote = new MediaStream();
  #audioTrack = null;
  #cameraTrack = null;
  #screenTrack = null;
  #screenStream = null;
  #ownTracks = new Set(); // tracks this engine opened (and so stops)
  #mode = "video";
  #muted = false;
  #cameraOff = false;
  #devicePrefs = { audioinput: null, videoinput: null };
  #audioOutput = null;
  #picture = new RemotePicture((detail) => this.#emit("remotevideo", detail));

  #everConnected = false;
  #giveUpTimer = null;
  #socketWasDown = false;
  #statsTimer = null;
  #statsBusy = false;
  #baseline = null;
  #quality = null;

  /**
   * @param {object} options
   * @param {import("./socket.js").LiveSocket} options.socket the page's socket
   * @param {string} options.consultationId
   * @param {boolean} [options.polite] true for the shopper (default: socket.role === "shopper")
   * @param {string} [options.token] visitor token for GET /api/v1/ice-servers (shopper;
   *   default: the socket's token). Staff pages use their session cookie.
   * @param {RTCIceServer[]} [options.iceServers] skip the fetch (tests, a page that has them)
   */
  constructor({ socket, consultationId, polite, token, iceServers }) {
    super();
    if (!socket || !consultationId) throw new TypeError("CallEngine needs {socket, consultationId}");
    this.#socket = socket;
    this.#consultationId = String(consultationId);
    this.#polite = polite ?? socket.role === "shopper";
    this.#token = token ?? socket.token ?? null;
    if (iceServers) this.#iceServers = cleanIceServers(iceServers);
    /** This engine's id on the wire: a reloaded page is a new engine. */
    this.id = randomId();
  }

  get state() {
    return this.#state;
  }

  get mode() {
    return this.#mode;
  }

  get muted() {
    return this.#muted;
  }

  get cameraOff() {
    return this.#cameraOff;
  }

  get sharingScreen() {
    return !!this.#screenTrack;
  }

  get localStream() {
    return this.#local;
  }

  get remoteStream() {
    return this.#remote;
  }

  /** The other side's picture shows: its frames arrive and it has not switched it off. */
  get remoteVideo() {
    return this.#picture.active;
  }

  /** What the other side says it sends: "camera" | "screen" | "none", or null (not said yet). */
  get remotePicture() {
    return this.#picture.picture;
  }

  /** The current RTCPeerConnection (diagnostics and tests; it is replaced on a restart). */
  get peerConnection() {
    return this.#pc;
  }

  /** The audio output chosen with useDevice("audiooutput", id), for HTMLMediaElement.setSinkId. */
  get audioOutput() {
    return this.#audioOutput;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #setState(state) {
    if (this.#state === state || (this.#state === "closed" && state !== "closed")) return;
    this.#state = state;
    this.#emit("state", state);
  }

  #error(name, message, extra = {}) {
    this.#emit("error", { name, message, ...extra });
  }

  // ---------------------------------------------------------------------------- start

  /**
   * Open camera/microphone, fetch ICE servers, then negotiate. Resolves with the local stream
   * (possibly without the tracks that could not be opened: "error" events say why — a call
   * still connects to see and hear the other side).
   * @param {{audio?: boolean, video?: boolean, stream?: MediaStream}} [options] `stream`: media
   *   the page already opened (a preview); the engine uses it and does not stop it.
   */
  start({ audio = true, video = true, stream = null } = {}) {
    if (this.#ready) return this.#ready;
    this.#setState("connecting");
    // Listen before anything is awaited: an offer that arrives while the camera opens is
    // queued behind #ready, not lost.
    this.#offs.push(
      this.#socket.on("call.signal", (message) => this.#onSignal(message)),
      this.#socket.onState((state) => this.#onSocketState(state)),
    );
    this.#ready = (async () => {
      const [servers] = await Promise.all([this.#loadIceServers(), this.#openMedia({ audio, video, stream })]);
      if (this.#closed) {
        // Hung up while the camera was opening: #finish ran before these tracks existed.
        for (const track of this.#ownTracks) track.stop();
        return this.#local;
      }
      this.#iceServers = servers;
      this.#emit("localstream", this.#local);
      // restart goes out before the first offer (one socket keeps the order): the other side
      // forgets a peer connection from an earlier page of ours first.
      this.#pcId = randomId();
      this.#send("restart", {});
      this.#createPeerConnection(this.#pcId);
      this.#startStats();
      return this.#local;
    })();
    return this.#ready;
  }

  async #loadIceServers() {
    if (this.#iceServers) return this.#iceServers;
    const headers = { Accept: "application/json" };
    if (this.#token) headers.Authorization = `Bearer ${this.#token}`;
    try {
      const response = await fetch("/api/v1/ice-servers", { headers, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      return cleanIceServers(body.ice_servers);
    } catch (error) {
      // No public STUN fallback, by design: on one network (or with the page's TURN down) a
      // call may still connect on host candidates.
      this.#error("IceServersError", String(error?.message ?? error));
      return [];
    }
  }

  async #openMedia({ audio, video, stream }) {
    if (stream) {
      this.#audioTrack = stream.getAudioTracks()[0] ?? null;
      this.#cameraTrack = stream.getVideoTracks()[0] ?? null;
    } else {
      const opened = await this.#getUserMedia({ audio, video });
      this.#audioTrack = opened?.getAudioTracks()[0] ?? null;
      this.#cameraTrack = opened?.getVideoTracks()[0] ?? null;
      for (const track of opened?.getTracks() ?? []) this.#ownTracks.add(track);
    }
    // The mode says what is sent: without a camera track this side is on voice until
    // setMode("video") gets one.
    this.#mode = this.#cameraTrack ? "video" : "voice";
    for (const track of [this.#audioTrack, this.#cameraTrack]) if (track) this.#local.addTrack(track);
  }

  async #getUserMedia({ audio, video }) {
    if (!audio && !video) return null;
    if (!navigator.mediaDevices?.getUserMedia) {
      this.#error("NotSupportedError", "Camera and microphone need a secure (https) page", { kind: "media" });
      return null;
    }
    const constraints = {
      audio: audio ? this.#constraint("audioinput", true) : false,
      video: video ? this.#constraint("videoinput", VIDEO) : false,
    };
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      this.#error(error?.name ?? "Error", String(error?.message ?? ""), {
        kind: "media",
        audio: !!audio,
        video: !!video,
      });
      // No camera (or it is busy) should not also cost the voice: try the microphone alone.
      if (audio && video && error?.name !== "NotAllowedError") {
        try {
          return await navigator.mediaDevices.getUserMedia({ audio: constraints.audio });
        } catch (again) {
          const detail = { kind: "media", audio: true, video: false };
          this.#error(again?.name ?? "Error", String(again?.message ?? ""), detail);
        }
      }
      return null;
    }
  }

  #constraint(kind, base) {
    const id = this.#devicePrefs[kind];
    if (!id) return base;
    return { ...(base === true ? {} : base), deviceId: { exact: id } };
  }

  // ---------------------------------------------------------------------------- peer connection

  #createPeerConnection(pcId) {
    let pc;
    /** @type {RTCConfiguration} */
    const config = { iceServers: this.#iceServers ?? [], bundlePolicy: "max-bundle" };
    try {
      pc = new RTCPeerConnection(config);
    } catch (error) {
      // A malformed server entry must not cost the call: go on without ICE servers.
      this.#error("IceServersError", String(error?.message ?? error));
      pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    }
    this.#pc = pc;
    this.#pcId = pcId;
    this.#peerPc = null;
    this.#lastRemoteOffer = 0;
    this.#pendingOffer = 0;
    this.#makingOffer = false;
    this.#ignoreOffer = false;

    // The picture channel is negotiated with the first offer (its m=application section).
    this.#picture.attach(pc);
    this.#picture.say(this.#pictureKind());
    const video = this.#outgoingVideo();
    if (this.#audioTrack) pc.addTrack(this.#audioTrack, this.#local);
    if (video) pc.addTrack(video, this.#local);
    if (!this.#polite) {
      // The offer always has an audio and a video section, so the other side can send what
      // it has even when this side sends nothing (voice mode, camera blocked). Only the
      // impolite side may: the polite side's own transceivers must stay addTrack ones, which
      // the first remote offer takes over instead of asking for a second negotiation.
      if (!this.#audioTrack) pc.addTransceiver("audio", { direction: "recvonly" });
      if (!video) pc.addTransceiver("video", { direction: "recvonly" });
    }

    pc.addEventListener("track", ({ track }) => {
      if (pc !== this.#pc) return;
      this.#remote.addTrack(track);
      track.addEventListener("ended", () => {
        this.#remote.removeTrack(track);
        this.#emit("remotestream", this.#remote);
      });
      this.#emit("remotestream", this.#remote);
    });
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (pc === this.#pc && candidate) this.#send("candidate", { candidate: candidate.toJSON() });
    });
    pc.addEventListener("negotiationneeded", () => this.#negotiate(pc));
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc !== this.#pc) return;
      const ice = pc.iceConnectionState;
      // A session exists (remote description) and its path broke: new ICE credentials,
      // through a fresh offer from whichever side gets there (glare is handled).
      if ((ice === "disconnected" || ice === "failed") && pc.remoteDescription) pc.restartIce();
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.#pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        this.#everConnected = true;
        clearTimeout(this.#giveUpTimer);
        this.#giveUpTimer = null;
        this.#setState("connected");
      } else if (state === "disconnected" || state === "failed") {
        this.#reconnecting();
      }
    });
  }

  /** The track the video sender should carry: the shared screen over the camera; none when
   * the camera is off (a disabled track would send black frames: a black box over there). */
  #outgoingVideo() {
    if (this.#screenTrack) return this.#screenTrack;
    return this.#mode === "video" && !this.#cameraOff ? this.#cameraTrack : null;
  }

  #pictureKind() {
    if (this.#screenTrack) return "screen";
    return this.#outgoingVideo() ? "camera" : "none";
  }

  /** Put the outgoing picture on the video sender and tell the other side what it is. */
  async #syncVideo() {
    const track = this.#outgoingVideo();
    // Said first: the other side shows the avatar at once, not after the last frames.
    this.#picture.say(this.#pictureKind());
    if (track) {
      await this.#sendTrack(track);
      return;
    }
    const sender = this.#transceiver("video")?.sender;
    // No track, no frames, and no renegotiation (the section keeps its direction).
    if (sender?.track) await sender.replaceTrack(null);
  }

  #reconnecting() {
    if (!this.#everConnected || this.#closed) return;
    this.#setState("reconnecting");
    if (!this.#giveUpTimer) {
      this.#giveUpTimer = setTimeout(() => {
        this.#giveUpTimer = null;
        if (this.#pc?.connectionState !== "connected") this.#setState("failed");
      }, RECONNECT_GIVE_UP_MS);
    }
  }

  /** A fresh peer connection, keeping local media (the other side restarted or reloaded). */
  #recreate(peerPc) {
    const old = this.#pc;
    this.#pc = null;
    old?.close();
    for (const track of this.#remote.getTracks()) this.#remote.removeTrack(track);
    this.#emit("remotestream", this.#remote);
    this.#reconnecting();
    this.#createPeerConnection(randomId());
    this.#peerPc = peerPc;
  }

  async #negotiate(pc) {
    if (pc !== this.#pc || this.#closed) return;
    // The impolite side opens the session; see the top of this file.
    if (this.#polite && !pc.remoteDescription) return;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      // A remote offer may have rolled ours back meanwhile (polite side): send nothing then.
      if (pc !== this.#pc || pc.signalingState !== "have-local-offer") return;
      this.#offerSeq += 1;
      this.#pendingOffer = this.#offerSeq;
      this.#send("offer", { description: pc.localDescription.toJSON(), offer: this.#offerSeq });
    } catch (error) {
      this.#error("NegotiationError", String(error?.message ?? error));
    } finally {
      // Only for this peer connection: a replaced one must not clear its successor's flag.
      if (pc === this.#pc) this.#makingOffer = false;
    }
  }

  #resendOffer() {
    const pc = this.#pc;
    if (pc?.signalingState !== "have-local-offer" || !this.#pendingOffer) return;
    // pc.localDescription carries the candidates gathered so far, so none are lost.
    this.#send("offer", { description: pc.localDescription.toJSON(), offer: this.#pendingOffer });
  }

  #send(type, data) {
    const message = {
      consultation_id: this.#consultationId,
      type,
      data: { ...data, engine: this.id, pc: this.#pcId, to: this.#peerPc },
    };
    // Not awaited: signals go out in call order on one socket; awaiting each ack would only
    // slow call set-up. Lost ones are recovered by restart / ICE restart after a reconnect.
    this.#socket.call("call.signal", message, { timeoutMs: SIGNAL_TIMEOUT_MS }).catch((error) => {
      if (!error?.transient && !this.#closed) {
        this.#error("SignalError", error?.message ?? "", { code: error?.code });
      }
    });
  }

  // ---------------------------------------------------------------------------- signals in

  #onSignal(message) {
    if (!message || message.consultation_id !== this.#consultationId || this.#closed) return;
    // One at a time, in arrival order: each step awaits the peer connection.
    this.#signals = this.#signals
      .then(() => this.#ready)
      .then(() => this.#handle(message))
      .catch((error) => this.#error("NegotiationError", String(error?.message ?? error)));
  }

  async #handle({ type, data }) {
    if (this.#closed || !this.#pc) return;
    if (type === "hangup") {
      this.#finish();
      return;
    }
    const signal = data ?? {};
    if (signal.engine === this.id) return;
    // Meant for a peer connection of ours that is gone (sent before our restart reached them).
    if (signal.to && signal.to !== this.#pcId) return;
    if (type === "restart") await this.#onRestart(signal);
    else if (type === "offer") await this.#onOffer(signal);
    else if (type === "answer") await this.#onAnswer(signal);
    else if (type === "candidate") await this.#onCandidate(signal);
  }

  async #onRestart(signal) {
    const pc = this.#pc;
    if (pc.remoteDescription && signal.pc !== this.#peerPc) {
      // Our session was with a peer connection that no longer exists: start over.
      this.#recreate(signal.pc);
      return;
    }
    if (pc.remoteDescription) {
      // The same peer connection says hello again (its socket came back without media):
      // whatever it missed, a fresh offer or an ICE restart brings back.
      if (!this.#polite) {
        if (pc.signalingState === "have-local-offer") this.#resendOffer();
        else pc.restartIce();
      }
      return;
    }
    // Nothing negotiated yet: now we know whom to talk to. An offer already made went to
    // nobody (or to their previous page), so it goes again.
    if (this.#peerPc !== signal.pc) {
      this.#peerPc = signal.pc;
      this.#lastRemoteOffer = 0;
    }
    if (!this.#polite) this.#resendOffer();
  }

  async #onOffer(signal) {
    let pc = this.#pc;
    if (signal.pc !== this.#peerPc && pc.remoteDescription) {
      // A different peer connection (we missed its restart): a new session.
      this.#recreate(signal.pc);
      pc = this.#pc;
    }
    if (signal.pc !== this.#peerPc) {
      this.#peerPc = signal.pc;
      this.#lastRemoteOffer = 0;
    }
    if (signal.offer <= this.#lastRemoteOffer) {
      // Seen already (re-sent after a restart hello): repeat our answer in case it was lost.
      const answered = pc.signalingState === "stable" && pc.localDescription?.type === "answer";
      if (signal.offer === this.#lastRemoteOffer && answered) {
        this.#send("answer", { description: pc.localDescription.toJSON(), offer: signal.offer });
      }
      return;
    }
    const collision = this.#makingOffer || pc.signalingState !== "stable";
    this.#ignoreOffer = !this.#polite && collision;
    if (this.#ignoreOffer) {
      // Glare: the polite side yields to our offer — unless it never got it (lost while its
      // socket was down), so send it again; a copy it already has is answered once.
      if (!this.#makingOffer) this.#resendOffer();
      return;
    }
    this.#lastRemoteOffer = signal.offer;
    if (pc.signalingState === "have-local-offer") {
      await pc.setLocalDescription({ type: "rollback" });
      this.#pendingOffer = 0;
    }
    await pc.setRemoteDescription(signal.description); // (implicit rollback if still making one)
    this.#pendingOffer = 0;
    await pc.setLocalDescription();
    if (pc !== this.#pc) return;
    this.#send("answer", { description: pc.localDescription.toJSON(), offer: signal.offer });
  }

  async #onAnswer(signal) {
    const pc = this.#pc;
    // Only the answer to the offer we are waiting on; a late duplicate is dropped.
    if (pc.signalingState !== "have-local-offer" || signal.offer !== this.#pendingOffer) return;
    if (this.#peerPc && signal.pc !== this.#peerPc) return;
    this.#peerPc = signal.pc;
    this.#pendingOffer = 0;
    await pc.setRemoteDescription(signal.description);
  }

  async #onCandidate(signal) {
    if (this.#peerPc && signal.pc !== this.#peerPc) return; // from a peer connection we left
    try {
      await this.#pc.addIceCandidate(signal.candidate);
    } catch (error) {
      // Candidates of an offer we ignored (glare), or raced past a restart: expected.
      if (!this.#ignoreOffer && this.#pc.remoteDescription) {
        this.#error("CandidateError", String(error?.message ?? error));
      }
    }
  }

  // ---------------------------------------------------------------------------- socket

  #onSocketState(state) {
    if (this.#closed) return;
    if (state === "connecting") return; // first connect: signals wait in socket.io's buffer
    if (state !== "connected") {
      this.#socketWasDown = true;
      return;
    }
    if (!this.#socketWasDown) return;
    this.#socketWasDown = false;
    // Back after a drop: signals may have been lost. A connected call needs nothing; one that
    // is not restarts (queued behind #ready and any signal being handled).
    this.#signals = this.#signals
      .then(() => this.#ready)
      .then(() => this.#recoverAfterSocket())
      .catch((error) => this.#error("NegotiationError", String(error?.message ?? error)));
  }

  async #recoverAfterSocket() {
    const pc = this.#pc;
    if (!pc || this.#closed || pc.connectionState === "connected") return;
    if (!pc.remoteDescription) {
      // Nothing negotiated: say hello again (the impolite side also re-sends its offer).
      this.#send("restart", {});
      if (!this.#polite) this.#resendOffer();
      return;
    }
    if (pc.signalingState === "have-local-offer") {
      // Our offer (or its answer) may be lost: withdraw it and make a fresh one.
      await pc.setLocalDescription({ type: "rollback" });
      this.#pendingOffer = 0;
    }
    pc.restartIce();
  }

  // ---------------------------------------------------------------------------- controls

  setMuted(muted) {
    this.#muted = !!muted;
    if (this.#audioTrack) this.#audioTrack.enabled = !this.#muted;
  }

  /** Resolves once the sender follows (callers need not wait: the state is set at once). */
  setCameraOff(off) {
    this.#cameraOff = !!off;
    if (this.#cameraTrack) this.#cameraTrack.enabled = !this.#cameraOff;
    return this.#syncVideo().catch((error) => this.#error("NegotiationError", String(error?.message ?? error)));
  }

  #transceiver(kind) {
    return this.#pc
      ?.getTransceivers()
      .find((t) => !t.stopped && t.receiver.track?.kind === kind && t.direction !== "stopped");
  }

  /** Send this track, reusing the section of its kind when there is one (no new m-line). */
  async #sendTrack(track) {
    const pc = this.#pc;
    if (!pc) return;
    const transceiver = this.#transceiver(track.kind);
    if (!transceiver) {
      pc.addTrack(track, this.#local); // renegotiates
      return;
    }
    if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    transceiver.sender.setStreams?.(this.#local);
    // Back from voice (recvonly): a direction change renegotiates through negotiationneeded.
    if (transceiver.direction === "recvonly") transceiver.direction = "sendrecv";
    else if (transceiver.direction === "inactive") transceiver.direction = "sendonly";
  }

  /**
   * "voice": stop and drop the camera (the other side stops receiving video; no
   * renegotiation). "video": open the camera again and send it. Resolves true, or false when
   * the camera could not be opened (an "error" event says why).
   */
  async setMode(mode) {
    if (mode !== "voice" && mode !== "video") throw new TypeError(`unknown mode ${mode}`);
    await this.#ready;
    if (this.#closed) return false;
    if (mode === "voice") {
      this.#mode = "voice";
      const camera = this.#cameraTrack;
      this.#cameraTrack = null;
      if (camera) {
        this.#local.removeTrack(camera);
        camera.stop();
        this.#ownTracks.delete(camera);
      }
      await this.#syncVideo();
      this.#emit("localstream", this.#local);
      this.#emit("mode", this.#mode);
      return true;
    }
    if (this.#mode === "video" && this.#cameraTrack) return true;
    const stream = await this.#getUserMedia({ audio: false, video: true });
    const track = stream?.getVideoTracks()[0];
    if (!track || this.#closed) {
      track?.stop();
      return false;
    }
    this.#ownTracks.add(track);
    track.enabled = !this.#cameraOff;
    this.#cameraTrack = track;
    this.#local.addTrack(track);
    this.#mode = "video";
    await this.#syncVideo();
    this.#emit("localstream", this.#local);
    this.#emit("mode", this.#mode);
    return true;
  }

  /** Share a screen or window in place of the camera. Resolves true, or false when refused
   * (an "error" event says why). Ends by itself when the browser's "stop sharing" is used. */
  async shareScreen() {
    await this.#ready;
    if (this.#closed) return false;
    if (this.#screenTrack) return true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      this.#error(error?.name ?? "Error", String(error?.message ?? ""), { kind: "screen" });
      return false;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return false;
    // Text and slides stay sharp rather than smooth.
    if ("contentHint" in track) track.contentHint = "detail";
    track.addEventListener("ended", () => this.stopScreenShare());
    this.#screenTrack = track;
    this.#screenStream = stream;
    await this.#syncVideo();
    this.#emit("screenshare", { active: true, stream });
    return true;
  }

  async stopScreenShare() {
    const track = this.#screenTrack;
    if (!track) return;
    this.#screenTrack = null;
    this.#screenStream = null;
    track.stop();
    if (this.#closed) return;
    await this.#syncVideo();
    this.#emit("screenshare", { active: false, stream: null });
  }

  /** {audioinput: [], videoinput: [], audiooutput: []} of {deviceId, groupId, label}. */
  async devices() {
    const found = { audioinput: [], videoinput: [], audiooutput: [] };
    const list = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
    for (const device of list) {
      found[device.kind]?.push({ deviceId: device.deviceId, groupId: device.groupId, label: device.label });
    }
    return found;
  }

  /**
   * Switch microphone or camera (replaceTrack: no renegotiation), or choose the speaker
   * ("audiooutput": kept in `audioOutput` and announced with an "audiooutput" event, since
   * the page owns the media elements that play it). Resolves true, or false on failure.
   */
  async useDevice(kind, deviceId) {
    if (kind === "audiooutput") {
      this.#audioOutput = deviceId;
      this.#emit("audiooutput", deviceId);
      return true;
    }
    if (kind !== "audioinput" && kind !== "videoinput") throw new TypeError(`unknown device kind ${kind}`);
    await this.#ready;
    this.#devicePrefs[kind] = deviceId;
    if (this.#closed) return false;
    // In voice mode the camera choice waits for setMode("video").
    if (kind === "videoinput" && this.#mode !== "video") return true;
    const audio = kind === "audioinput";
    const stream = await this.#getUserMedia({ audio, video: !audio });
    const track = audio ? stream?.getAudioTracks()[0] : stream?.getVideoTracks()[0];
    if (!track || this.#closed) {
      track?.stop();
      return false;
    }
    this.#ownTracks.add(track);
    const old = audio ? this.#audioTrack : this.#cameraTrack;
    track.enabled = audio ? !this.#muted : !this.#cameraOff;
    if (audio) this.#audioTrack = track;
    else this.#cameraTrack = track;
    if (old) this.#local.removeTrack(old);
    this.#local.addTrack(track);
    if (audio) {
      const sender = this.#pc?.getSenders().find((s) => s.track && s.track === old);
      if (sender) await sender.replaceTrack(track);
      else await this.#sendTrack(track);
    } else {
      await this.#syncVideo(); // the camera stays off (no track sent) if it was off
    }
    if (old && this.#ownTracks.has(old)) {
      old.stop();
      this.#ownTracks.delete(old);
    }
    this.#emit("localstream", this.#local);
    return true;
  }

  // ---------------------------------------------------------------------------- stats

  #startStats() {
    this.#statsTimer = setInterval(async () => {
      if (this.#statsBusy) return;
      this.#statsBusy = true;
      try {
        const snapshot = await this.#collect(true);
        if (snapshot && !this.#closed) {
          this.#quality = snapshot;
          this.#emit("quality", snapshot);
        }
      } catch {
        // a peer connection replaced mid-read; the next tick reads the new one
      } finally {
        this.#statsBusy = false;
      }
    }, STATS_EVERY_MS);
  }

  /** A fresh quality snapshot ({level, rttMs, packetLoss, jitterMs, framesDecoded,
   * framesPerSecond, audioLevel, audioPacketsReceived, videoPacketsReceived, at}). */
  async stats() {
    return (await this.#collect(false)) ?? this.#quality;
  }

  async #collect(moveBaseline) {
    const pc = this.#pc;
    if (!pc) return null;
    const report = await pc.getStats();
    const totals = {
      framesDecoded: 0,
      framesPerSecond: 0,
      videoPacketsReceived: 0,
      audioPacketsReceived: 0,
      packetsLost: 0,
      jitter: 0,
      audioLevel: null,
      bytesReceived: 0,
    };
    let selectedPair = null;
    const pairs = [];
    report.forEach((s) => {
      if (s.type === "inbound-rtp") {
        totals.packetsLost += s.packetsLost ?? 0;
        totals.bytesReceived += s.bytesReceived ?? 0;
        totals.jitter = Math.max(totals.jitter, s.jitter ?? 0);
        if (s.kind === "video") {
          totals.framesDecoded += s.framesDecoded ?? 0;
          totals.framesPerSecond += s.framesPerSecond ?? 0;
          totals.videoPacketsReceived += s.packetsReceived ?? 0;
        } else if (s.kind === "audio") {
          totals.audioPacketsReceived += s.packetsReceived ?? 0;
          if (typeof s.audioLevel === "number") totals.audioLevel = Math.max(totals.audioLevel ?? 0, s.audioLevel);
        }
      } else if (s.type === "transport" && s.selectedCandidatePairId) {
        selectedPair = report.get(s.selectedCandidatePairId) ?? null;
      } else if (s.type === "candidate-pair") {
        pairs.push(s);
      }
    });
    selectedPair ??= pairs.find((p) => p.nominated && p.state === "succeeded") ?? null;
    const rtt = selectedPair?.currentRoundTripTime;
    const received = totals.videoPacketsReceived + totals.audioPacketsReceived;
    const base = this.#baseline?.pc === pc ? this.#baseline : null;
    let packetLoss = 0;
    if (base) {
      const lost = Math.max(0, totals.packetsLost - base.packetsLost);
      const got = Math.max(0, received - base.received);
      packetLoss = lost + got > 0 ? lost / (lost + got) : 0;
    }
    if (moveBaseline) this.#baseline = { pc, packetsLost: totals.packetsLost, received };
    const rttMs = typeof rtt === "number" ? Math.round(rtt * 1000) : null;
    const jitterMs = Math.round(totals.jitter * 1000);
    let level = "good";
    if (pc.connectionState !== "connected" || packetLoss > 0.1 || (rttMs ?? 0) > 600) level = "poor";
    else if (packetLoss > 0.03 || (rttMs ?? 0) > 300 || jitterMs > 50) level = "fair";
    return {
      level,
      rttMs,
      packetLoss,
      jitterMs,
      framesDecoded: totals.framesDecoded,
      framesPerSecond: totals.framesPerSecond,
      audioLevel: totals.audioLevel,
      audioPacketsReceived: totals.audioPacketsReceived,
      videoPacketsReceived: totals.videoPacketsReceived,
      bytesReceived: totals.bytesReceived,
      at: Date.now(),
    };
  }

  // ---------------------------------------------------------------------------- end

  /** End the call: tells the other side (call.signal hangup), closes, stops our media.
   * {signal: false} closes here only (e.g. the consultation already ended). */
  hangup({ signal = true } = {}) {
    if (this.#closed) return;
    if (signal && this.#ready) this.#send("hangup", {});
    this.#finish();
  }

  #finish() {
    if (this.#closed) return;
    this.#closed = true;
    this.#picture.stop();
    clearInterval(this.#statsTimer);
    clearTimeout(this.#giveUpTimer);
    for (const off of this.#offs) off();
    this.#offs = [];
    this.#pc?.close();
    this.#screenTrack?.stop();
    for (const track of this.#ownTracks) track.stop();
    this.#ownTracks.clear();
    this.#setState("closed");
  }
}
