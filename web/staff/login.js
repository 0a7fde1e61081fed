// @ts-check
// Staff sign-in, and the advisor console behind it: /staff/ shows the sign-in form when
// signed out and, for an advisor, the console when signed in (console.js, loaded on demand).
// /supervisor/ still shares this page and shows the list of workspaces.
// POST /api/v1/auth/login, GET /api/v1/auth/me, POST /api/v1/auth/logout with the CSRF token.
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";
import { api, errorText, setCsrfToken } from "/shared/staff-api.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { $ } from "/shared/dom.js";

const AREAS = { "/staff/": "advisor", "/supervisor/": "supervisor", "/admin/": "admin" };
const SIGNED_OUT_FLAG = "livedesk.staff.signed_out";
// Set by console.js when the console found its session ended (elsewhere, expired, disabled).
const SESSION_ENDED_FLAG = "livedesk.staff.session_ended";
const area = AREAS[location.pathname] ?? "advisor";

let me = null; // the signed-in staff member (the /auth/me shape)
let nav = null; // the staff navigation in the header (web/staffnav)
let consoleOpen = false;
// Messages on screen are kept as data, so a language switch can re-translate them.
let signinError = null;
let signoutError = null;
let notice = null;

function showMessage(el, message) {
  el.hidden = !message;
  // Sign-in words first: "rate_limited" here means too many sign-in attempts.
  el.textContent = message ? (message.code ? errorText(message, ["staff.error.", "console.error."]) : t(message.key)) : "";
}

function render() {
  if (!consoleOpen) document.title = t("staff.title", { area: t(`staff.area.${area}`) });
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
  $("who-initial").textContent = initial(me.display_name);
  for (const item of $("area-links").querySelectorAll("li[data-roles]")) {
    item.hidden = !item.dataset.roles.split(" ").includes(me.role);
  }
}

function initial(name) {
  return Array.from(name.trim())[0] ?? "?";
}

function show(state) {
  $("checking").hidden = true;
  $("signin-card").hidden = state === "console";
  $("signin-panel").hidden = state !== "signin";
  $("signed-in-panel").hidden = state !== "signed-in";
  nav?.show(state === "signin" ? null : me?.role);
  render();
}

/** The advisor console on /staff/; other roles and areas get the list of workspaces. */
function wantsConsole() {
  return area === "advisor" && me?.role === "advisor";
}

async function openConsole({ focus }) {
  try {
    const { startConsole } = await import("/staff/console.js");
    consoleOpen = true;
    // Leaving the console would drop its call and offers: the other pages open in a new tab.
    if (nav) nav.newTab = true;
    show("console");
    document.body.classList.add("console-mode");
    $("console").hidden = false;
    $("console-bar").hidden = false;
    $("console-initial").textContent = initial(me.display_name);
    startConsole(me);
    if (focus) $("console-title").focus();
  } catch (error) {
    // The console's modules failed to load: say so, and keep sign-out reachable.
    console.error(error);
    signoutError = { code: "console_unavailable" };
    show("signed-in");
  }
}

function signedIn({ focus }) {
  if (wantsConsole()) {
    openConsole({ focus });
    return;
  }
  show("signed-in");
  if (focus) $("signed-in-title").focus();
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
  setCsrfToken(me.csrf_token);
  $("password").value = "";
  signedIn({ focus: true });
}

async function signOut() {
  const result = await api("POST", "/api/v1/auth/logout");
  // A session that already ended is as good as signed out.
  if (!result.ok && result.status !== 401) {
    signoutError = result.error;
    render();
    if (consoleOpen) {
      $("console-error").hidden = false;
      $("console-error").textContent = errorText(result.error);
    }
    return;
  }
  if (consoleOpen) {
    // A fresh page is the surest way to drop the socket, the media and every timer.
    try {
      sessionStorage.setItem(SIGNED_OUT_FLAG, "1");
    } catch {
      // the notice is lost, nothing else
    }
    location.reload();
    return;
  }
  me = null;
  setCsrfToken(null);
  signoutError = null;
  notice = { key: "staff.signed_out" };
  show("signin");
  $("email").focus();
}

function takeFlag(name) {
  try {
    const flag = sessionStorage.getItem(name);
    sessionStorage.removeItem(name);
    return Boolean(flag);
  } catch {
    return false;
  }
}

async function start() {
  $("area-name").dataset.i18n = `staff.area.${area}`;
  await initI18n({ extraAreas: ["/staff", "/surveys", "/payments", "/booking", "/recording", "/history", "/monitoring", NAV_AREA] });
  nav = new StaffNav($("staff-nav"), location.pathname, { inline: true });
  onLanguageChange(render);
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("console-signout").addEventListener("click", signOut);
  if (takeFlag(SIGNED_OUT_FLAG)) notice = { key: "staff.signed_out" };
  if (takeFlag(SESSION_ENDED_FLAG)) notice = { key: "staff.session_ended" };
  const result = await api("GET", "/api/v1/auth/me");
  if (result.ok) {
    me = result.data;
    setCsrfToken(me.csrf_token);
    signedIn({ focus: false });
    return;
  }
  if (result.error.code === "session_expired") signinError = result.error;
  else if (result.status !== 401) signinError = result.error;
  show("signin");
  $("email").focus();
}

start();
