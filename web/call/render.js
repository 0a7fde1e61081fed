// @ts-check
// Drawing the call page from its state: which view shows, the header indicators, the device
// check, the call controls and stage, the thank-you. No decisions here (call.js makes them).
import { t } from "/shared/i18n.js";
import { state, $, VIEWS, NARROW, isWaiting, joinMode } from "/call/state.js";
import { advisorName, errorText } from "/shared/shopper.js";

export function showView(name, { focus = true } = {}) {
  const changed = state.view !== name;
  state.view = name;
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  document.body.classList.toggle("in-call", name === "call");
  if (name !== "preview" && state.preview) state.preview.stop();
  render();
  if (changed && focus) $(`view-${name}`).querySelector("h1")?.focus();
}

function name() {
  return state.advisor ? advisorName(state.advisor) : t("call.advisor");
}

function kindLabel() {
  const kind = state.consultation?.kind ?? "video";
  return t(`call.kind.${kind}`);
}

export function render() {
  const c = state.consultation;
  const title = c?.advisor_id ? t("call.title_with", { kind: kindLabel(), name: name() }) : t("call.header");
  document.title = title;
  $("header-title").textContent = title;
  renderBanner();
  renderIndicators();
  if (state.view === "missing") $("missing-text").textContent = t(`call.missing.${state.missing ?? "no_token"}`);
  if (state.view === "preview") renderPreview();
  if (state.view === "call") renderCall();
  if (state.view === "ended") renderEnded();
  state.chat?.render();
}

export function renderBanner() {
  const banner = $("connection-banner");
  let text = "";
  if (state.view === "missing") text = "";
  else if (state.socket && state.socketState === "reconnecting") text = t("call.reconnecting");
  else if (state.socket && state.socketState === "disconnected") text = t("call.disconnected");
  else if (state.engine && state.everConnected && ["reconnecting", "connecting"].includes(state.callState)) {
    text = t("call.reconnecting_call");
  }
  banner.hidden = !text;
  banner.textContent = text;
}

export function renderIndicators() {
  const inCall = state.view === "call" && state.engine && !state.chatOnly;
  const quality = $("quality");
  const level = state.quality?.level;
  quality.hidden = !(inCall && level && state.callState === "connected");
  if (!quality.hidden) {
    quality.className = `quality quality-${level}`;
    $("quality-text").textContent = t("call.quality", { level: t(`call.quality_${level}`) });
  }
  const accepted = state.consultation?.accepted_at;
  $("call-timer").hidden = !(state.view === "call" && accepted && state.consultation.status === "active");
  if (!$("call-timer").hidden) $("call-timer-text").textContent = elapsed(accepted);
}

function elapsed(iso) {
  const seconds = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

export function renderPreview() {
  const c = state.consultation;
  const waiting = c && ["queued", "offered", "requested"].includes(c.status);
  let status;
  if (!c) status = "";
  else if (waiting) {
    status = c.status === "offered"
      ? t("call.preview_offered")
      : state.place
        ? t("call.preview_waiting_place", { position: state.place.position })
        : t("call.preview_waiting");
  } else if (state.invited) status = t("call.preview_invited", { name: name(), kind: kindLabel() });
  else status = t("call.preview_ready", { name: name() });
  $("preview-status").textContent = status;
  $("join-button").disabled = waiting || state.startingCall;
  $("join-button").textContent = waiting ? t("call.join_waiting") : t("call.join");
  $("preview-back").hidden = !waiting;
  $("preview-chat-only").hidden = waiting;
  const voice = joinMode() === "voice";
  $("camera-field").hidden = voice;
  const note = $("preview-video-note");
  note.hidden = !voice && !state.previewError;
  note.textContent = voice ? t("call.preview_voice_note") : state.previewError ? t("call.preview_no_camera") : "";
  const error = $("preview-error");
  error.hidden = !state.previewError;
  error.textContent = state.previewError ? mediaErrorText(state.previewError) : "";
}

export function renderCall() {
  const c = state.consultation;
  const chatKind = c?.kind === "chat";
  const chatOnly = state.chatOnly || chatKind || (!state.engine && !state.startingCall);
  $("call-layout").classList.toggle("chat-only", chatOnly);
  $("call-layout").classList.toggle("voice", !chatOnly && state.mode === "voice");
  $("call-title").textContent = chatOnly ? t("call.title_with", { kind: t("call.kind.chat"), name: name() }) : document.title;
  const waiting = isWaiting(c);
  $("chat-only-bar").hidden = !chatOnly;
  let barText;
  if (waiting && c.status === "offered") barText = t("call.preview_offered");
  else if (waiting) {
    barText = state.place ? t("call.chat_waiting_place", { position: state.place.position }) : t("call.chat_waiting");
  } else barText = chatKind ? t("call.chat_kind_text", { name: name() }) : t("call.chat_only_text");
  $("chat-only-text").textContent = barText;
  // Calls start once an advisor is there; until then the chat can already take a message.
  $("start-video").hidden = waiting;
  $("start-voice").hidden = waiting;
  $("start-video").disabled = state.startingCall;
  $("start-voice").disabled = state.startingCall;
  $("end-chat").textContent = waiting ? t("call.leave_queue") : chatKind ? t("call.end_chat") : t("call.end");

  // Controls: the words say what pressing does now.
  $("mute-label").textContent = state.muted ? t("call.unmute") : t("call.mute");
  $("mute-button").classList.toggle("is-off", state.muted);
  $("camera-label").textContent = state.cameraOff ? t("call.camera_on") : t("call.camera_off");
  $("camera-button").classList.toggle("is-off", state.cameraOff);
  $("camera-button").hidden = state.mode === "voice";
  $("mode-label").textContent = state.mode === "video" ? t("call.switch_voice") : t("call.switch_video");
  $("share-button").hidden = state.mode === "voice" || !navigator.mediaDevices?.getDisplayMedia;
  $("share-label").textContent = state.sharing ? t("call.share_stop") : t("call.share");
  $("share-button").classList.toggle("is-on", state.sharing);
  $("self-view").hidden = state.mode === "voice";
  $("self-video").classList.toggle("mirrored", !state.sharing);
  $("self-label").textContent = state.muted ? t("call.you_muted") : t("call.you");

  renderStage();
  $("sound-button").hidden = !state.needsSound;
  const error = $("call-error");
  error.hidden = !state.callError;
  error.textContent = state.callError ? mediaErrorText(state.callError) : "";

  // Chat drawer (narrow screens); beside the video otherwise.
  const drawer = NARROW.matches && !chatOnly;
  $("call-layout").classList.toggle("chat-open", drawer && state.chatOpen);
  $("chat-toggle").setAttribute("aria-expanded", String(drawer ? state.chatOpen : true));
  $("chat-close").hidden = !drawer;
  $("chat-panel").hidden = drawer && !state.chatOpen;
  const unread = $("unread");
  unread.hidden = !state.unread;
  unread.textContent = state.unread ? String(state.unread) : "";
  $("chat-toggle").setAttribute(
    "aria-label",
    state.unread ? t("call.chat_unread", { count: state.unread }) : t("call.chat"),
  );
}

export function renderStage() {
  const photo = $("advisor-photo");
  if (state.advisor?.photo_url && photo.getAttribute("src") !== state.advisor.photo_url) photo.src = state.advisor.photo_url;
  // The advisor's video shows whenever it arrives, whatever this side sends; otherwise their
  // photo (a camera that is off sends nothing: no black box).
  const showVideo = Boolean(state.engine && state.remoteVideo);
  $("remote-video").classList.toggle("is-hidden", !showVideo);
  $("stage-placeholder").hidden = showVideo;
  let text;
  if (state.callState === "closed") text = t("call.stage_closed");
  else if (state.callState === "failed") text = t("call.stage_failed");
  else if (state.callState !== "connected") text = t("call.stage_connecting", { name: name() });
  else if (state.consultation?.kind === "voice") text = t("call.stage_voice", { name: name() });
  else if (["camera", "screen"].includes(state.remotePicture)) text = t("call.stage_video_coming", { name: name() });
  else text = t("call.stage_no_video", { name: name() });
  $("stage-text").textContent = text;
}


function renderEnded() {
  const how = state.ended ?? "ended";
  $("ended-title").textContent = t(`call.${how}_title`);
  $("ended-text").textContent = t(`call.${how}_text`, { name: name() });
  $("ended-close").hidden = !document.documentElement.classList.contains("embedded");
}

export function mediaErrorText(error) {
  const key = `call.media.${error?.name ?? error?.code}`;
  const text = t(key);
  if (text !== key) return text;
  return errorText(error, "call");
}
