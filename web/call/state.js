// @ts-check
// The call page's state, shared by its modules (call.js drives, render.js draws), and what
// survives a reload of the page (sessionStorage, per consultation).
import { $ } from "/shared/dom.js";

export { $ };
export const VIEWS = ["loading", "missing", "preview", "denied", "call", "ended"];
export const CALL_KINDS = ["video", "voice"];
export const NARROW = window.matchMedia("(max-width: 760px)");
export const PERMISSION_ERRORS = ["NotAllowedError", "PermissionDeniedError", "SecurityError"];

export const consultationId = new URLSearchParams(location.search).get("c") ?? "";
const joinKey = `livedesk.call.${consultationId}`;

export const state = {
  view: "loading",
  visitor: null,
  socket: null,
  socketState: "connecting",
  consultation: null,
  advisor: null,
  place: null,
  missing: null, // why the page cannot show the consultation
  engine: null,
  callState: "idle",
  everConnected: false,
  mode: "video", // what this side sends: "video" | "voice"
  chatOnly: false,
  muted: false,
  cameraOff: false,
  sharing: false,
  quality: null,
  remoteVideo: false, // the advisor's picture arrives (engine "remotevideo")
  remotePicture: null, // what the advisor's side says it sends: "camera" | "screen" | "none"
  previewError: null,
  callError: null,
  invited: false, // the advisor turned a chat into a call
  chatOpen: false,
  unread: 0,
  needsSound: false,
  ended: null, // "ended" | "gone"
  devices: { camera: "", mic: "" },
  startingCall: false,
  inStart: false, // engine.start() running: a blocked camera/mic then means the help page
  engineSpoiled: false, // its start was blocked: a retry needs a fresh engine
  handed: [], // tracks the preview handed to the engine (ours to stop)
  preview: null, // the device check (Preview)
  chat: null, // the chat panel (ChatPanel)
};


// ------------------------------------------------------------------ persistence across reloads

export function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(joinKey) ?? "null") ?? {};
  } catch {
    return {};
  }
}

export function save(values) {
  try {
    sessionStorage.setItem(joinKey, JSON.stringify({ ...saved(), ...values }));
  } catch {
    // not kept: after a reload the shopper sees the device check again
  }
}

export function forget() {
  try {
    sessionStorage.removeItem(joinKey);
  } catch {
    // nothing to forget
  }
}

export function joinMode() {
  return document.querySelector(/** @type {"input"} */ ('input[name="join-mode"]:checked'))?.value ?? "video";
}

export function isWaiting(c) {
  return Boolean(c) && ["requested", "queued", "offered"].includes(c.status);
}
