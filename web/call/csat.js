// The post-call survey on the call page, shown in the "ended" view after hang-up. The answer
// goes with the visitor token; the server keeps one per consultation.
import { mountCsat, postJson } from "/surveys/csat-form.js";

const shown = new Set();

/** Show the survey for consultationId in container (once per page). */
export function showCsat(container, { consultationId, token }) {
  if (!container || !consultationId || !token || shown.has(consultationId)) return;
  shown.add(consultationId);
  container.hidden = false;
  mountCsat(container, {
    send: (answers) =>
      postJson(`/api/v1/consultations/${encodeURIComponent(consultationId)}/satisfaction`, answers, {
        Authorization: `Bearer ${token}`,
      }),
  });
}
