// @ts-check
// /demo/mail — the demo's mail outbox (LIVEDESK_MAIL_OUTBOX): the mails the server would have
// sent, newest first, so a demo's shopper can open the link in them. Only a mail's text part
// is shown, always as text: links become <a> elements built here (http and https only), and
// nothing a mail carries is ever parsed as markup.
import { initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { $, el } from "/shared/dom.js";

const POLL_MS = 4000;
// Served only while the outbox is on (404 otherwise, which the page says plainly).
const MAILS = "/demo/mail.json";
const LINK = /https?:\/\/[^\s<>"']+/g;
const state = { mails: [], keeps: 200, shown: "", off: false, failed: false };

/** The mail's text with its web addresses as links; everything else stays text. */
function linked(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    // A sentence's full stop or closing bracket after an address is not part of it.
    const url = match[0].replace(/[.,;:!?)\]]+$/, "");
    parts.push(document.createTextNode(text.slice(last, match.index)));
    parts.push(el("a", { href: url, text: url }));
    last = match.index + url.length;
  }
  parts.push(document.createTextNode(text.slice(last)));
  return parts;
}

function when(iso) {
  const format = new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "medium",
  });
  return format.format(new Date(iso));
}

function renderMail(mail) {
  const titleId = `mail-${mail.id}`;
  const facts = [
    [t("mail.to"), mail.to],
    [t("mail.sent"), when(mail.sent_at)],
  ];
  if (mail.attachments.length) facts.push([t("mail.attachments"), mail.attachments.join(", ")]);
  return el(
    "li",
    { class: "outbox-mail card", "data-mail-id": mail.id },
    el(
      "article",
      { "aria-labelledby": titleId },
      el("h3", { id: titleId, class: "outbox-subject", text: mail.subject }),
      el("dl", { class: "outbox-facts" }, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
      el("pre", { class: "outbox-text" }, ...linked(mail.text)),
    ),
  );
}

function render() {
  const box = $("error");
  box.hidden = !(state.off || state.failed);
  box.textContent = state.off ? t("mail.off") : state.failed ? t("mail.error") : "";
  $("refresh").hidden = state.off;
  $("empty").hidden = state.off || state.failed || state.mails.length > 0;
  const n = state.mails.length;
  $("count").textContent = state.off || !n ? "" : t(n === 1 ? "mail.count_one" : "mail.count", { n, keep: state.keeps });
  $("list").replaceChildren(...state.mails.map(renderMail));
}

async function load() {
  const button = $("refresh");
  button.disabled = true;
  $("list").setAttribute("aria-busy", "true");
  try {
    const response = await fetch(MAILS, { headers: { Accept: "application/json" }, cache: "no-store" });
    state.off = response.status === 404;
    state.failed = !response.ok && !state.off;
    if (response.ok) {
      const data = await response.json();
      state.mails = data.mails;
      state.keeps = data.keeps;
    }
  } catch {
    state.failed = true;
  } finally {
    button.disabled = false;
    $("list").removeAttribute("aria-busy");
  }
  // Re-render only when something changed, so a poll never moves a reader's focus or selection.
  const shown = JSON.stringify([state.off, state.failed, state.mails.map((m) => m.id)]);
  if (shown !== state.shown) {
    state.shown = shown;
    render();
  }
}

async function main() {
  await initI18n({ extraAreas: ["/demo"] });
  onLanguageChange(render);
  $("refresh").addEventListener("click", load);
  await load();
  // New mails appear by themselves while the page is in view (the booking jobs send within
  // seconds); a hidden tab does not poll.
  setInterval(() => {
    if (document.visibilityState === "visible" && !state.off) load();
  }, POLL_MS);
}

main();
