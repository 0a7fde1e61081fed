// @ts-check
// Teams: the list with member counts, create, rename (a dialog) and delete. The API refuses to
// delete a team that still has members; its answer is shown as it is.
import { t } from "/shared/i18n.js";
import { api } from "/admin/api.js";
import { confirmAction } from "/shared/confirm.js";
import { FormErrors, Notice, busy } from "/admin/forms.js";
import { $, el } from "/shared/dom.js";

const COLUMNS = ["team_name", "description", "members", "actions"];

export class TeamsArea {
  constructor(app) {
    this.app = app;
    this.loaded = false;
    this.editing = null;
    this.opener = null;
    this.status = new Notice($("teams-status"));
    this.alert = new Notice($("teams-alert"));
    this.createErrors = new FormErrors($("team-form"), $("team-form-alert"));
    this.editErrors = new FormErrors($("team-edit-form"), $("team-edit-alert"));
  }

  setup() {
    $("team-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create(event.submitter ?? $("team-create"));
    });
    $("team-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const team = this.app.teams.find((row) => row.id === button.dataset.id);
      if (!team) return;
      if (button.dataset.action === "rename") this.openDialog(team);
      if (button.dataset.action === "delete") this.remove(team, button);
    });
    $("team-edit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveEdit(event.submitter ?? $("team-edit-save"));
    });
    $("team-edit-cancel").addEventListener("click", () => $("team-dialog").close());
    $("team-dialog-close").addEventListener("click", () => $("team-dialog").close());
    $("team-dialog").addEventListener("close", () => {
      const opener = this.opener;
      this.opener = null;
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    });
  }

  async load() {
    const result = await api.get("/api/v1/teams");
    if (!result.ok) {
      if (this.app.handleAuthError(result)) return false;
      this.alert.show({ error: result.error });
      return false;
    }
    this.app.teams = result.data;
    this.loaded = true;
    this.render();
    return true;
  }

  render() {
    this.status.render();
    this.alert.render();
    this.createErrors.render();
    this.editErrors.render();
    if (this.editing) {
      $("team-dialog-title").textContent = t("admin.teams.edit_title", { name: this.editing.name });
    }
    if (!this.loaded) return;
    const labels = Object.fromEntries(COLUMNS.map((column) => [column, t(`admin.col.${column}`)]));
    $("team-rows").replaceChildren(...this.app.teams.map((team) => this.row(team, labels)));
    $("teams-empty").hidden = this.app.teams.length > 0;
    $("teams-table").hidden = this.app.teams.length === 0;
  }

  row(team, labels) {
    const tr = el("tr");
    tr.dataset.id = team.id;
    const name = el("th", { class: "team-name", text: team.name });
    name.scope = "row";
    name.dataset.label = labels.team_name;
    const description = el("td", { class: team.description ? null : "muted", text: team.description || t("admin.none") });
    description.dataset.label = labels.description;
    const members = el("td", { class: "number", text: t("admin.teams.members", { count: team.member_count }) });
    members.dataset.label = labels.members;
    const actions = el("td", { class: "actions" });
    actions.dataset.label = labels.actions;
    for (const [action, key, style] of [
      ["rename", "admin.teams.rename", "button-secondary"],
      ["delete", "admin.teams.delete", "button-danger-quiet"],
    ]) {
      const button = el("button", { class: `button button-small ${style}` });
      button.type = "button";
      button.dataset.action = action;
      button.dataset.id = team.id;
      button.append(t(key), el("span", { class: "visually-hidden", text: ` ${team.name}` }));
      actions.append(button);
    }
    tr.append(name, description, members, actions);
    return tr;
  }

  focusRowButton(teamId, action) {
    const button = $("team-rows").querySelector(
      `button[data-action="${action}"][data-id="${CSS.escape(teamId)}"]`,
    );
    (button ?? $("team-name")).focus();
  }

  async create(button) {
    this.status.clear();
    this.alert.clear();
    this.createErrors.clear();
    const name = $("team-name").value.trim();
    const description = $("team-description").value.trim();
    if (!name) {
      this.createErrors.setField("name", { key: "admin.local_error.required_team_name" });
      $("team-name").focus();
      return;
    }
    const result = await busy(button, "admin.saving", () => api.post("/api/v1/teams", { name, description }));
    if (!result.ok) {
      if (this.app.handleAuthError(result)) return;
      (this.createErrors.showApiError(result.error) ?? button).focus();
      return;
    }
    $("team-form").reset();
    this.status.show({ key: "admin.teams.created", params: { name: result.data.name } });
    await this.app.reloadTeams();
    $("team-name").focus();
  }

  openDialog(team) {
    this.editing = team;
    this.opener = document.activeElement;
    this.status.clear();
    this.alert.clear();
    this.editErrors.clear();
    $("team-dialog-title").textContent = t("admin.teams.edit_title", { name: team.name });
    $("te-name").value = team.name;
    $("te-description").value = team.description;
    $("team-dialog").showModal();
    $("te-name").focus();
    $("te-name").select();
  }

  async saveEdit(button) {
    const team = this.editing;
    this.editErrors.clear();
    const name = $("te-name").value.trim();
    const description = $("te-description").value.trim();
    if (!name) {
      this.editErrors.setField("name", { key: "admin.local_error.required_team_name" });
      $("te-name").focus();
      return;
    }
    const body = {};
    if (name !== team.name) body.name = name;
    if (description !== team.description) body.description = description;
    if (!Object.keys(body).length) {
      $("team-dialog").close();
      this.status.show({ key: "admin.teams.unchanged", params: { name: team.name } });
      return;
    }
    const result = await busy(button, "admin.saving", () => api.patch(`/api/v1/teams/${team.id}`, body));
    if (!result.ok) {
      if (this.app.handleAuthError(result)) {
        $("team-dialog").close();
        return;
      }
      (this.editErrors.showApiError(result.error) ?? button).focus();
      return;
    }
    this.status.show({
      key: body.name ? "admin.teams.renamed" : "admin.teams.saved",
      params: { old: team.name, name: result.data.name },
    });
    this.opener = null;
    this.editing = null;
    $("team-dialog").close();
    await this.app.reloadTeams();
    this.focusRowButton(team.id, "rename");
  }

  async remove(team, button) {
    this.status.clear();
    this.alert.clear();
    const sure = await confirmAction({
      title: { key: "admin.confirm.delete_team_title", params: { name: team.name } },
      text: { key: "admin.confirm.delete_team_text" },
      confirm: { key: "admin.teams.delete" },
    });
    if (!sure) return;
    const result = await busy(button, "admin.deleting", () => api.delete(`/api/v1/teams/${team.id}`));
    if (!result.ok) {
      if (this.app.handleAuthError(result)) return;
      this.alert.show({ error: result.error });
      button.focus();
      return;
    }
    this.status.show({ key: "admin.teams.deleted", params: { name: team.name } });
    await this.app.reloadTeams();
    $("teams-heading").focus();
  }
}
