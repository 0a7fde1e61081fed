// @ts-check
// Administration: sign-in (the same API as the staff page), then — for admins — staff accounts
// and teams. Advisors and supervisors who sign in here are told it is for admins only, with
// the server's own answer. The REST API enforces every rule; this page shows what it says.
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";
import { api, setCsrfToken } from "/admin/api.js";
import { renderConfirm, setupConfirm } from "/shared/confirm.js";
import { Notice, busy, renderBusyButtons } from "/admin/forms.js";
import { StaffArea } from "/admin/staff.js";
import { TeamsArea } from "/admin/teams.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { $ } from "/shared/dom.js";


const app = {
  me: null,
  teams: [],
  view: "checking",
  forbidden: null, // the server's 403 error, shown on the "admins only" panel
  staff: null,
  teamsArea: null,

  /** A 401 ends the page's session: back to the sign-in form, saying why. True if handled. */
  handleAuthError(result) {
    if (result.status !== 401) return false;
    signedOut({ error: result.error });
    return true;
  },

  async reload() {
    await Promise.all([this.teamsArea.load(), this.staff.load()]);
    this.staff.renderTeamOptions();
    this.staff.render();
  },

  async reloadTeams() {
    await this.teamsArea.load();
    this.staff.renderTeamOptions();
    // Team names in the staff list follow a rename; a deleted team may have been filtered on.
    await this.staff.load();
  },
};

const signinNotice = new Notice($("signin-notice"));
const signinError = new Notice($("signin-error"));
const signoutError = new Notice($("signout-error"));

function show(view) {
  app.view = view;
  $("checking").hidden = view !== "checking";
  $("signin-panel").hidden = view !== "signin";
  $("forbidden-panel").hidden = view !== "forbidden";
  $("admin-panel").hidden = view !== "admin";
  $("who").hidden = !app.me;
  app.nav?.show(app.me?.role);
  render();
}

function render() {
  document.title = t("admin.page_title");
  signinNotice.render();
  signinError.render();
  signoutError.render();
  renderBusyButtons();
  renderConfirm();
  const invalid = ["login_failed", "missing_fields"].includes(signinError.message?.error?.code ?? signinError.message?.code);
  for (const id of ["signin-email", "signin-password"]) {
    if (invalid) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  if (app.me) {
    $("who-name").textContent = t("admin.signed_in_as", { name: app.me.display_name, role: t(`role.${app.me.role}`) });
    $("forbidden-text").textContent = t("admin.forbidden_text", {
      name: app.me.display_name,
      role: t(`role.${app.me.role}`),
    });
  }
  $("forbidden-server").hidden = !app.forbidden;
  $("forbidden-message").textContent = app.forbidden?.message ?? "";
  app.staff.renderTeamOptions();
  app.staff.render();
  app.teamsArea.render();
}

async function enter(me) {
  app.me = me;
  setCsrfToken(me.csrf_token);
  signinError.clear();
  signinNotice.clear();
  if (me.role !== "admin") {
    await showForbidden();
    return;
  }
  app.forbidden = null;
  show("admin");
  await Promise.all([app.reload(), showMailDelivery()]);
}

/** Say plainly when mails do not reach people (no SMTP server, or the demo outbox). */
async function showMailDelivery() {
  const box = $("mail-notice");
  const result = await api.get("/api/v1/system/mail");
  const delivery = result.ok ? result.data.delivery : "smtp";
  box.hidden = delivery === "smtp";
  box.textContent = delivery === "smtp" ? "" : t(`admin.mail.${delivery}`);
}

/**
 * Not an admin: say so from the role /auth/me gave. (The REST API refuses the admin routes
 * for this account anyway; the page does not probe it.)
 */
async function showForbidden() {
  app.forbidden = null;
  show("forbidden");
  $("forbidden-link").href = app.me.role === "supervisor" ? "/supervisor/" : "/staff/";
  $("forbidden-title").focus();
  render();
}

function signedOut(message) {
  app.me = null;
  app.forbidden = null;
  app.teams = [];
  app.staff.rows = [];
  app.staff.loaded = false;
  app.teamsArea.loaded = false;
  setCsrfToken(null);
  for (const dialog of document.querySelectorAll(/** @type {"dialog"} */ ("dialog[open]"))) dialog.close();
  if (message?.error) {
    signinError.show(message);
    signinNotice.clear();
  } else {
    signinError.clear();
    signinNotice.show(message ?? null);
  }
  show("signin");
  $("signin-email").focus();
}

async function signIn(event) {
  event.preventDefault();
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  signinNotice.clear();
  if (!email || !password) {
    signinError.show({ key: "admin.error.missing_fields", code: "missing_fields" });
    render();
    $(email ? "signin-password" : "signin-email").focus();
    return;
  }
  const button = event.submitter ?? $("signin-form").querySelector("button[type=submit]");
  const result = await busy(button, "admin.signing_in", () =>
    api.post("/api/v1/auth/login", { email, password }),
  );
  if (!result.ok) {
    signinError.show({ error: result.error });
    render();
    $("signin-password").focus();
    return;
  }
  $("signin-password").value = "";
  await enter(result.data);
  if (app.view === "admin") $("admin-title").focus();
}

async function signOut() {
  const button = $("signout");
  const result = await busy(button, "admin.signing_out", () => api.post("/api/v1/auth/logout"));
  // A session that already ended is as good as signed out.
  if (!result.ok && result.status !== 401) {
    signoutError.show({ error: result.error });
    return;
  }
  signoutError.clear();
  signedOut({ key: "admin.signed_out" });
}

async function start() {
  app.staff = new StaffArea(app);
  app.teamsArea = new TeamsArea(app);
  await initI18n({ extraAreas: ["/admin", "/payments", "/booking", "/surveys", "/history", NAV_AREA] });
  app.nav = new StaffNav($("staff-nav"), "/admin/");
  onLanguageChange(render);
  setupConfirm();
  app.staff.setup();
  app.teamsArea.setup();
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);

  const result = await api.get("/api/v1/auth/me");
  if (result.ok) {
    await enter(result.data);
    return;
  }
  // A plain "not signed in" needs no message; an ended session or a failure does.
  signedOut(result.status === 401 && result.error.code !== "session_expired" ? null : { error: result.error });
}

start();
