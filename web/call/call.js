// @ts-check
// /call/?c=<consultation id> — the shopper's consultation: device check, the call (video or
// voice) with chat beside it, or chat alone; resumes after a reload. The visitor token comes
// from this tab's sessionStorage (put there by /widget/).
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";
import { LiveSocket } from "/shared/socket.js";
import { ChatPanel } from "/call/chat.js";
import { PaymentSheet } from "/shared/payment-sheet.js";
import { RecordingPanel } from "/shared/recording.js";
import { MonitoringNotice } from "/shared/monitoring-notice.js";
import { showCsat } from "/call/csat.js";
import { Preview, fillSelect, listDevices, trackDeviceId, watchPermissions } from "/call/preview.js";
import {
  render,
  renderBanner,
  renderCall,
  renderIndicators,
  renderPreview,
  renderStage,
  showView,
} from "/call/render.js";
import {
  $,
  CALL_KINDS,
  NARROW,
  PERMISSION_ERRORS,
  consultationId,
  forget,
  isWaiting,
  joinMode,
  save,
  saved,
  state,
} from "/call/state.js";
import {
  advisorName,
  connectHost,
  fetchAdvisors,
  postToHost,
  readPlace,
  readVisitor,
  savePlace,
  takeEmbedParams,
} from "/shared/shopper.js";

let timer = 0;

// ------------------------------------------------------------------ the consultation

async function refresh() {
  try {
    apply(await state.socket.call("consultation.get", { consultation_id: consultationId }));
  } catch (error) {
    if (["consultation_not_found", "not_a_party", "validation_failed"].includes(error?.code)) {
      state.missing = error.code === "validation_failed" ? "not_found" : error.code.replace("consultation_", "");
      showView("missing");
      return;
    }
    console.warn("livedesk: consultation.get failed", error);
  }
}

async function loadAdvisor() {
  const id = state.consultation?.advisor_id ?? state.consultation?.nominated_advisor_id;
  if (!id || state.advisor?.id === id) return;
  try {
    state.advisor = (await fetchAdvisors()).find((a) => a.id === id) ?? null;
    render();
  } catch {
    // the name is a nicety: "your advisor" will do
  }
}

function apply(c) {
  if (!c || c.id !== consultationId) return;
  const previous = state.consultation;
  state.consultation = c;
  loadAdvisor();
  let hostState = "idle";
  if (c.status === "active") hostState = "in_consultation";
  else if (isWaiting(c)) hostState = "queued";
  postToHost({ type: "livedesk:state", state: hostState });
  switch (c.status) {
    case "requested":
    case "queued":
    case "offered":
      if (state.chatOnly && saved().chatOnly) showChat();
      else if (!["preview", "denied", "call"].includes(state.view)) openPreview();
      else render();
      return;
    case "active":
      return applyActive(c, previous);
    case "wrap_up":
    case "closed":
      finish("ended");
      return;
    default:
      if (state.view === "ended") return; // already said (e.g. "you left the queue")
      finish(previous?.status === "active" ? "ended" : "gone");
  }
}

function applyActive(c, previous) {
  const memory = saved();
  if (c.kind === "chat") {
    // A chat: no media unless the shopper starts a call from here.
    dropEngine();
    showChat();
    return;
  }
  if (state.engine && !state.chatOnly) {
    // In the call already: follow a voice↔video switch made on the advisor's side.
    if (c.kind !== state.mode && previous?.kind !== c.kind) applyMode(c.kind).catch(() => {});
    render();
    return;
  }
  if (state.startingCall) return;
  if (memory.joined && !memory.chatOnly) {
    // A reload mid-call: straight back in (the engine sends "restart"; chat.sync replays).
    startCall(c.kind);
    return;
  }
  if (previous?.kind === "chat" && CALL_KINDS.includes(c.kind)) {
    // The advisor turned the chat into a call: ask before opening camera and microphone.
    state.invited = true;
    state.chatOnly = false;
    openPreview(c.kind);
    return;
  }
  if (memory.chatOnly || state.chatOnly) {
    state.chatOnly = true;
    showChat();
    return;
  }
  if (["preview", "denied"].includes(state.view)) render();
  else openPreview(c.kind);
}

function finishQuietly() {
  stopTimer();
  dropEngine();
  state.preview?.stop();
}

function finish(how) {
  stopTimer();
  dropEngine();
  state.preview?.stop();
  forget();
  state.ended = how;
  state.needsSound = false;
  postToHost({ type: "livedesk:state", state: "idle" });
  showView("ended");
  // The post-call survey, once the consultation really happened.
  if (how === "ended") showCsat($("csat"), { consultationId, token: state.visitor?.token });
}

// ------------------------------------------------------------------ preview

async function openPreview(kind) {
  if (kind) {
    for (const input of document.querySelectorAll(/** @type {"input"} */ ('input[name="join-mode"]'))) input.checked = input.value === kind;
  }
  state.previewError = null;
  showView("preview");
  await startPreview();
}

async function startPreview() {
  const video = joinMode() === "video";
  try {
    const stream = await state.preview.start({ video, cameraId: state.devices.camera, micId: state.devices.mic });
    if (!stream) return; // superseded: the page moved on meanwhile
    state.previewError = null;
    state.devices.mic = trackDeviceId(stream, "audioinput") || state.devices.mic;
    if (video) state.devices.camera = trackDeviceId(stream, "videoinput") || state.devices.camera;
  } catch (error) {
    if (PERMISSION_ERRORS.includes(error?.name)) {
      showDenied();
      return;
    }
    // No camera, or the camera is busy in another app: voice or chat still work.
    state.previewError = { name: error?.name ?? "Error", message: error?.message ?? "" };
  }
  await fillDevices(["camera-select", "mic-select"]);
  render();
}

async function fillDevices([cameraId, micId]) {
  const devices = await listDevices(state.engine);
  fillSelect($(cameraId), devices.videoinput ?? [], state.devices.camera, (n) => t("call.camera_n", { n }));
  fillSelect($(micId), devices.audioinput ?? [], state.devices.mic, (n) => t("call.microphone_n", { n }));
}

function showDenied() {
  state.preview?.stop();
  state.startingCall = false;
  showView("denied");
}

// ------------------------------------------------------------------ the call

async function makeEngine() {
  const { CallEngine } = await import("/shared/call.js");
  const engine = new CallEngine({ socket: state.socket, consultationId, polite: true, token: state.visitor.token });
  engine.addEventListener("state", (/** @type {CustomEvent} */ event) => onCallState(engine, event.detail));
  engine.addEventListener("localstream", (/** @type {CustomEvent} */ event) => {
    if (engine !== state.engine) return;
    $("self-video").srcObject = event.detail;
    $("self-video").play?.().catch(() => {});
    releaseHandedTracks();
    state.recording?.setStream(event.detail);
    state.monitoring?.setStream(event.detail);
  });
  engine.addEventListener("remotestream", (/** @type {CustomEvent} */ event) => engine === state.engine && attachRemote(event.detail));
  engine.addEventListener("remotevideo", (/** @type {CustomEvent} */ event) => {
    if (engine !== state.engine) return;
    state.remoteVideo = event.detail.active;
    state.remotePicture = event.detail.picture;
    if (state.view === "call") renderStage();
  });
  engine.addEventListener("mode", (/** @type {CustomEvent} */ event) => {
    if (engine !== state.engine) return;
    state.mode = event.detail;
    render();
  });
  engine.addEventListener("screenshare", (/** @type {CustomEvent} */ event) => {
    if (engine !== state.engine) return;
    state.sharing = Boolean(event.detail?.active);
    render();
  });
  engine.addEventListener("quality", (/** @type {CustomEvent} */ event) => {
    if (engine !== state.engine) return;
    state.quality = event.detail;
    renderIndicators();
  });
  engine.addEventListener("error", (/** @type {CustomEvent} */ event) => engine === state.engine && onEngineError(event.detail));
  return engine;
}

/** Drop our engine without telling the advisor (their side keeps waiting for a restart). */
function dropEngine() {
  state.recording?.callEnded();
  state.monitoring?.callEnded();
  state.engine?.hangup({ signal: false });
  state.engine = null;
  state.callState = "idle";
  state.quality = null;
  state.sharing = false;
  state.remoteVideo = false;
  state.remotePicture = null;
  releaseHandedTracks(true);
}

/**
 * The preview's stream goes to the engine (no second camera prompt, the chosen devices
 * stay); the engine does not stop media it did not open, so we stop what it no longer uses.
 */
function releaseHandedTracks(all = false) {
  const inUse = new Set(all || !state.engine ? [] : state.engine.localStream.getTracks());
  state.handed = state.handed.filter((track) => {
    if (inUse.has(track)) return true;
    track.stop();
    return false;
  });
}

function onCallState(engine, callState) {
  if (engine !== state.engine) return;
  state.callState = callState;
  if (callState === "connected") {
    state.everConnected = true;
    state.callError = null;
    save({ joined: true, chatOnly: false });
  }
  if (callState === "closed") {
    // The advisor hung up the call (the consultation may go on as a chat).
    state.recording?.callEnded();
    state.monitoring?.callEnded();
    state.engine = null;
    state.sharing = false;
    state.remoteVideo = false;
    state.remotePicture = null;
    releaseHandedTracks(true);
    save({ joined: false });
  }
  render();
}

function onEngineError(detail) {
  const permission = PERMISSION_ERRORS.includes(detail?.name);
  if (detail?.kind === "screen") {
    // Cancelling the browser's screen picker is not an error worth a message.
    if (!permission && detail?.name !== "AbortError") state.callError = { name: "share" };
    render();
    return;
  }
  if (detail?.kind !== "media") {
    // Negotiation hiccups are recovered by the engine (restart, ICE restart).
    console.warn("livedesk call:", detail);
    return;
  }
  if (permission && state.inStart) {
    // Blocked while joining: explain how to allow it; this engine starts afresh on retry.
    state.engineSpoiled = true;
    showDenied();
    return;
  }
  state.callError = detail;
  render();
}

// Whether the advisor's picture shows is the engine's "remotevideo" (frames that arrive and
// what the advisor's side says it sends), never track.muted: see /shared/call-picture.js.
function attachRemote(stream) {
  const video = $("remote-video");
  if (video.srcObject !== stream) {
    video.srcObject = stream;
    playRemote();
  }
  if (state.view === "call") renderStage();
}

function playRemote() {
  const played = $("remote-video").play?.();
  played?.then?.(
    () => {
      state.needsSound = false;
      render();
    },
    (error) => {
      // Autoplay with sound refused (a reload, no click yet): one tap brings the sound.
      if (error?.name === "NotAllowedError") {
        state.needsSound = true;
        render();
      }
    },
  );
}

async function startCall(kind) {
  if (state.startingCall) return;
  state.startingCall = true;
  state.callError = null;
  state.invited = false;
  state.chatOnly = false;
  state.mode = kind === "voice" ? "voice" : "video";
  if (state.engine && (state.engineSpoiled || state.callState === "closed")) dropEngine();
  state.engineSpoiled = false;
  // The preview's stream, if it matches what is asked for (sound only: no camera track).
  const handed = state.preview?.take(state.mode === "video") ?? null;
  if (handed) state.handed.push(...handed.getTracks());
  save({ joined: true, chatOnly: false, mode: state.mode });
  showView("call");
  try {
    if (!state.engine) state.engine = await makeEngine();
    const engine = state.engine;
    state.inStart = true;
    await engine.start({ audio: true, video: state.mode === "video", stream: handed });
    state.inStart = false;
    if (engine !== state.engine) return;
    state.mode = engine.mode ?? state.mode;
    if (state.muted) engine.setMuted(true);
    if (state.cameraOff && state.mode === "video") engine.setCameraOff(true);
  } catch (error) {
    state.callError = { name: error?.name ?? "Error", code: error?.code, message: error?.message ?? "" };
  } finally {
    state.inStart = false;
    state.startingCall = false;
  }
  if (state.view !== "call") return; // the denied help took over
  startTimer();
  render();
}

/** Chat → call from the chat-only view (the server records the kind first). */
async function startFromChat(kind) {
  const c = state.consultation;
  if (!c || state.startingCall) return;
  if (c.kind !== kind) {
    try {
      apply(await state.socket.call("call.escalate", { consultation_id: c.id, kind }));
    } catch (error) {
      state.callError = error;
      render();
      return;
    }
  }
  await startCall(kind);
}

async function applyMode(mode) {
  if (!state.engine || mode === state.mode) return;
  const before = state.mode;
  state.mode = mode;
  if (mode === "voice" && state.sharing) await toggleShare();
  render();
  try {
    const switched = await state.engine.setMode(mode);
    if (switched === false) throw Object.assign(new Error("camera"), { name: state.callError?.name ?? "NotReadableError" });
    if (mode === "video" && state.cameraOff) state.engine.setCameraOff(true);
    save({ mode });
  } catch (error) {
    state.mode = before;
    if (PERMISSION_ERRORS.includes(error?.name)) state.callError = { name: "NotAllowedError" };
    else state.callError = { name: error?.name ?? "Error", message: error?.message ?? "" };
    throw error;
  } finally {
    render();
  }
}

async function switchMode() {
  const next = state.mode === "video" ? "voice" : "video";
  const button = $("mode-button");
  button.disabled = true;
  try {
    await applyMode(next);
    // The consultation's kind follows, so its record (and the advisor's screen) says so.
    apply(await state.socket.call("call.escalate", { consultation_id: consultationId, kind: next }));
  } catch (error) {
    if (!state.callError) state.callError = error;
    render();
  } finally {
    button.disabled = false;
  }
}

async function toggleShare() {
  if (!state.engine) return;
  try {
    if (state.sharing) {
      await state.engine.stopScreenShare();
      state.sharing = false;
    } else {
      state.sharing = (await state.engine.shareScreen()) !== false;
    }
  } catch (error) {
    if (!["NotAllowedError", "AbortError"].includes(error?.name)) state.callError = { name: "share" };
  } finally {
    render();
  }
}

async function endConsultation() {
  const button = $("end-button");
  button.disabled = true;
  $("end-chat").disabled = true;
  if (isWaiting(state.consultation)) {
    // Chat while waiting: this button leaves the queue.
    try {
      await state.socket.call("queue.leave", { consultation_id: consultationId });
      finish("left");
    } catch (error) {
      state.callError = error;
      render();
    } finally {
      button.disabled = false;
      $("end-chat").disabled = false;
    }
    return;
  }
  try {
    // The advisor's side hears "hangup" and closes its peer connection.
    state.engine?.hangup();
    state.engine = null;
    releaseHandedTracks(true);
    apply(await state.socket.call("consultation.end", { consultation_id: consultationId }));
  } catch (error) {
    // Already ended by the advisor (not_active), or the network is down: the shopper is done
    // either way; the advisor closes the consultation.
    console.warn("livedesk: consultation.end", error);
    finish("ended");
  } finally {
    button.disabled = false;
    $("end-chat").disabled = false;
  }
}

function showChat() {
  state.chatOnly = true;
  save({ chatOnly: true });
  showView("call");
  startTimer();
  state.chat?.shown();
}

function startTimer() {
  if (timer) return;
  timer = setInterval(renderIndicators, 1000);
}

function stopTimer() {
  clearInterval(timer);
  timer = 0;
}

function chatVisible() {
  if (state.view !== "call" || document.hidden) return false;
  const chatOnly = $("call-layout").classList.contains("chat-only");
  return chatOnly || !NARROW.matches || state.chatOpen;
}

function setChatOpen(open) {
  state.chatOpen = open;
  render();
  if (open) {
    state.chat?.shown();
    $("chat-input").focus();
  } else {
    $("chat-toggle").focus();
  }
}

function setDevicesOpen(open) {
  $("devices-panel").hidden = !open;
  $("devices-button").setAttribute("aria-expanded", String(open));
  if (open) {
    fillDevices(["call-camera-select", "call-mic-select"]).then(() => $("call-camera-select").focus());
  } else {
    $("devices-button").focus();
  }
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("join-button").addEventListener("click", () => startCall(joinMode()));
  for (const id of ["preview-chat-only", "denied-chat-only"]) {
    $(id).addEventListener("click", () => {
      state.preview?.stop();
      // Chat only: no media from here; the advisor's side waits until we join after all.
      dropEngine();
      showChat();
    });
  }
  $("denied-retry").addEventListener("click", () => {
    state.previewError = null;
    openPreview();
  });
  for (const input of document.querySelectorAll('input[name="join-mode"]')) {
    input.addEventListener("change", () => startPreview());
  }
  $("camera-select").addEventListener("change", (event) => {
    state.devices.camera = event.target.value;
    startPreview();
  });
  $("mic-select").addEventListener("change", (event) => {
    state.devices.mic = event.target.value;
    startPreview();
  });
  $("call-camera-select").addEventListener("change", (event) => {
    state.devices.camera = event.target.value;
    state.engine?.useDevice("videoinput", event.target.value).catch((error) => onEngineError(error));
  });
  $("call-mic-select").addEventListener("change", (event) => {
    state.devices.mic = event.target.value;
    state.engine?.useDevice("audioinput", event.target.value).catch((error) => onEngineError(error));
  });
  $("mute-button").addEventListener("click", () => {
    state.muted = !state.muted;
    state.engine?.setMuted(state.muted);
    render();
  });
  $("camera-button").addEventListener("click", () => {
    state.cameraOff = !state.cameraOff;
    state.engine?.setCameraOff(state.cameraOff);
    render();
  });
  $("mode-button").addEventListener("click", switchMode);
  $("share-button").addEventListener("click", toggleShare);
  $("devices-button").addEventListener("click", () => setDevicesOpen($("devices-panel").hidden));
  $("devices-close").addEventListener("click", () => setDevicesOpen(false));
  $("chat-toggle").addEventListener("click", () => setChatOpen(!state.chatOpen));
  $("chat-close").addEventListener("click", () => setChatOpen(false));
  $("end-button").addEventListener("click", endConsultation);
  $("end-chat").addEventListener("click", endConsultation);
  $("start-video").addEventListener("click", () => startFromChat("video"));
  $("start-voice").addEventListener("click", () => startFromChat("voice"));
  $("sound-button").addEventListener("click", playRemote);
  $("remote-video").addEventListener("resize", () => state.view === "call" && renderStage());
  $("remote-video").addEventListener("loadeddata", () => state.view === "call" && renderStage());
  $("ended-close").addEventListener("click", () => postToHost({ type: "livedesk:close" }));
  NARROW.addEventListener("change", render);
  document.addEventListener("visibilitychange", () => chatVisible() && state.chat?.shown());
  watchPermissions(() => {
    if (state.view === "denied") openPreview();
  });
}

function escapeHandled() {
  if (!$("devices-panel").hidden) {
    setDevicesOpen(false);
    return true;
  }
  if (state.chatOpen && NARROW.matches && state.view === "call") {
    setChatOpen(false);
    return true;
  }
  return false;
}

async function main() {
  await initI18n({ extraAreas: ["/call", "/surveys", "/payments", "/recording", "/monitoring"] });
  const embed = takeEmbedParams();
  connectHost(embed, { escapeHandled });
  if (!embed.embedded) {
    // Escape still closes the popups when the page is not in the shop's panel.
    document.addEventListener("keydown", (event) => event.key === "Escape" && escapeHandled());
  }
  state.preview = new Preview({ video: $("preview-video"), meter: $("mic-meter"), meterFill: $("mic-meter-fill") });
  onLanguageChange(render);
  wire();
  state.visitor = readVisitor();
  if (!consultationId || !state.visitor) {
    state.missing = consultationId ? "no_token" : "no_id";
    showView("missing", { focus: false });
    return;
  }
  state.place = readPlace(consultationId);
  const socket = LiveSocket.shopper(state.visitor.token);
  state.socket = socket;
  socket.on("consultation.updated", apply);
  socket.on("queue.position", (place) => {
    if (place?.consultation_id !== consultationId) return;
    state.place = place;
    savePlace(place);
    if (state.view === "preview") renderPreview();
    if (state.view === "call") renderCall();
  });
  socket.onState((s, info = {}) => {
    state.socketState = s;
    renderBanner();
    if (s === "connected") refresh();
    if (["token_expired", "token_invalid", "token_missing"].includes(info.error?.code)) {
      // The visit expired: a new one would be another shopper, not a party to this call.
      socket.disconnect();
      finishQuietly();
      state.missing = "no_token";
      showView("missing");
    }
  });
  // Payment requests from the advisor open a payment sheet over the call.
  new PaymentSheet({ socket, consultationId, token: state.visitor.token }).start();
  // Recording: the consent prompt, the indicator and, while recording, the server leg.
  state.recording = new RecordingPanel({ socket, consultationId, role: "shopper", token: state.visitor.token, mount: $("call-notices") });
  state.recording.start();
  // Live call monitoring: "a supervisor is listening / joined", the monitoring leg, their voice.
  state.monitoring = new MonitoringNotice({ socket, consultationId, role: "shopper", token: state.visitor.token, mount: state.recording.root.parentElement });
  state.monitoring.start();
  state.chat = new ChatPanel({
    socket,
    consultationId,
    token: state.visitor.token,
    advisorName: () => (state.advisor ? advisorName(state.advisor) : ""),
    isVisible: chatVisible,
    onUnread: (count) => {
      state.unread = count;
      if (state.view === "call") renderCall();
    },
  });
}

main();
