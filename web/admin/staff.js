// @ts-check
// Staff accounts: the list (filtered by role, team and status), the create/edit dialog with
// the nomination profile and photo, and disable / re-enable.
import { language, t } from "/shared/i18n.js";
import { api, query } from "/admin/api.js";
import { confirmAction } from "/shared/confirm.js";
import { FormErrors, Notice, busy } from "/admin/forms.js";
import { $, el } from "/shared/dom.js";

const PHOTO_MAX_BYTES = 2 * 1024 * 1024;
const PHOTO_TYPES = ["image/png", "image/jpeg", "image/webp"];
const COLUMNS = ["person", "role", "team", "status", "skills", "languages", "actions"];

/** "skincare, make-up" or one per line → ["skincare", "make-up"]. */
function splitList(text) {
  return text
    .split(/[\s,、，;]+/)
    .map((item) => item.trim())
    .filter(Boolean);
}

function sameList(a, b) {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** Only photos on this server are shown: the page's CSP allows no other image source. */
function localPhoto(url) {
  return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : null;
}

function languageName(tag) {
  try {
    const names = new Intl.DisplayNames([language()], { type: "language" });
    return names.of(tag) ?? tag;
  } catch {
    return tag;
  }
}

function skillName(skill) {
  const key = `skill.${skill}`;
  const text = t(key);
  return text === key ? skill : text;
}

function initial(name) {
  return Array.from(String(name).trim())[0] ?? "?";
}

function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function timeZones() {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = ["Asia/Tokyo", "Europe/London", "America/New_York"];
  }
  return ["UTC", ...zones.filter((zone) => zone !== "UTC")];
}

function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export class StaffArea {
  constructor(app) {
    this.app = app;
    this.rows = [];
    this.loaded = false;
    this.editing = null; // the account open in the dialog (null: a new one)
    this.photoFile = null;
    this.photoPreview = null;
    this.dialogTitle = null;
    this.opener = null;
    this.status = new Notice($("staff-status"));
    this.alert = new Notice($("staff-alert"));
    this.dialogStatus = new Notice($("staff-form-status"));
    this.errors = new FormErrors($("staff-form"), $("staff-form-alert"), { aliases: { file: "photo" } });
  }

  setup() {
    $("new-staff").addEventListener("click", () => this.openDialog(null));
    $("staff-filters").addEventListener("change", () => this.load());
    $("staff-filters").addEventListener("submit", (event) => event.preventDefault());
    $("staff-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const staff = this.rows.find((row) => row.id === button.dataset.id);
      if (!staff) return;
      if (button.dataset.action === "edit") this.openDialog(staff);
      if (button.dataset.action === "toggle") this.toggleActive(staff, button);
    });
    $("staff-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save(event.submitter ?? $("staff-save"));
    });
    $("staff-cancel").addEventListener("click", () => this.closeDialog());
    $("staff-dialog-close").addEventListener("click", () => this.closeDialog());
    $("staff-dialog").addEventListener("close", () => this.afterClose());
    $("sf-photo").addEventListener("change", () => this.choosePhoto());
    $("sf-photo-remove").addEventListener("change", () => this.renderPhoto());
    const list = $("timezones");
    for (const zone of timeZones()) {
      const option = document.createElement("option");
      option.value = zone;
      list.append(option);
    }
  }

  filters() {
    return {
      role: $("filter-role").value,
      team_id: $("filter-team").value,
      active: $("filter-active").value,
    };
  }

  async load() {
    const result = await api.get(`/api/v1/staff${query(this.filters())}`);
    if (!result.ok) {
      if (this.app.handleAuthError(result)) return;
      this.alert.show({ error: result.error });
      return;
    }
    this.rows = result.data;
    this.loaded = true;
    this.render();
  }

  teamName(teamId) {
    return this.app.teams.find((team) => team.id === teamId)?.name ?? null;
  }

  /** The team pickers (filter and dialog), keeping what is selected. */
  renderTeamOptions() {
    for (const [id, emptyKey] of [
      ["filter-team", "admin.filters.all_teams"],
      ["sf-team", "admin.no_team"],
    ]) {
      const select = $(id);
      const current = select.value;
      const first = el("option", { text: t(emptyKey) });
      first.value = "";
      first.dataset.i18n = emptyKey;
      const options = this.app.teams.map((team) => {
        const option = el("option", { text: team.name });
        option.value = team.id;
        return option;
      });
      select.replaceChildren(first, ...options);
      select.value = this.app.teams.some((team) => team.id === current) ? current : "";
    }
  }

  render() {
    this.status.render();
    this.alert.render();
    this.renderDialogTexts();
    if (!this.loaded) return;
    const labels = Object.fromEntries(COLUMNS.map((column) => [column, t(`admin.col.${column}`)]));
    $("staff-rows").replaceChildren(...this.rows.map((staff) => this.row(staff, labels)));
    const count = this.rows.length;
    $("staff-count").textContent = count ? t("admin.staff.count", { count }) : t("admin.staff.none_found");
  }

  row(staff, labels) {
    const me = this.app.me;
    const tr = el("tr");
    tr.dataset.id = staff.id;
    if (!staff.active) tr.classList.add("is-disabled");

    const person = el("th");
    person.scope = "row";
    person.dataset.label = labels.person;
    const box = el("div", { class: "person" });
    const photo = localPhoto(staff.photo_url);
    const fallback = el("span", { class: "avatar avatar-initial", text: initial(staff.display_name) });
    fallback.setAttribute("aria-hidden", "true");
    if (photo) {
      const img = el("img", { class: "avatar" });
      img.src = photo;
      img.alt = "";
      img.width = 40;
      img.height = 40;
      img.loading = "lazy";
      img.addEventListener("error", () => img.replaceWith(fallback));
      box.append(img);
    } else {
      box.append(fallback);
    }
    const text = el("div", { class: "person-text" });
    const line = el("span", { class: "person-line" });
    line.append(el("span", { class: "person-name", text: staff.display_name }));
    if (me && staff.id === me.id) line.append(" ", el("span", { class: "badge badge-you", text: t("admin.you") }));
    text.append(line, el("span", { class: "person-email", text: staff.email }));
    box.append(text);
    person.append(box);

    const role = el("td", { text: t(`role.${staff.role}`) });
    role.dataset.label = labels.role;

    const teamName = this.teamName(staff.team_id);
    const team = el("td", { class: teamName ? null : "muted", text: teamName ?? t("admin.no_team") });
    team.dataset.label = labels.team;

    const status = el("td");
    status.dataset.label = labels.status;
    status.append(
      staff.active
        ? el("span", { class: "badge badge-active", text: t("admin.status.active") })
        : el("span", { class: "badge badge-disabled", text: t("admin.status.disabled") }),
    );

    const skills = el("td");
    skills.dataset.label = labels.skills;
    if (staff.skills.length) {
      const list = el("ul", { class: "chips" });
      list.append(...staff.skills.map((skill) => el("li", { text: skillName(skill) })));
      skills.append(list);
    } else {
      skills.append(el("span", { class: "muted", text: t("admin.none") }));
    }

    const languages = el("td", { class: staff.languages.length ? null : "muted" });
    languages.dataset.label = labels.languages;
    languages.textContent = staff.languages.length
      ? staff.languages.map(languageName).join(t("admin.list_separator"))
      : t("admin.none");

    const actions = el("td", { class: "actions" });
    actions.dataset.label = labels.actions;
    const edit = el("button", { class: "button button-secondary button-small" });
    edit.type = "button";
    edit.dataset.action = "edit";
    edit.dataset.id = staff.id;
    edit.append(t("admin.edit"), el("span", { class: "visually-hidden", text: ` ${staff.display_name}` }));
    actions.append(edit);
    if (!me || staff.id !== me.id) {
      const toggle = el("button", { class: `button button-small ${staff.active ? "button-danger-quiet" : "button-secondary"}` });
      toggle.type = "button";
      toggle.dataset.action = "toggle";
      toggle.dataset.id = staff.id;
      toggle.append(
        t(staff.active ? "admin.disable" : "admin.enable"),
        el("span", { class: "visually-hidden", text: ` ${staff.display_name}` }),
      );
      actions.append(toggle);
    }

    tr.append(person, role, team, status, skills, languages, actions);
    return tr;
  }

  focusRowButton(staffId, action) {
    const button = $("staff-rows").querySelector(
      `button[data-action="${action}"][data-id="${CSS.escape(staffId)}"]`,
    );
    (button ?? $("staff-heading").closest("section").querySelector("#new-staff")).focus();
  }

  // ------------------------------------------------------------------ disable / enable

  async toggleActive(staff, button) {
    this.status.clear();
    this.alert.clear();
    const active = !staff.active;
    if (!active) {
      const sure = await confirmAction({
        title: { key: "admin.confirm.disable_title", params: { name: staff.display_name } },
        text: { key: "admin.confirm.disable_text" },
        confirm: { key: "admin.disable" },
      });
      if (!sure) return;
    }
    const result = await busy(button, "admin.saving", () =>
      api.patch(`/api/v1/staff/${staff.id}`, { active }),
    );
    if (!result.ok) {
      if (this.app.handleAuthError(result)) return;
      this.alert.show({ error: result.error });
      button.focus();
      return;
    }
    this.status.show({
      key: active ? "admin.staff.enabled" : "admin.staff.disabled",
      params: { name: result.data.display_name },
    });
    await this.app.reload();
    this.focusRowButton(staff.id, "toggle");
  }

  // ------------------------------------------------------------------ the dialog

  openDialog(staff) {
    this.editing = staff;
    this.opener = document.activeElement;
    this.photoFile = null;
    this.photoPreview = null;
    this.errors.clear();
    this.dialogStatus.clear();
    const form = $("staff-form");
    form.reset();
    $("sf-email").value = staff?.email ?? "";
    $("sf-password").value = "";
    $("sf-password").required = !staff;
    $("sf-role").value = staff?.role ?? "advisor";
    $("sf-display-name").value = staff?.display_name ?? "";
    $("sf-team").value = staff?.team_id ?? ($("filter-team").value || "");
    $("sf-skills").value = (staff?.skills ?? []).join(", ");
    $("sf-languages").value = (staff?.languages ?? []).join(", ");
    $("sf-timezone").value = staff?.timezone ?? browserTimeZone();
    $("sf-bio").value = staff?.bio ?? "";
    $("sf-nominable").checked = staff?.nominable ?? true;
    this.renderDialogTexts();
    this.renderPhoto();
    $("staff-dialog").showModal();
    $("sf-email").focus();
  }

  closeDialog() {
    if ($("staff-dialog").open) $("staff-dialog").close();
  }

  afterClose() {
    const opener = this.opener;
    this.opener = null;
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  }

  renderDialogTexts() {
    const editing = this.editing;
    $("staff-dialog-title").textContent = editing
      ? t("admin.staff.edit_title", { name: editing.display_name })
      : t("admin.staff.new_title");
    $("sf-password-label").textContent = t(editing ? "admin.field.new_password" : "admin.field.initial_password");
    $("sf-password-hint").textContent = t(editing ? "admin.hint.new_password" : "admin.hint.initial_password");
    this.renderPhoto();
    this.errors.render();
    this.dialogStatus.render();
  }

  renderPhoto() {
    const current = localPhoto(this.editing?.photo_url);
    const removing = $("sf-photo-remove").checked && !this.photoFile;
    const source = this.photoPreview ?? (removing ? null : current);
    const preview = $("sf-photo-preview");
    if (source) preview.src = source;
    else preview.removeAttribute("src");
    preview.alt = source ? t("admin.photo.preview_alt") : "";
    preview.hidden = !source;
    $("sf-photo-none").hidden = Boolean(source);
    $("sf-photo-remove-row").hidden = !this.editing?.photo_url || Boolean(this.photoFile);
    $("sf-photo-chosen").textContent = this.photoFile
      ? t("admin.photo.chosen", { name: this.photoFile.name, size: fileSize(this.photoFile.size) })
      : "";
  }

  choosePhoto() {
    const file = $("sf-photo").files?.[0] ?? null;
    this.errors.fields.delete("photo");
    this.errors.render();
    this.photoFile = null;
    this.photoPreview = null;
    if (file) {
      // Refused here to save a useless upload (the server checks the content again); the
      // input is emptied, so saving goes on without a photo.
      if (!PHOTO_TYPES.includes(file.type)) {
        this.errors.setField("photo", { key: "admin.local_error.photo_type" });
        $("sf-photo").value = "";
      } else if (file.size > PHOTO_MAX_BYTES) {
        this.errors.setField("photo", { key: "admin.local_error.photo_too_large" });
        $("sf-photo").value = "";
      } else {
        this.photoFile = file;
        // A data: URL, which the page's CSP allows for images (blob: it does not).
        const reader = new FileReader();
        reader.addEventListener("load", () => {
          if (this.photoFile === file) {
            this.photoPreview = String(reader.result);
            this.renderPhoto();
          }
        });
        reader.readAsDataURL(file);
      }
    }
    this.renderPhoto();
  }

  readForm() {
    return {
      email: $("sf-email").value.trim(),
      password: $("sf-password").value,
      role: $("sf-role").value,
      display_name: $("sf-display-name").value.trim(),
      team_id: $("sf-team").value || null,
      skills: splitList($("sf-skills").value),
      languages: splitList($("sf-languages").value),
      timezone: $("sf-timezone").value.trim(),
      bio: $("sf-bio").value.trim(),
      nominable: $("sf-nominable").checked,
    };
  }

  /** What an edit changes, as a PATCH body. */
  changes(before, values) {
    const body = {};
    for (const name of ["email", "role", "display_name", "team_id", "timezone", "bio", "nominable"]) {
      if (values[name] !== before[name]) body[name] = values[name];
    }
    for (const name of ["skills", "languages"]) {
      if (!sameList(values[name], before[name])) body[name] = values[name];
    }
    if (values.password) body.password = values.password;
    if ($("sf-photo-remove").checked && !this.photoFile && before.photo_url) body.photo_url = "";
    return body;
  }

  checkRequired(values) {
    const missing = [];
    if (!values.email) missing.push("email");
    if (!this.editing && !values.password) missing.push("password");
    if (!values.display_name) missing.push("display_name");
    if (!values.timezone) missing.push("timezone");
    for (const name of missing) this.errors.setField(name, { key: `admin.local_error.required_${name}` });
    return missing.length === 0;
  }

  async save(button) {
    this.dialogStatus.clear();
    this.errors.clear();
    const values = this.readForm();
    if (!this.checkRequired(values)) {
      this.errors.firstInvalid()?.focus();
      return;
    }
    const before = this.editing;
    let saved = before;
    let changed = false;

    const done = await busy(button, "admin.saving", async () => {
      if (!before) {
        const result = await api.post("/api/v1/staff", values);
        if (!result.ok) return this.failed(result);
        saved = result.data;
        changed = true;
        // From here on the dialog edits the new account, so a retry never creates it twice.
        this.editing = saved;
        $("sf-password").value = "";
        $("sf-password").required = false;
      } else {
        const body = this.changes(before, values);
        if (Object.keys(body).length) {
          const result = await api.patch(`/api/v1/staff/${before.id}`, body);
          if (!result.ok) return this.failed(result);
          saved = result.data;
          this.editing = saved;
          changed = true;
          $("sf-password").value = "";
        }
      }
      if (this.photoFile) {
        button.replaceChildren(t("admin.uploading"));
        button.dataset.busyKey = "admin.uploading";
        const result = await api.upload(`/api/v1/staff/${saved.id}/photo`, this.photoFile);
        if (!result.ok) {
          if (changed) {
            this.dialogStatus.show({
              key: before ? "admin.staff.saved_without_photo" : "admin.staff.created_without_photo",
              params: { name: saved.display_name },
            });
            await this.app.reload();
          }
          return this.failed(result, { photo: true });
        }
        saved = result.data;
        this.editing = saved;
        changed = true;
      }
      return true;
    });
    if (!done) {
      this.renderDialogTexts();
      // The field at fault, or (for an error of the whole form, read out by its alert) the button.
      if ($("staff-dialog").open) (this.errors.firstInvalid() ?? button).focus();
      return;
    }

    const name = saved.display_name;
    this.status.show(
      !changed
        ? { key: "admin.staff.unchanged", params: { name } }
        : { key: before ? "admin.staff.saved" : "admin.staff.created", params: { name } },
    );
    this.alert.clear();
    this.opener = null;
    this.closeDialog();
    if (changed) await this.app.reload();
    if (before) this.focusRowButton(saved.id, "edit");
    else $("new-staff").focus();
  }

  /** Show a failed request in the dialog; false, so busy() work can return it. */
  failed(result, { photo = false } = {}) {
    if (this.app.handleAuthError(result)) {
      this.closeDialog();
      return false;
    }
    const error = result.error;
    // 413 and 415 answer the photo part, which is named "file" in the API.
    if (photo && !Array.isArray(error.details) && !error.details?.field) {
      error.details = { ...(error.details ?? {}), field: "file" };
    }
    this.errors.showApiError(error);
    return false;
  }
}
