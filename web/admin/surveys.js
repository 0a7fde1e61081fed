// @ts-check
// /admin/surveys.html — surveys for admins: which survey shows before instant calls and before
// booking each consultation type, the list of surveys, and an editor whose every save is a new
// version (answers already given keep the version they answered). The REST API checks it all;
// this page shows what it says.
import { request, setCsrfToken } from "/shared/api.js";
import { initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { Notice, busy, renderBusyButtons } from "/admin/forms.js";
import { $, el } from "/shared/dom.js";

const TYPES = ["short_text", "long_text", "single_choice", "multiple_choice", "scale", "consent"];
const CHOICE_TYPES = ["single_choice", "multiple_choice"];
const TEXT_TYPES = ["short_text", "long_text"];

const page = {
  view: "checking",
  denied: null, // i18n key
  surveys: [],
  teams: [],
  types: [], // consultation types (booking)
  editing: null, // {id|null, base_version, draft}
  answers: null, // {survey, rows}: the answers shown
};
const status = new Notice($("sv-status"));
const alertBox = new Notice($("sv-alert"));
const formAlert = new Notice($("sv-form-alert"));
let formDetails = [];

const label = (pair) => (pair ? pair[language()] || pair.en || pair.ja || "" : "");

// ------------------------------------------------------------------ data

async function load() {
  const [surveys, teams, types] = await Promise.all([
    request("GET", "/api/v1/surveys"),
    request("GET", "/api/v1/teams"),
    request("GET", "/api/v1/booking/types"),
  ]);
  if (!surveys.ok) {
    alertBox.show({ error: surveys.error });
    return;
  }
  page.surveys = surveys.data;
  page.teams = teams.ok ? teams.data : [];
  // Booking's consultation types, when that part is there; surveys work without them.
  page.types = types.ok ? (types.data.types ?? []) : [];
}

function assignedTo(target) {
  return page.surveys.find((s) => s.assigned_to.includes(target)) ?? null;
}

// ------------------------------------------------------------------ where surveys show

function whereRow(target, name) {
  const id = `where-${target}`;
  const select = el("select");
  select.id = id;
  select.append(new Option(t("survey.admin.no_survey"), ""));
  for (const s of page.surveys.filter((x) => !x.archived)) select.append(new Option(s.name, s.id));
  select.value = assignedTo(target)?.id ?? "";
  const lab = el("label", { text: name });
  lab.htmlFor = id;
  const button = el("button", { class: "button button-small", text: t("survey.admin.apply") });
  button.type = "button";
  button.dataset.i18n = "survey.admin.apply";
  button.setAttribute("aria-label", t("survey.admin.apply_for", { name }));
  button.addEventListener("click", () => assign(target, select.value || null, button, name));
  const row = el("tr");
  row.dataset.target = target;
  const head = el("th");
  head.scope = "row";
  head.append(lab);
  const cell = el("td");
  cell.append(select);
  const action = el("td");
  action.append(button);
  row.append(head, cell, action);
  return row;
}

function renderWhere() {
  const rows = [whereRow("instant", t("survey.admin.instant"))];
  for (const type of page.types) {
    const name = language() === "en" && type.name_en ? type.name_en : type.name;
    rows.push(whereRow(type.id, t("survey.admin.booking_of", { name })));
  }
  $("sv-where-rows").replaceChildren(...rows);
}

async function assign(target, surveyId, button, name) {
  const result = await busy(button, "survey.admin.saving", () =>
    request("PUT", `/api/v1/survey-assignments/${encodeURIComponent(target)}`, { json: { survey_id: surveyId } }),
  );
  if (!result.ok) {
    alertBox.show({ error: result.error });
    return;
  }
  alertBox.clear();
  status.show({ key: surveyId ? "survey.admin.assigned" : "survey.admin.unassigned", params: { name } });
  await load();
  render();
}

// ------------------------------------------------------------------ list

function shownText(survey) {
  if (!survey.assigned_to.length) return t("survey.admin.shown_nowhere");
  return survey.assigned_to
    .map((target) => {
      if (target === "instant") return t("survey.admin.instant");
      const type = page.types.find((x) => x.id === target);
      return type ? (language() === "en" && type.name_en ? type.name_en : type.name) : target;
    })
    .join(", ");
}

function renderList() {
  $("sv-empty").hidden = page.surveys.length > 0;
  $("sv-table").hidden = !page.surveys.length;
  $("sv-rows").replaceChildren(
    ...page.surveys.map((survey) => {
      const row = el("tr");
      row.dataset.surveyId = survey.id;
      const name = el("th", { text: survey.name });
      name.scope = "row";
      if (survey.archived) name.append(" ", el("span", { class: "badge badge-disabled", text: t("survey.admin.archived") }));
      const edit = el("button", { class: "button button-secondary button-small", text: t("survey.admin.edit") });
      edit.type = "button";
      edit.setAttribute("aria-label", t("survey.admin.edit_named", { name: survey.name }));
      edit.addEventListener("click", () => openEditor(survey));
      const archive = el("button", { class: "button button-secondary button-small", text: t(survey.archived ? "survey.admin.restore" : "survey.admin.archive") });
      archive.type = "button";
      archive.setAttribute("aria-label", t(survey.archived ? "survey.admin.restore_named" : "survey.admin.archive_named", { name: survey.name }));
      archive.addEventListener("click", () => setArchived(survey, !survey.archived, archive));
      const answers = el("button", { class: "button button-secondary button-small", text: t("survey.admin.answers") });
      answers.type = "button";
      answers.setAttribute("aria-label", t("survey.admin.answers_named", { name: survey.name }));
      answers.addEventListener("click", () => openAnswers(survey, answers));
      const actions = el("td", { class: "sv-row-actions" });
      actions.append(edit, answers, archive);
      row.append(
        name,
        el("td", { text: String(survey.current_version) }),
        el("td", { text: String(survey.current.questions.length) }),
        el("td", { text: shownText(survey) }),
        actions,
      );
      return row;
    }),
  );
}

async function setArchived(survey, archived, button) {
  const result = await busy(button, "survey.admin.saving", () =>
    request("POST", `/api/v1/surveys/${survey.id}/archive`, { json: { archived } }),
  );
  if (!result.ok) {
    alertBox.show({ error: result.error });
    return;
  }
  alertBox.clear();
  status.show({ key: archived ? "survey.admin.archived_done" : "survey.admin.restored_done", params: { name: survey.name } });
  await load();
  render();
}

// ------------------------------------------------------------------ answers

async function openAnswers(survey, button) {
  const result = await busy(button, "survey.admin.loading", () => request("GET", `/api/v1/surveys/${survey.id}/responses`));
  if (!result.ok) {
    alertBox.show({ error: result.error });
    return;
  }
  page.answers = { survey, rows: result.data };
  renderAnswers();
  $("sv-answers").hidden = false;
  $("sv-answers-title").focus();
}

function renderAnswers() {
  const open = page.answers;
  if (!open) return;
  $("sv-answers-title").textContent = t("survey.admin.answers_to", { name: open.survey.name });
  $("sv-answers-status").textContent = open.rows.length ? "" : t("survey.admin.no_answers");
  const format = new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
  $("sv-answers-list").replaceChildren(
    ...open.rows.map((row) => {
      const item = el("li", { class: "sv-answer" });
      item.append(el("p", { class: "sv-answer-meta", text: t("survey.admin.answer_meta", { when: format.format(new Date(row.submitted_at)), version: row.version }) }));
      const list = el("dl", { class: "sv-answer-list" });
      for (const a of row.answers) list.append(el("dt", { text: label(a.label) }), el("dd", { text: label(a.shown) }));
      item.append(list);
      return item;
    }),
  );
}

// ------------------------------------------------------------------ editor

function blankQuestion(n) {
  return { id: `q${n}`, type: "short_text", required: false, label: { ja: "", en: "" }, choices: [], scale: null, max_length: null };
}

function blankChoice(n) {
  return { value: `option-${n}`, label: { ja: "", en: "" }, routing: { skill: null, team_id: null, language: null } };
}

function openEditor(survey) {
  const current = survey?.current;
  page.editing = {
    id: survey?.id ?? null,
    base_version: survey?.current_version ?? null,
    draft: {
      name: survey?.name ?? "",
      title: { ...(current?.title ?? { ja: "", en: "" }) },
      description: { ...(current?.description ?? { ja: "", en: "" }) },
      questions: structuredClone(current?.questions ?? [blankQuestion(1)]),
    },
  };
  formAlert.clear();
  formDetails = [];
  const d = page.editing.draft;
  $("sv-name").value = d.name;
  $("sv-title-ja").value = d.title.ja;
  $("sv-title-en").value = d.title.en;
  $("sv-desc-ja").value = d.description.ja ?? "";
  $("sv-desc-en").value = d.description.en ?? "";
  render();
  $("sv-editor").hidden = false;
  $("sv-editor-title").focus();
}

function closeEditor() {
  page.editing = null;
  $("sv-editor").hidden = true;
  $("sv-list-title").focus();
}

/** @param {string} id @param {any} value @param {{lang?: string, max?: number, type?: string}} [options] */
function input(id, value, { lang, max, type = "text" } = {}) {
  const node = el("input");
  node.id = id;
  node.type = type;
  node.value = value ?? "";
  if (lang) node.lang = lang;
  if (max) node.maxLength = max;
  return node;
}

function field(labelKey, control, params = {}) {
  const box = el("div", { class: "field" });
  const lab = el("label", { text: t(labelKey, params) });
  lab.htmlFor = control.id;
  box.append(lab, control);
  return box;
}

function selectOf(id, options, value) {
  const select = el("select");
  select.id = id;
  for (const [v, text] of options) select.append(new Option(text, v));
  select.value = value ?? "";
  return select;
}

function bind(control, apply) {
  control.addEventListener(control.tagName === "SELECT" || control.type === "checkbox" ? "change" : "input", () => apply(control));
}

function choiceRow(q, qi, choice, ci) {
  const p = `q${qi}-c${ci}`;
  const value = input(`${p}-value`, choice.value, { max: 40 });
  bind(value, (c) => (choice.value = c.value.trim()));
  const ja = input(`${p}-ja`, choice.label.ja, { lang: "ja", max: 500 });
  bind(ja, (c) => (choice.label.ja = c.value));
  const en = input(`${p}-en`, choice.label.en, { lang: "en", max: 500 });
  bind(en, (c) => (choice.label.en = c.value));
  const skill = input(`${p}-skill`, choice.routing?.skill, { max: 40 });
  bind(skill, (c) => (choice.routing.skill = c.value.trim() || null));
  const team = selectOf(`${p}-team`, [["", t("survey.admin.route_none")], ...page.teams.map((x) => [x.id, x.name])], choice.routing?.team_id);
  bind(team, (c) => (choice.routing.team_id = c.value || null));
  const lang = selectOf(`${p}-lang`, [["", t("survey.admin.route_none")], ["ja", t("lang.ja")], ["en", t("lang.en")]], choice.routing?.language);
  bind(lang, (c) => (choice.routing.language = c.value || null));
  const remove = el("button", { class: "button button-danger-quiet button-small", text: t("survey.admin.remove_choice") });
  remove.type = "button";
  remove.setAttribute("aria-label", t("survey.admin.remove_choice_n", { n: ci + 1, q: qi + 1 }));
  remove.addEventListener("click", () => {
    q.choices.splice(ci, 1);
    renderQuestions();
    $(`q${qi}-add-choice`)?.focus();
  });
  choice.routing ??= { skill: null, team_id: null, language: null };
  const row = el("fieldset", { class: "sv-choice" });
  row.append(
    el("legend", { text: t("survey.admin.choice_n", { n: ci + 1 }) }),
    field("survey.admin.field.value", value),
    field("survey.admin.field.label_ja", ja),
    field("survey.admin.field.label_en", en),
    field("survey.admin.field.route_skill", skill),
    field("survey.admin.field.route_team", team),
    field("survey.admin.field.route_language", lang),
    remove,
  );
  return row;
}

function questionItem(q, qi, all) {
  const p = `q${qi}`;
  const box = el("fieldset", { class: "sv-question" });
  box.append(el("legend", { text: t("survey.admin.question_n", { n: qi + 1 }) }));
  const id = input(`${p}-id`, q.id, { max: 40 });
  bind(id, (c) => (q.id = c.value.trim()));
  const type = selectOf(`${p}-type`, TYPES.map((x) => [x, t(`survey.admin.type.${x}`)]), q.type);
  type.addEventListener("change", () => {
    q.type = type.value;
    if (CHOICE_TYPES.includes(q.type) && q.choices.length < 2) q.choices = [blankChoice(1), blankChoice(2)];
    if (!CHOICE_TYPES.includes(q.type)) q.choices = [];
    q.scale = q.type === "scale" ? (q.scale ?? "1-5") : null;
    if (!TEXT_TYPES.includes(q.type)) q.max_length = null;
    renderQuestions();
    $(`${p}-type`).focus();
  });
  const required = el("input");
  required.type = "checkbox";
  required.id = `${p}-required`;
  required.checked = q.required;
  bind(required, (c) => (q.required = c.checked));
  const requiredBox = el("div", { class: "check" });
  const requiredLabel = el("label", { text: t("survey.admin.field.required") });
  requiredLabel.htmlFor = required.id;
  requiredBox.append(required, requiredLabel);
  const ja = input(`${p}-label-ja`, q.label.ja, { lang: "ja", max: 500 });
  bind(ja, (c) => (q.label.ja = c.value));
  const en = input(`${p}-label-en`, q.label.en, { lang: "en", max: 500 });
  bind(en, (c) => (q.label.en = c.value));
  const head = el("div", { class: "sv-pair" });
  head.append(field("survey.admin.field.id", id), field("survey.admin.field.type", type));
  const labels = el("div", { class: "sv-pair" });
  labels.append(field("survey.admin.field.label_ja", ja), field("survey.admin.field.label_en", en));
  box.append(head, labels, requiredBox);
  if (q.type === "scale") {
    const scale = selectOf(`${p}-scale`, [["1-5", "1–5"], ["0-10", "0–10"]], q.scale ?? "1-5");
    bind(scale, (c) => (q.scale = c.value));
    box.append(field("survey.admin.field.scale", scale));
  }
  if (TEXT_TYPES.includes(q.type)) {
    const max = input(`${p}-max`, q.max_length ?? "", { type: "number" });
    max.min = "1";
    max.max = q.type === "short_text" ? "200" : "2000";
    bind(max, (c) => (q.max_length = c.value ? Number(c.value) : null));
    box.append(field("survey.admin.field.max_length", max));
  }
  if (CHOICE_TYPES.includes(q.type)) {
    const list = el("div", { class: "sv-choices" });
    q.choices.forEach((choice, ci) => list.append(choiceRow(q, qi, choice, ci)));
    const add = el("button", { class: "button button-secondary button-small", text: t("survey.admin.add_choice") });
    add.type = "button";
    add.id = `${p}-add-choice`;
    add.addEventListener("click", () => {
      q.choices.push(blankChoice(q.choices.length + 1));
      renderQuestions();
      $(`${p}-c${q.choices.length - 1}-value`)?.focus();
    });
    box.append(list, add);
  }
  const tools = el("div", { class: "sv-question-tools" });
  const move = (delta, key) => {
    const button = el("button", { class: "button button-secondary button-small", text: t(key) });
    button.type = "button";
    button.disabled = qi + delta < 0 || qi + delta >= all.length;
    button.setAttribute("aria-label", t(`${key}_n`, { n: qi + 1 }));
    button.addEventListener("click", () => {
      const [item] = all.splice(qi, 1);
      all.splice(qi + delta, 0, item);
      renderQuestions();
      $(`q${qi + delta}-id`)?.focus();
    });
    return button;
  };
  const remove = el("button", { class: "button button-danger-quiet button-small", text: t("survey.admin.remove_question") });
  remove.type = "button";
  remove.disabled = all.length <= 1;
  remove.setAttribute("aria-label", t("survey.admin.remove_question_n", { n: qi + 1 }));
  remove.addEventListener("click", () => {
    all.splice(qi, 1);
    renderQuestions();
    $("sv-add-question").focus();
  });
  tools.append(move(-1, "survey.admin.move_up"), move(1, "survey.admin.move_down"), remove);
  box.append(tools);
  const item = el("li");
  item.append(box);
  return item;
}

function renderQuestions() {
  const questions = page.editing?.draft.questions ?? [];
  $("sv-questions").replaceChildren(...questions.map((q, i) => questionItem(q, i, questions)));
}

function payload() {
  const d = page.editing.draft;
  const body = {
    name: $("sv-name").value.trim(),
    title: { ja: $("sv-title-ja").value.trim(), en: $("sv-title-en").value.trim() },
    description: { ja: $("sv-desc-ja").value.trim(), en: $("sv-desc-en").value.trim() },
    questions: d.questions.map((q) => {
      const out = { id: q.id, type: q.type, required: Boolean(q.required), label: { ja: q.label.ja.trim(), en: q.label.en.trim() } };
      if (q.help) out.help = q.help;
      if (CHOICE_TYPES.includes(q.type)) {
        out.choices = q.choices.map((c) => ({
          value: c.value,
          label: { ja: c.label.ja.trim(), en: c.label.en.trim() },
          routing: { skill: c.routing?.skill || null, team_id: c.routing?.team_id || null, language: c.routing?.language || null },
        }));
      }
      if (q.type === "scale") out.scale = q.scale ?? "1-5";
      if (TEXT_TYPES.includes(q.type) && q.max_length) out.max_length = q.max_length;
      return out;
    }),
  };
  if (page.editing.id) body.base_version = page.editing.base_version;
  return body;
}

async function save(event) {
  event.preventDefault();
  const editing = page.editing;
  if (!editing) return;
  const body = payload();
  const result = await busy($("sv-save"), "survey.admin.saving", () =>
    editing.id
      ? request("PUT", `/api/v1/surveys/${editing.id}`, { json: body })
      : request("POST", "/api/v1/surveys", { json: body }),
  );
  if (!result.ok) {
    formAlert.show({ error: result.error });
    formDetails = Array.isArray(result.error.details) ? result.error.details : [];
    renderDetails();
    $("sv-form-alert").scrollIntoView({ block: "nearest" });
    $("sv-save").focus();
    return;
  }
  const saved = result.data;
  status.show({ key: "survey.admin.saved", params: { name: saved.name, version: saved.current_version } });
  page.editing = null;
  $("sv-editor").hidden = true;
  await load();
  render();
  $("sv-list-title").focus();
}

function renderDetails() {
  $("sv-form-details").replaceChildren(
    ...formDetails.map((d) => el("li", { text: `${d.field}: ${String(d.message ?? "").replace(/^Value error, /, "")}` })),
  );
}

// ------------------------------------------------------------------ page

function show(view) {
  page.view = view;
  $("sv-checking").hidden = view !== "checking";
  $("sv-denied").hidden = view !== "denied";
  $("sv-panel").hidden = view !== "ready";
  render();
}

function render() {
  document.title = t("survey.admin.page_title");
  status.render();
  alertBox.render();
  formAlert.render();
  renderBusyButtons();
  if (page.denied) $("sv-denied-text").textContent = t(page.denied);
  if (page.view !== "ready") return;
  renderWhere();
  renderList();
  if (page.editing) {
    $("sv-editor-title").textContent = page.editing.id
      ? t("survey.admin.editing", { name: page.editing.draft.name || $("sv-name").value })
      : t("survey.admin.creating");
    $("sv-editor-hint").textContent = page.editing.id
      ? t("survey.admin.version_hint", { version: page.editing.base_version, next: page.editing.base_version + 1 })
      : t("survey.admin.new_hint");
    renderQuestions();
    renderDetails();
  }
  renderAnswers();
}

async function start() {
  await initI18n({ extraAreas: ["/admin", "/surveys", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), location.pathname);
  onLanguageChange(render);
  $("sv-new").addEventListener("click", () => openEditor(null));
  $("sv-cancel").addEventListener("click", closeEditor);
  $("sv-answers-close").addEventListener("click", () => {
    page.answers = null;
    $("sv-answers").hidden = true;
    $("sv-list-title").focus();
  });
  $("sv-form").addEventListener("submit", save);
  $("sv-add-question").addEventListener("click", () => {
    const questions = page.editing.draft.questions;
    questions.push(blankQuestion(questions.length + 1));
    renderQuestions();
    $(`q${questions.length - 1}-id`)?.focus();
  });
  const me = await request("GET", "/api/v1/auth/me");
  nav.show(me.ok ? me.data.role : null);
  if (!me.ok || me.data.role !== "admin") {
    page.denied = me.ok ? "survey.admin.admins_only" : "survey.admin.signed_out";
    show("denied");
    return;
  }
  setCsrfToken(me.data.csrf_token);
  await load();
  show("ready");
}

start();
