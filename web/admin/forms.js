// @ts-check
// Messages, field errors and progress for the admin forms. Every message on screen is kept as
// data ({key, params} made here, {error} from the API, or {detail} for one field of a 422) and
// turned into text by render(), so a language switch re-translates what is already shown.
import { language, t } from "/shared/i18n.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

function errorParams(error) {
  const details = error.details && !Array.isArray(error.details) ? error.details : {};
  return {
    seconds: details.retry_after ?? 60,
    count: details.member_count ?? "",
    limit_mb: details.limit ? Math.round(details.limit / (1024 * 1024)) : 2,
  };
}

/** An API error as text. The server writes its messages in English for people, so an English
 * page shows them as they are; a Japanese page shows the translation of the error code. */
export function errorText(error) {
  return sharedErrorText(error, "admin.error.", { params: errorParams(error), serverFirst: language() === "en" });
}

function cleanDetail(message) {
  return String(message || "").replace(/^Value error, /, "");
}

/** One field of a 422 ({field, message, type}) as text. */
export function detailText(detail) {
  if (language() !== "en") {
    const field = String(detail.field || "").split(".")[0];
    for (const key of [`admin.field_error.${field}.${detail.type}`, `admin.field_error.${detail.type}`]) {
      const text = t(key);
      if (text !== key) return text;
    }
  }
  return cleanDetail(detail.message) || t("admin.error.unknown");
}

/** A message kept as data, as text in the current language. */
export function messageText(message) {
  if (!message) return "";
  if (message.key) return t(message.key, message.params ?? {});
  if (message.detail) return detailText(message.detail);
  if (message.error) return errorText(message.error);
  return "";
}

/** A live region (role=status or role=alert) that shows one message at a time. */
export class Notice {
  constructor(element) {
    this.element = element;
    this.message = null;
  }

  show(message) {
    this.message = message;
    this.render();
  }

  clear() {
    this.show(null);
  }

  render() {
    const text = messageText(this.message);
    // Kept in the page (not hidden) so screen readers follow the region; empty looks like nothing.
    this.element.textContent = text;
    this.element.classList.toggle("is-empty", !text);
  }
}

/**
 * The errors of one form: next to the field they name (an element [data-error-for=name],
 * linked from its control by aria-describedby) or, for the rest, in the form's alert.
 */
export class FormErrors {
  constructor(form, alert, { aliases = {} } = {}) {
    this.form = form;
    this.alert = new Notice(alert);
    this.aliases = aliases; // API field name → this form's field name
    this.fields = new Map();
  }

  slot(name) {
    return this.form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  }

  control(name) {
    const slot = this.slot(name);
    return slot ? document.getElementById(slot.dataset.control) : null;
  }

  clear() {
    this.fields.clear();
    this.alert.clear();
    this.render();
  }

  /** Put a field error made here (e.g. a missing value) on one field. */
  setField(name, message) {
    this.fields.set(name, message);
    if (!this.alert.message) this.alert.show({ key: "admin.fix_fields" });
    this.render();
  }

  fieldName(apiField) {
    const name = String(apiField || "").split(".")[0];
    return this.aliases[name] ?? name;
  }

  /** Spread an API failure over the fields it names; returns the first control at fault. */
  showApiError(error) {
    this.fields.clear();
    let general = null;
    if (Array.isArray(error.details)) {
      for (const detail of error.details) {
        const name = this.fieldName(detail.field);
        if (this.slot(name)) {
          if (!this.fields.has(name)) this.fields.set(name, { detail });
        } else {
          general = { error };
        }
      }
    } else if (error.details?.field && this.slot(this.fieldName(error.details.field))) {
      this.fields.set(this.fieldName(error.details.field), { error });
    } else {
      general = { error };
    }
    this.alert.show(general ?? { key: "admin.fix_fields" });
    this.render();
    return this.firstInvalid();
  }

  firstInvalid() {
    for (const slot of this.form.querySelectorAll("[data-error-for]")) {
      if (this.fields.has(slot.dataset.errorFor)) return document.getElementById(slot.dataset.control);
    }
    return null;
  }

  render() {
    for (const slot of this.form.querySelectorAll("[data-error-for]")) {
      const message = this.fields.get(slot.dataset.errorFor);
      slot.textContent = messageText(message);
      slot.hidden = !message;
      const control = document.getElementById(slot.dataset.control);
      if (!control) continue;
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
    this.alert.render();
  }
}

/** Run work() with the button disabled and saying what is happening ("Saving…"). */
export async function busy(button, labelKey, work) {
  const saved = [...button.childNodes];
  const form = button.form;
  button.disabled = true;
  button.replaceChildren(t(labelKey));
  button.dataset.busyKey = labelKey;
  form?.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    delete button.dataset.busyKey;
    form?.removeAttribute("aria-busy");
    button.replaceChildren(...saved);
    // A label from the i18n table may have changed language meanwhile.
    if (button.dataset.i18n) button.textContent = t(button.dataset.i18n);
    button.disabled = false;
  }
}

/** Re-translate the label of buttons in the middle of busy(). */
/** @param {ParentNode} [root] */
export function renderBusyButtons(root = document) {
  for (const button of root.querySelectorAll(/** @type {"button"} */ ("button[data-busy-key]"))) {
    button.textContent = t(button.dataset.busyKey);
  }
}
