// @ts-check
// What the shopper's two pages (/widget/ and /call/) share: the visitor token kept in
// sessionStorage, talking to the shop page that frames us, and small DOM and text helpers.
import { language, setLanguage, t } from "/shared/i18n.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const VISITOR_KEY = "livedesk.visitor";
const EMBED_KEY = "livedesk.embed";

function readJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function writeJson(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage can be disabled (private mode, blocked third-party storage): the page still
    // works until it is reloaded.
  }
}

/** The visitor token of this tab ({token, shopper_id, expires_at}), or null. */
export function readVisitor() {
  const visitor = readJson(sessionStorage, VISITOR_KEY);
  if (!visitor?.token) return null;
  if (typeof visitor.expires_at === "number" && visitor.expires_at < Date.now()) return null;
  return visitor;
}

async function postVisit(body) {
  const response = await fetch("/api/v1/visitors", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = /** @type {Error & {code?: string, status?: number}} */ (new Error(data?.error?.message ?? `HTTP ${response.status}`));
    error.code = data?.error?.code ?? "http_error";
    error.status = response.status;
    throw error;
  }
  return data;
}

/**
 * Start (or resume) the visit: POST /api/v1/visitors with the shop's signed customer id when
 * the shop gave one, and this tab's previous token so the shopper keeps their profile.
 */
export async function startVisit({ shopCustomerId = null, shopSignature = null } = {}) {
  const previous = readVisitor();
  const body = { locale: language() };
  if (previous?.token) body.previous_token = previous.token;
  let data;
  if (shopCustomerId) {
    try {
      data = await postVisit({ ...body, shop_customer_id: shopCustomerId, shop_signature: shopSignature ?? "" });
    } catch (error) {
      if (error.code !== "bad_shop_signature") throw error;
      // A stale or wrong signature must not stop the shopper from talking to someone: go on
      // as an anonymous visitor (the shop's integrator sees why in the console).
      console.warn("livedesk: the shop customer id signature was refused; continuing as a guest", error);
    }
  }
  data ??= await postVisit(body);
  const visitor = {
    token: data.token,
    shopper_id: data.shopper_id,
    linked: data.linked,
    expires_at: Date.now() + (data.expires_in - 60) * 1000,
  };
  writeJson(sessionStorage, VISITOR_KEY, visitor);
  return visitor;
}

// ---- the queue place, kept across page loads: the server sends queue.position only when it
// changes, so a page that was just (re)loaded would otherwise not know it until then.
const PLACE_KEY = "livedesk.place";

export function savePlace(place) {
  if (place?.consultation_id) writeJson(sessionStorage, PLACE_KEY, place);
}

export function readPlace(consultationId) {
  const place = readJson(sessionStorage, PLACE_KEY);
  return place?.consultation_id === consultationId ? place : null;
}

// ---- the shop page around us (when /widget.js put us in its panel)

/**
 * Read what /widget.js put in the fragment (embed, lang, origin, scid, ssig), keep it for this
 * tab, and take it out of the address bar. Returns the embedding facts, from storage on later
 * pages (/call/ has no fragment).
 */
export function takeEmbedParams() {
  const hash = location.hash.slice(1);
  let fromHash = null;
  if (hash.includes("=")) {
    const params = new URLSearchParams(hash);
    fromHash = {
      embedded: params.get("embed") === "1",
      origin: params.get("origin") ?? "",
      lang: params.get("lang") ?? "",
      shopCustomerId: params.get("scid") ?? "",
      shopSignature: params.get("ssig") ?? "",
    };
    // The signed id has done its job once the visit starts; keep it out of history and of any
    // link the shopper might copy.
    history.replaceState(null, "", location.pathname + location.search);
    writeJson(sessionStorage, EMBED_KEY, { embedded: fromHash.embedded, origin: fromHash.origin });
  }
  const stored = readJson(sessionStorage, EMBED_KEY) ?? {};
  return {
    embedded: window.parent !== window && Boolean(fromHash?.embedded ?? stored.embedded),
    origin: fromHash?.origin ?? stored.origin ?? "",
    lang: fromHash?.lang ?? "",
    shopCustomerId: fromHash?.shopCustomerId ?? "",
    shopSignature: fromHash?.shopSignature ?? "",
  };
}

let host = { embedded: false, origin: "" };

function validOrigin(origin) {
  try {
    return new URL(origin).origin === origin ? origin : null;
  } catch {
    return null;
  }
}

/** Messages to the shop page's launcher: "livedesk:close", "livedesk:state", "livedesk:lang". */
export function postToHost(message) {
  const origin = validOrigin(host.origin);
  if (!host.embedded || !origin) return;
  window.parent.postMessage(message, origin);
}

/**
 * Wire this page to the launcher around it: Escape closes the panel (after the page's own
 * popups had their chance: ``escapeHandled`` returns true when it closed one), the language
 * follows the shop page, and our language switch tells the launcher.
 */
/** @param {any} embed @param {{escapeHandled?: () => boolean}} [options] */
export function connectHost(embed, { escapeHandled = () => false } = {}) {
  host = embed;
  document.documentElement.classList.toggle("embedded", Boolean(embed.embedded));
  if (!embed.embedded) return;
  document.addEventListener("keydown", (/** @type {any} */ event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (escapeHandled()) return;
    postToHost({ type: "livedesk:close" });
  });
  window.addEventListener("message", (/** @type {any} */ event) => {
    if (event.source !== window.parent || event.origin !== validOrigin(host.origin)) return;
    const data = event.data ?? {};
    if (data.type === "livedesk:lang" && data.lang !== language()) setLanguage(data.lang);
    if (data.type === "livedesk:focus") document.querySelector(/** @type {"h1"} */ (".view:not([hidden]) h1"))?.focus?.();
  });
  for (const group of document.querySelectorAll("[data-lang-switch]")) {
    group.addEventListener("click", (/** @type {any} */ event) => {
      const button = event.target.closest("button[data-lang]");
      if (button) postToHost({ type: "livedesk:lang", lang: button.dataset.lang });
    });
  }
}

/** An error from the server in the shopper page's words ("call", "widget" area). */
export function errorText(error, area) {
  return sharedErrorText(error, `${area}.error.`);
}

/** An advisor's name in the page's language (an English name when the API gives one). */
export function advisorName(advisor) {
  if (!advisor) return "";
  return language() === "en" && advisor.display_name_en ? advisor.display_name_en : advisor.display_name;
}

export async function fetchAdvisors() {
  const response = await fetch("/api/v1/advisors", { credentials: "same-origin" });
  if (!response.ok) throw new Error(`advisors: HTTP ${response.status}`);
  const data = await response.json();
  return data.advisors ?? [];
}
