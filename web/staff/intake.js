// The shopper's pre-call survey answers as the advisor sees them: in the offer before
// accepting, and beside the call in the consultation's panel. The server sends them
// readable in both languages (consultation.intake: {title, version, answers: [{label, shown}]}).
import { language, t } from "/shared/i18n.js";
import { el } from "/staff/dom.js";

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
