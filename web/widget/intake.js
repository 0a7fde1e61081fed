// @ts-check
// The pre-call survey in the widget: "talk now" first shows the survey the admin assigned to
// instant calls (if any); the answers are sent, then the queue is joined with their id so the
// call goes to the right advisor and the advisor sees them in the offer.
import { language, onLanguageChange, t } from "/shared/i18n.js";
import { mountSurvey } from "/shared/survey-form.js";
import { postJson } from "/shared/csat-form.js";
import { $ } from "/shared/dom.js";


export class Intake {
  /**
   * showView(name): the widget's view switch; token(): the visitor token; back(): leave the
   * survey without joining.
   */
  constructor({ showView, token, back }) {
    this.showView = showView;
    this.token = token;
    this.back = back;
    this.survey = null;
    this.form = null;
    this.responseId = null; // answers given and not yet used by a queue.join
    this.retry = null;
    this.sending = false;
    this.error = null; // i18n key of the message above the form
    $("survey-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("survey-back").addEventListener("click", () => {
      this.retry = null;
      this.back();
    });
    onLanguageChange((lang) => {
      this.form?.setLanguage(lang);
      this.render();
    });
  }

  /** Before joining: true when the survey is shown instead (retry() joins once answered). */
  async intercept(retry) {
    if (this.responseId) return false;
    let survey = null;
    try {
      const response = await fetch("/api/v1/intake-survey", { credentials: "same-origin" });
      if (response.ok) survey = (await response.json()).survey;
    } catch {
      survey = null; // no survey rather than no call: the queue works without answers
    }
    if (!survey) return false;
    this.open(survey, retry);
    return true;
  }

  open(survey, retry) {
    const changed = !this.survey || this.survey.id !== survey.id || this.survey.version !== survey.version;
    this.survey = survey;
    this.retry = retry;
    if (changed || !this.form) this.form = mountSurvey($("survey-fields"), survey, { lang: language() });
    this.showView("survey");
    this.render();
  }

  /** The answers' id for queue.join, if there are some. */
  get pending() {
    return this.responseId;
  }

  /** queue.join took them: the next call asks again. */
  used() {
    this.responseId = null;
    this.error = null;
  }

  render() {
    const box = $("survey-error");
    box.hidden = !this.error;
    box.textContent = this.error ? t(this.error) : "";
    const submit = $("survey-submit");
    submit.disabled = this.sending;
    submit.textContent = t(this.sending ? "survey.intake_sending" : "survey.intake_submit");
    $("survey-form").setAttribute("aria-busy", String(this.sending));
  }

  async submit() {
    if (this.sending || !this.form) return;
    this.error = null;
    if (!this.form.validate()) {
      this.error = "survey.intake_fix";
      this.render();
      return;
    }
    this.sending = true;
    this.render();
    const result = await postJson(
      "/api/v1/intake-responses",
      { survey_id: this.survey.id, version: this.survey.version, answers: this.form.collect() },
      { Authorization: `Bearer ${this.token()}` },
    );
    this.sending = false;
    if (result.ok) {
      this.responseId = result.data.response_id;
      this.render();
      const retry = this.retry;
      this.retry = null;
      await retry?.();
      return;
    }
    if (result.status === 422 && Array.isArray(result.error?.details)) {
      this.form.showErrors(result.error.details);
      this.error = "survey.intake_fix";
    } else if (["survey_version_not_found", "survey_archived", "survey_not_found"].includes(result.error?.code)) {
      // The admin changed the survey meanwhile: show the new one (or none).
      this.error = "survey.intake_changed";
      this.form = null;
      const retry = this.retry;
      if (!(await this.intercept(retry))) {
        this.retry = null;
        await retry?.();
      }
    } else {
      this.error = "survey.send_failed";
    }
    this.render();
  }
}
