// @ts-check
// The post-call survey form: satisfaction 1–5 (required), would-you-recommend 0–10 and a
// comment (optional). Shown on the call page after hang-up and on the mail link's page; each
// passes its own send(answers) → {ok, status, data, error}.
import { language, onLanguageChange, t } from "/shared/i18n.js";
import { mountSurvey } from "/shared/survey-form.js";
import { el } from "/shared/dom.js";

let count = 0;

function both(key) {
  // The labels follow the page's language: the form is re-made when it changes.
  const text = t(key);
  return { ja: text, en: text };
}

function csatSurvey() {
  return {
    id: "csat",
    version: 1,
    title: { ja: "", en: "" },
    description: { ja: "", en: "" },
    questions: [
      { id: "csat", type: "scale", scale: "1-5", required: true, label: both("survey.csat_satisfaction"), choices: [] },
      { id: "nps", type: "scale", scale: "0-10", required: false, label: both("survey.csat_recommend"), choices: [] },
      { id: "comment", type: "long_text", required: false, label: both("survey.csat_comment"), choices: [], max_length: 2000 },
    ],
  };
}

/** POST JSON; never throws: {ok, status, data} or {ok: false, status, error}. */
export async function postJson(path, body, headers = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
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
  return { ok: false, status: response.status, error: data?.error ?? { code: "http_error", message: "" } };
}

/**
 * Put the post-call survey into container. Returns {done: Promise<"sent"|"already">}.
 * @param {HTMLElement} container
 * @param {{send: (answers: any) => Promise<any>, heading?: "h1" | "h2" | "h3"}} options
 */
export function mountCsat(container, { send, heading = "h2" }) {
  const id = `csat${++count}`;
  const title = el(heading, { id: `${id}-title`, class: "csat-title", tabindex: "-1" });
  const fields = el("div");
  const button = el("button", { class: "button", type: "submit" });
  const status = el("p", { class: "csat-status", role: "status", "aria-live": "polite" });
  const form = el("form", { class: "csat-form", novalidate: "", "aria-labelledby": title.id }, fields, el("div", { class: "survey-actions" }, button), status);
  const box = el("section", { class: "csat", "aria-labelledby": title.id, "data-csat": "" }, title, form);
  container.replaceChildren(box);
  let survey = mountSurvey(fields, csatSurvey(), { lang: language() });
  let state = { sending: false, result: null, error: null };
  let resolveDone;
  const done = new Promise((resolve) => {
    resolveDone = resolve;
  });

  function render() {
    title.textContent = t("survey.csat_title");
    button.textContent = t(state.sending ? "survey.csat_sending" : "survey.csat_submit");
    button.disabled = state.sending;
    form.setAttribute("aria-busy", String(state.sending));
    if (state.result) {
      form.hidden = true;
      status.textContent = "";
      box.querySelector(".csat-done")?.remove();
      box.append(el("p", { class: "csat-done alert alert-success", role: "status", text: t(state.result === "sent" ? "survey.csat_thanks" : "survey.csat_already") }));
      return;
    }
    status.textContent = state.error ? t(state.error) : "";
    status.className = state.error ? "csat-status alert alert-error" : "csat-status";
  }

  onLanguageChange(() => {
    survey = mountSurvey(fields, csatSurvey(), { lang: language() });
    render();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.sending || state.result) return;
    state.error = null;
    if (!survey.validate()) {
      render();
      return;
    }
    const answers = survey.collect();
    const body = { csat: answers.csat, comment: answers.comment ?? "" };
    if (answers.nps !== undefined) body.nps = answers.nps;
    state.sending = true;
    render();
    const result = await send(body);
    state.sending = false;
    if (result.ok || result.error?.code === "already_answered") {
      state.result = result.ok ? "sent" : "already";
      render();
      box.querySelector(/** @type {"p"} */ (".csat-done"))?.focus?.();
      resolveDone(state.result);
      return;
    }
    if (result.status === 422 && Array.isArray(result.error?.details)) {
      survey.showErrors(result.error.details);
    }
    state.error = result.error?.code === "not_ended" ? "survey.csat_not_ended" : "survey.csat_failed";
    render();
  });

  render();
  return { done, element: box };
}
