// @ts-check
// /surveys/csat#t=<token> — the post-call survey from the mail a booked consultation's
// shopper gets when it closes. The signed token (in the fragment, so it stays out of logs)
// is the only permission, for that one consultation.
import { initI18n, language, onLanguageChange, setLanguage, t } from "/shared/i18n.js";
import { mountCsat, postJson } from "/shared/csat-form.js";
import { $ } from "/shared/dom.js";

const token = new URLSearchParams(location.hash.slice(1)).get("t") ?? "";
let info = null;
let problem = null; // i18n key

function render() {
  document.title = t("survey.csat_page_title");
  const about = $("csat-about");
  if (info) {
    const date = info.ended_at
      ? new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", { dateStyle: "long" }).format(new Date(info.ended_at))
      : "";
    const parts = [info.advisor_name ? t("survey.csat_with", { name: info.advisor_name }) : "", date ? t("survey.csat_on", { date }) : ""];
    about.textContent = parts.filter(Boolean).join(" ");
  } else {
    about.textContent = "";
  }
  $("csat-problem").hidden = !problem;
  $("csat-problem").textContent = problem ? t(problem) : "";
}

function problemKey(error) {
  if (error?.code === "link_expired") return "survey.csat_link_expired";
  if (error?.code === "link_invalid" || error?.code === "consultation_not_found") return "survey.csat_link_invalid";
  return "survey.csat_failed";
}

async function main() {
  await initI18n({ extraAreas: ["/surveys"] });
  onLanguageChange(render);
  $("csat-status").textContent = t("survey.csat_loading");
  if (!token) {
    problem = "survey.csat_link_missing";
    $("csat-status").textContent = "";
    render();
    return;
  }
  const result = await postJson("/api/v1/satisfaction/link/info", { token });
  $("csat-status").textContent = "";
  if (!result.ok) {
    problem = problemKey(result.error);
    render();
    return;
  }
  info = result.data;
  // The shopper's own language, unless they already picked one on this device.
  if (!localStorage.getItem("livedesk.lang") && info.locale && info.locale !== language()) {
    await setLanguage(info.locale.startsWith("en") ? "en" : "ja", { persist: false });
  }
  render();
  if (info.answered) {
    $("csat-slot").replaceChildren(
      Object.assign(document.createElement("p"), { className: "alert alert-success", textContent: t("survey.csat_already") }),
    );
    return;
  }
  mountCsat($("csat-slot"), {
    send: async (answers) => {
      const sent = await postJson("/api/v1/satisfaction/link", { token, ...answers });
      if (!sent.ok && ["link_expired", "link_invalid"].includes(sent.error?.code)) {
        problem = problemKey(sent.error);
        render();
      }
      return sent;
    },
  });
}

main();
