// Staff sign-in for the advisor console, the supervisor dashboard and admin (one page for all
// three until each has its own): POST /api/v1/auth/login, GET /api/v1/auth/me,
// POST /api/v1/auth/logout with the session's CSRF token.
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";

const AREAS = { "/staff/": "advisor", "/supervisor/": "supervisor", "/admin/": "admin" };
const CSRF_COOKIE = "livedesk_csrf";
const area = AREAS[location.pathname] ?? "advisor";
const $ = (id) => document.getElementById(id);

let me = null; // the signed-in staff member (the /auth/me shape)
let csrfToken = null;
// Messages on screen are kept as data, so a language switch can re-translate them.
let signinError = null;
let signoutError = null;
let notice = null;

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** fetch() with the API's error shape: resolves to {ok, status, data} or {ok, status, error}. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = csrfToken ?? readCookie(CSRF_COOKIE);
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    return { ok: false, status: 0, error: { code: "network_error", message: "" } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return { ok: true, status: response.status, data };
  const error = data?.error ?? { code: "http_error", message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, error };
}

function errorText(error) {
  const key = `staff.error.${error.code}`;
  const translated = t(key, { seconds: error.details?.retry_after ?? 60 });
  if (translated !== key) return translated;
  return error.message || t("staff.error.unknown");
}

function showMessage(el, message) {
  el.hidden = !message;
  el.textContent = message ? (message.code ? errorText(message) : t(message.key)) : "";
}

function render() {
  document.title = t("staff.title", { area: t(`staff.area.${area}`) });
  showMessage($("signin-error"), signinError);
  showMessage($("signout-error"), signoutError);
  showMessage($("signin-notice"), notice);
  const invalid = signinError?.code === "login_failed" || signinError?.code === "missing_fields";
  for (const id of ["email", "password"]) {
    if (invalid) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  if (!me) return;
  $("who-line").textContent = t("staff.signed_in_as", { name: me.display_name, role: t(`role.${me.role}`) });
  $("who-email").textContent = me.email;
  $("who-initial").textContent = Array.from(me.display_name.trim())[0] ?? "?";
  for (const item of $("area-links").querySelectorAll("li[data-roles]")) {
    item.hidden = !item.dataset.roles.split(" ").includes(me.role);
  }
}

function show(state) {
  $("checking").hidden = true;
  $("signin-panel").hidden = state !== "signin";
  $("signed-in-panel").hidden = state !== "signed-in";
  render();
}

async function signIn(event) {
  event.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  notice = null;
  if (!email || !password) {
    signinError = { code: "missing_fields" };
    render();
    $(email ? "password" : "email").focus();
    return;
  }
  const button = event.submitter ?? $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = t("staff.signing_in");
  const result = await api("POST", "/api/v1/auth/login", { email, password });
  button.disabled = false;
  button.textContent = t("staff.signin_button");
  if (!result.ok) {
    signinError = result.error;
    render();
    return;
  }
  signinError = null;
  me = result.data;
  csrfToken = me.csrf_token;
  $("password").value = "";
  show("signed-in");
  $("signed-in-title").focus();
}

async function signOut() {
  const result = await api("POST", "/api/v1/auth/logout");
  // A session that already ended is as good as signed out.
  if (!result.ok && result.status !== 401) {
    signoutError = result.error;
    render();
    return;
  }
  me = null;
  csrfToken = null;
  signoutError = null;
  notice = { key: "staff.signed_out" };
  show("signin");
  $("email").focus();
}

async function start() {
  $("area-name").dataset.i18n = `staff.area.${area}`;
  await initI18n();
  onLanguageChange(render);
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  const result = await api("GET", "/api/v1/auth/me");
  if (result.ok) {
    me = result.data;
    csrfToken = me.csrf_token;
    show("signed-in");
    return;
  }
  if (result.error.code === "session_expired") signinError = result.error;
  else if (result.status !== 401) signinError = result.error;
  show("signin");
  $("email").focus();
}

start();
