// @ts-check
// The post-call survey on the call page, shown in the "ended" view after hang-up. The answer
// goes with the visitor token; the server keeps one per consultation, so a page that comes
// back after answering (a reload) just says thank you.
import { t } from "/shared/i18n.js";
import { mountCsat, postJson } from "/shared/csat-form.js";

const shown = new Set();

async function answeredAlready(consultationId, token) {
  try {
    const response = await fetch(`/api/v1/consultations/${encodeURIComponent(consultationId)}/satisfaction`, {
      headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
      credentials: "same-origin",
    });
    return response.ok && Boolean((await response.json()).satisfaction);
  } catch {
    return false; // the form then; the server still refuses a second answer
  }
}

/** Show the survey for consultationId in container (once per page). */
export async function showCsat(container, { consultationId, token }) {
  if (!container || !consultationId || !token || shown.has(consultationId)) return;
  shown.add(consultationId);
  if (await answeredAlready(consultationId, token)) {
    const done = document.createElement("p");
    done.className = "csat-done alert alert-success";
    done.dataset.i18n = "survey.csat_already";
    done.textContent = t("survey.csat_already");
    container.replaceChildren(done);
    container.hidden = false;
    return;
  }
  container.hidden = false;
  mountCsat(container, {
    send: (answers) =>
      postJson(`/api/v1/consultations/${encodeURIComponent(consultationId)}/satisfaction`, answers, {
        Authorization: `Bearer ${token}`,
      }),
  });
}
