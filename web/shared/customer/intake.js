// @ts-check
// The shopper's pre-call survey answers as the advisor sees them: in the offer before
// accepting, and beside the call in the consultation's panel. The server sends them
// readable in both languages (consultation.intake: {title, version, answers: [{label, shown}]}).
import { language, t } from "/shared/i18n.js";
import { el } from "/shared/dom.js";

// The answers' layout (question above answer) comes with this module, wherever it is used.
if (!document.querySelector('link[href="/surveys/intake.css"]')) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/surveys/intake.css";
  document.head.append(link);
}

function pick(label) {
  if (!label) return "";
  if (typeof label === "string") return label;
  return label[language()] || label.en || label.ja || "";
}

/** [[question, answer]] in the page's language. */
export function intakePairs(intake) {
  if (!intake?.answers) return [];
  return intake.answers.map((a) => [pick(a.label), pick(a.shown) || String(a.value ?? "")]);
}

/** Which survey and version the answers are to. */
export function intakeCaption(intake) {
  if (!intake) return "";
  return t("survey.offer_title", { title: pick(intake.title), version: intake.version });
}

/** Fill a <section data-part=intake> (heading, caption, <dl>) from consultation.intake. */
export function renderIntake(section, intake) {
  if (!section) return;
  const pairs = intakePairs(intake);
  section.hidden = !pairs.length;
  const caption = section.querySelector("[data-part=intake-caption]");
  if (caption) caption.textContent = intakeCaption(intake);
  const list = section.querySelector("dl");
  list.replaceChildren(...pairs.flatMap(([q, a]) => [el("dt", { text: q }), el("dd", { text: a })]));
}

/** A survey event of the customer timeline: the answers, or the post-call rating. */
export function surveyTimelineNodes(event) {
  const data = event.data ?? {};
  if (data.survey === "satisfaction") {
    const parts = [t("survey.tl_csat", { csat: data.csat })];
    if (data.nps !== null && data.nps !== undefined) parts.push(t("survey.tl_nps", { nps: data.nps }));
    const nodes = [el("p", { class: "tl-summary", text: parts.join(" · ") })];
    if (data.comment) nodes.push(el("p", { class: "tl-notes", text: data.comment }));
    return nodes;
  }
  if (data.survey === "intake" && Array.isArray(data.answers)) {
    const list = el("dl", { class: "facts tl-survey" });
    for (const [q, a] of intakePairs(data)) list.append(el("dt", { text: q }), el("dd", { text: a }));
    return [el("p", { class: "tl-summary", text: t("survey.tl_intake", { title: pick(data.title), version: data.version }) }), list];
  }
  return [el("p", { class: "tl-summary", text: event.summary })];
}
