// @ts-check
// /admin/consultation-types.html — admins add and change what shoppers can book (length,
// buffers, skills, languages, price or deposit). Strings: the /booking i18n area.
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { $ } from "/shared/dom.js";

const NUMBERS = ["duration_minutes", "buffer_before_minutes", "buffer_after_minutes", "min_notice_minutes", "horizon_days"];
const OPTIONAL_NUMBERS = ["price_amount", "deposit_amount"];
const TEXTS = ["name", "name_en", "description", "description_en"];
const state = { types: [], editing: null };

function listOf(text) {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function show(id, text) {
  $(id).textContent = text ?? "";
  $(id).hidden = !text;
}

function typeLine(type) {
  const facts = [t("ctypes.minutes", { n: type.duration_minutes })];
  if (type.price_amount != null && type.currency) facts.push(formatMoney(type.price_amount, type.currency));
  if (type.required_skills.length) facts.push(type.required_skills.join(", "));
  if (!type.active) facts.push(t("ctypes.inactive"));
  return facts.join(" · ");
}

function render() {
  const list = $("ct-list");
  list.replaceChildren(
    ...state.types.map((type) => {
      const name = language() === "en" && type.name_en ? type.name_en : type.name;
      const item = document.createElement("li");
      item.className = "ct-item";
      const title = document.createElement("strong");
      title.textContent = name;
      const facts = document.createElement("span");
      facts.textContent = ` ${typeLine(type)} `;
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "button button-secondary button-small";
      edit.textContent = t("ctypes.edit_button");
      edit.setAttribute("aria-label", t("ctypes.edit_label", { name }));
      edit.addEventListener("click", () => startEdit(type));
      item.append(title, facts, edit);
      return item;
    }),
  );
  $("ct-empty").hidden = state.types.length > 0;
  const editing = state.editing;
  $("ct-form-title").textContent = editing ? t("ctypes.edit", { name: editing.name }) : t("ctypes.new");
  $("ct-submit").textContent = editing ? t("ctypes.save") : t("ctypes.create");
  $("ct-cancel").hidden = !editing;
}

function fill(type) {
  const form = $("ct-form");
  for (const name of [...TEXTS, ...NUMBERS, ...OPTIONAL_NUMBERS]) form.elements[name].value = type?.[name] ?? "";
  form.elements.kind.value = type?.kind ?? "video";
  form.elements.required_skills.value = (type?.required_skills ?? []).join(", ");
  form.elements.languages.value = (type?.languages ?? []).join(", ");
  form.elements.currency.value = type?.currency ?? "";
  form.elements.payment_capture.value = type?.payment_capture ?? "charge";
  form.elements.active.checked = type?.active ?? true;
  if (!type) {
    form.elements.duration_minutes.value = 30;
    form.elements.buffer_before_minutes.value = 0;
    form.elements.buffer_after_minutes.value = 0;
    form.elements.min_notice_minutes.value = 120;
    form.elements.horizon_days.value = 60;
  }
}

function startEdit(type) {
  state.editing = type;
  fill(type);
  show("ct-error", "");
  show("ct-notice", "");
  render();
  $("ct-form-title").focus();
}

function body() {
  const form = $("ct-form");
  const data = { kind: form.elements.kind.value, active: form.elements.active.checked };
  for (const name of TEXTS) data[name] = form.elements[name].value.trim();
  for (const name of NUMBERS) data[name] = Number(form.elements[name].value);
  for (const name of OPTIONAL_NUMBERS) {
    const value = form.elements[name].value;
    data[name] = value === "" ? null : Number(value);
  }
  data.required_skills = listOf(form.elements.required_skills.value);
  data.languages = listOf(form.elements.languages.value);
  data.currency = form.elements.currency.value.trim().toUpperCase() || null;
  data.payment_capture = form.elements.payment_capture.value;
  return data;
}

async function load() {
  const result = await request("GET", "/api/v1/consultation-types");
  if (!result.ok) return result;
  state.types = result.data.types;
  render();
  return result;
}

async function submit(event) {
  event.preventDefault();
  show("ct-error", "");
  show("ct-notice", "");
  const button = $("ct-submit");
  button.disabled = true;
  const result = state.editing
    ? await request("PATCH", `/api/v1/consultation-types/${state.editing.id}`, { json: body() })
    : await request("POST", "/api/v1/consultation-types", { json: body() });
  button.disabled = false;
  if (!result.ok) {
    show("ct-error", result.error.message || t("booking.error.generic"));
    $("ct-error").focus?.();
    return;
  }
  state.editing = null;
  fill(null);
  await load();
  show("ct-notice", t("ctypes.saved"));
}

async function start() {
  await initI18n({ extraAreas: ["/admin", "/booking", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), location.pathname);
  onLanguageChange(render);
  $("ct-form").addEventListener("submit", submit);
  $("ct-cancel").addEventListener("click", () => {
    state.editing = null;
    fill(null);
    render();
  });
  const me = await request("GET", "/api/v1/auth/me");
  nav.show(me.ok ? me.data.role : null);
  $("ct-checking").hidden = true;
  if (!me.ok || me.data.role !== "admin") {
    $("ct-denied").hidden = false;
    $("ct-denied-text").textContent = t("ctypes.admins_only");
    return;
  }
  $("ct-panel").hidden = false;
  fill(null);
  const result = await load();
  if (!result.ok) show("ct-error", result.error.message);
}

start();
