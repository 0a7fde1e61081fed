// @ts-check
// The shopper's survey form, shared by the widget (before "talk now") and the booking page.
//
//   import { mountSurvey } from "/shared/survey-form.js";
//   const form = mountSurvey(container, survey, { lang });  // survey: GET /api/v1/intake-survey .survey
//   if (form.validate()) { const answers = form.collect(); … }
//   form.showErrors(error.details);   // the 422 details of POST /api/v1/intake-responses
//   form.setLanguage("en");           // re-label in the other language, keeping the answers
//
// Strings come from the /surveys i18n area: load it with initI18n({ extraAreas: ["/surveys"] }).
// Every control is labelled; each question's error is tied to it (aria-describedby,
// aria-invalid), and showErrors/validate move focus to the first wrong question.
import { t } from "/shared/i18n.js";
import { el } from "/shared/dom.js";

const STYLESHEET = "/surveys/survey-form.css";
const TEXT_LIMITS = { short_text: 200, long_text: 2000 };
const SCALES = { "1-5": [1, 5], "0-10": [0, 10] };
let formCount = 0;

function ensureStylesheet() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = STYLESHEET;
  document.head.append(link);
}

function pick(label, lang) {
  if (!label) return "";
  return label[lang] || label.en || label.ja || "";
}

function limitOf(question) {
  return question.max_length || TEXT_LIMITS[question.type] || 0;
}

/** Client-side check with the server's rules, so most mistakes show before sending. */
function checkOne(question, value) {
  if (question.type === "consent") {
    return question.required && value !== true ? "consent_required" : null;
  }
  const blank = value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length);
  if (blank) return question.required ? "required" : null;
  if (question.type === "short_text" || question.type === "long_text") {
    if (value.length > limitOf(question)) return "too_long";
    if (question.type === "short_text" && /[\r\n]/.test(value)) return "one_line";
  }
  return null;
}

export function mountSurvey(container, survey, { lang = "ja" } = {}) {
  ensureStylesheet();
  const prefix = `sv${++formCount}`;
  let current = lang;
  let errors = {}; // question id → error code or message

  const fieldId = (q) => `${prefix}-${q.id}`;
  const errorId = (q) => `${prefix}-${q.id}-error`;

  function requiredMark(q) {
    return q.required && q.type !== "consent"
      ? el("span", { class: "survey-required", text: ` ${t("survey.required")}` })
      : null;
  }

  function help(q) {
    const text = pick(q.help, current);
    return text ? el("p", { class: "survey-help", id: `${fieldId(q)}-help`, text }) : null;
  }

  function describedBy(q) {
    return [pick(q.help, current) ? `${fieldId(q)}-help` : null, errorId(q)].filter(Boolean).join(" ");
  }

  function choiceGroup(q, type) {
    const options = q.type === "scale"
      ? Array.from({ length: SCALES[q.scale][1] - SCALES[q.scale][0] + 1 }, (_, i) => {
          const n = SCALES[q.scale][0] + i;
          return { value: String(n), label: String(n) };
        })
      : q.choices.map((c) => ({ value: c.value, label: pick(c.label, current) }));
    const list = el("div", { class: q.type === "scale" ? "survey-scale" : "survey-choices" });
    options.forEach((option, index) => {
      const id = `${fieldId(q)}-${index}`;
      list.append(
        el(
          "label",
          { class: "survey-option", for: id },
          el("input", { type, id, name: fieldId(q), value: option.value }),
          el("span", { text: option.label }),
        ),
      );
    });
    const ends = q.type === "scale"
      ? el(
          "p",
          { class: "survey-scale-ends", "aria-hidden": "true" },
          el("span", { text: t(q.scale === "0-10" ? "survey.scale_low_10" : "survey.scale_low_5") }),
          el("span", { text: t(q.scale === "0-10" ? "survey.scale_high_10" : "survey.scale_high_5") }),
        )
      : null;
    return el(
      "fieldset",
      {
        class: "survey-question",
        id: fieldId(q),
        "data-question": q.id,
        "aria-describedby": describedBy(q),
        ...(q.type === "single_choice" || q.type === "scale" ? { role: "radiogroup" } : {}),
        ...(q.required && type === "radio" ? { "aria-required": "true" } : {}),
      },
      el("legend", {}, el("span", { text: pick(q.label, current) }), requiredMark(q)),
      help(q),
      list,
      ends,
      el("p", { class: "survey-error", id: errorId(q), role: "alert" }),
    );
  }

  function questionNode(q) {
    if (q.type === "single_choice" || q.type === "scale") return choiceGroup(q, "radio");
    if (q.type === "multiple_choice") return choiceGroup(q, "checkbox");
    if (q.type === "consent") {
      return el(
        "div",
        { class: "survey-question survey-consent", "data-question": q.id },
        el(
          "label",
          { class: "survey-option", for: fieldId(q) },
          el("input", {
            type: "checkbox",
            id: fieldId(q),
            "aria-describedby": describedBy(q),
            "aria-required": q.required ? "true" : null,
          }),
          el("span", { text: pick(q.label, current) }),
        ),
        help(q),
        el("p", { class: "survey-error", id: errorId(q), role: "alert" }),
      );
    }
    const control =
      q.type === "long_text"
        ? el("textarea", { id: fieldId(q), rows: 4, maxlength: limitOf(q) })
        : el("input", { type: "text", id: fieldId(q), maxlength: limitOf(q), autocomplete: "off" });
    control.setAttribute("aria-describedby", describedBy(q));
    if (q.required) control.setAttribute("aria-required", "true");
    return el(
      "div",
      { class: "survey-question survey-text", "data-question": q.id },
      el("label", { for: fieldId(q) }, el("span", { text: pick(q.label, current) }), requiredMark(q)),
      help(q),
      control,
      el("p", { class: "survey-error", id: errorId(q), role: "alert" }),
    );
  }

  function valueOf(q) {
    const root = container.querySelector(`[data-question="${q.id}"]`);
    if (!root) return null;
    if (q.type === "consent") return root.querySelector("input").checked;
    if (q.type === "multiple_choice") {
      return [...root.querySelectorAll("input:checked")].map((i) => i.value);
    }
    if (q.type === "single_choice" || q.type === "scale") {
      const checked = root.querySelector("input:checked");
      if (!checked) return null;
      return q.type === "scale" ? Number(checked.value) : checked.value;
    }
    return root.querySelector("input, textarea").value.trim();
  }

  function restore(answers) {
    for (const q of survey.questions) {
      const value = answers[q.id];
      if (value === undefined || value === null) continue;
      const root = container.querySelector(`[data-question="${q.id}"]`);
      if (q.type === "consent") root.querySelector("input").checked = value === true;
      else if (q.type === "multiple_choice" || q.type === "single_choice" || q.type === "scale") {
        const wanted = (Array.isArray(value) ? value : [value]).map(String);
        for (const input of root.querySelectorAll("input")) input.checked = wanted.includes(input.value);
      } else root.querySelector("input, textarea").value = value;
    }
  }

  function collect() {
    const answers = {};
    for (const q of survey.questions) {
      const value = valueOf(q);
      const blank = value === null || value === "" || (Array.isArray(value) && !value.length);
      if (q.type === "consent" || !blank) answers[q.id] = value;
    }
    return answers;
  }

  function messageFor(code, q) {
    const key = `survey.error.${code}`;
    const text = t(key, { limit: limitOf(q) });
    return text === key ? null : text;
  }

  function paintErrors({ focus = false } = {}) {
    let first = null;
    for (const q of survey.questions) {
      const root = container.querySelector(`[data-question="${q.id}"]`);
      const box = root.querySelector(".survey-error");
      const problem = errors[q.id];
      box.textContent = problem ? messageFor(problem.code, q) ?? problem.message ?? t("survey.error.invalid") : "";
      root.classList.toggle("survey-invalid", Boolean(problem));
      for (const control of root.querySelectorAll("input, textarea")) {
        if (problem) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
      }
      if (problem && !first) first = root.querySelector("input, textarea");
    }
    if (focus && first) first.focus();
    return !first;
  }

  function render() {
    const answers = container.childElementCount ? collect() : {};
    const title = pick(survey.title, current);
    const description = pick(survey.description, current);
    container.replaceChildren(
      el(
        "div",
        { class: "survey-form", "data-survey-id": survey.id, "data-survey-version": survey.version },
        title ? el("h2", { class: "survey-title", text: title }) : null,
        description ? el("p", { class: "survey-description", text: description }) : null,
        ...survey.questions.map(questionNode),
      ),
    );
    restore(answers);
    paintErrors();
  }

  render();
  // An answer being changed is no longer wrong: its message goes at once.
  const clear = (event) => {
    const id = event.target.closest?.("[data-question]")?.dataset.question;
    if (id && errors[id]) {
      delete errors[id];
      paintErrors();
    }
  };
  container.addEventListener("input", clear);
  container.addEventListener("change", clear);

  return {
    /** The answers as the API takes them ({question id: value}); blank optional ones left out. */
    collect,
    /** Check on this side; shows every problem and focuses the first. True when all is well. */
    validate() {
      errors = {};
      for (const q of survey.questions) {
        const code = checkOne(q, valueOf(q));
        if (code) errors[q.id] = { code };
      }
      return paintErrors({ focus: true });
    },
    /** Show the server's per-field errors: its 422 details ([{field: "answers.<id>", code,
     * message}]) or a {question id: code} map. */
    showErrors(fieldErrors) {
      errors = {};
      const list = Array.isArray(fieldErrors)
        ? fieldErrors
        : Object.entries(fieldErrors ?? {}).map(([id, code]) => ({ field: `answers.${id}`, code }));
      for (const item of list) {
        const id = String(item.field ?? "").replace(/^answers\./, "");
        if (survey.questions.some((q) => q.id === id)) errors[id] = { code: item.code, message: item.message };
      }
      return paintErrors({ focus: true });
    },
    /** Re-label in another language, keeping what was answered. */
    setLanguage(lang) {
      current = lang;
      render();
    },
    survey,
  };
}
