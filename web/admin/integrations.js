// @ts-check
// Admin page for integrations: shop integrations and their API keys (a new key is shown
// once), CSV imports with live progress and the rows refused by line, webhook endpoints
// (the signing secret is shown once; "send test event" with its answer; secret rotation) and
// the delivery log with "send again".
import { initI18n, onLanguageChange, t } from "/shared/i18n.js";
import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
import { request, setCsrfToken } from "/shared/api.js";
import { $, el } from "/shared/dom.js";

const EVENT_TYPES = [
  "consultation.closed",
  "booking.created",
  "booking.changed",
  "payment.succeeded",
  "payment.refunded",
  "recording.ready",
];
const state = { integrations: [], imports: [], hooks: [], log: [], polling: null };
// Endpoint id → the state of its last "send test event": { key, params, error }.
const testState = new Map();
const TEST_WAIT_MS = 60000;

function when(iso) {
  return iso ? new Date(iso).toLocaleString(document.documentElement.lang || undefined) : "";
}

function notice(text, error = false) {
  const box = $("notice");
  box.textContent = text;
  box.className = `alert ${text ? (error ? "alert-error" : "alert-success") : "is-empty"}`;
}

function failed(result) {
  notice(result.error?.message || `HTTP ${result.status}`, true);
}

const api = {
  get: (path) => request("GET", path),
  post: (path, json) => request("POST", path, { json }),
  patch: (path, json) => request("PATCH", path, { json }),
};

// --- integrations and keys -------------------------------------------------------------------

async function loadIntegrations() {
  const result = await api.get("/api/v1/integrations");
  if (result.ok) state.integrations = result.data;
  renderIntegrations();
}

function renderIntegrations() {
  const body = $("integrations-table").querySelector("tbody");
  if (!state.integrations.length) {
    body.replaceChildren(el("tr", {}, [el("td", { text: t("integrations.keys.none"), colspan: "3" })]));
    return;
  }
  body.replaceChildren(
    ...state.integrations.map((integration) => {
      const keys = el(
        "ul",
        { class: "key-list" },
        integration.keys.map((key) => {
          const used = key.last_used_at
            ? t("integrations.keys.last_used", { date: when(key.last_used_at) })
            : t("integrations.keys.never_used");
          const item = el("li", {}, [
            el("code", { text: `${key.prefix}…` }),
            document.createTextNode(` ${key.label} — `),
            el("span", { text: key.revoked_at ? t("integrations.keys.revoked", { date: when(key.revoked_at) }) : used }),
          ]);
          if (!key.revoked_at) {
            const revoke = el("button", { class: "button button-secondary button-small", text: t("integrations.keys.revoke"), type: "button", "aria-label": `${t("integrations.keys.revoke")} ${key.prefix}` });
            revoke.addEventListener("click", async () => {
              const result = await api.post(`/api/v1/integrations/${integration.id}/keys/${key.id}/revoke`);
              if (!result.ok) return failed(result);
              notice(t("integrations.saved"));
              await loadIntegrations();
            });
            item.append(document.createTextNode(" "), revoke);
          }
          return item;
        }),
      );
      const labelId = `key-label-${integration.id}`;
      const label = el("input", { id: labelId, maxlength: "100", autocomplete: "off" });
      const make = el("button", { class: "button button-small", text: t("integrations.keys.new"), type: "button" });
      make.addEventListener("click", async () => {
        make.disabled = true;
        const result = await api.post(`/api/v1/integrations/${integration.id}/keys`, { label: label.value });
        make.disabled = false;
        if (!result.ok) return failed(result);
        $("new-key").hidden = false;
        $("new-key-value").textContent = result.data.key;
        await loadIntegrations();
        $("new-key-value").focus?.();
      });
      return el("tr", {}, [
        el("th", { text: integration.name, scope: "row" }),
        el("td", {}, [keys]),
        el("td", { class: "actions" }, [
          el("label", { text: t("integrations.keys.label"), for: labelId }),
          label,
          make,
        ]),
      ]);
    }),
  );
}

// --- imports -------------------------------------------------------------------------------

async function loadImports() {
  const result = await api.get("/api/v1/imports");
  if (result.ok) state.imports = result.data.imports;
  renderImports();
  const running = state.imports.some((job) => job.status === "running");
  if (running && !state.polling) state.polling = setInterval(loadImports, 1000);
  if (!running && state.polling) {
    clearInterval(state.polling);
    state.polling = null;
  }
}

function renderImports() {
  const list = $("imports");
  if (!state.imports.length) {
    list.replaceChildren(el("li", { class: "muted", text: t("integrations.imports.none") }));
    return;
  }
  list.replaceChildren(
    ...state.imports.map((job) => {
      const progressText = t("integrations.imports.progress", {
        done: job.processed_rows,
        total: job.total_rows,
        ok: job.ok_rows,
        refused: job.error_rows,
      });
      const id = `import-${job.id}`;
      const item = el("li", { class: "card",  "aria-labelledby": id  }, [
        el("p", {}, [
          el("strong", { text: `${job.filename} `, id }),
          el("span", { text: `(${t(`integrations.imports.kind.${job.kind}`)}) — ${t(`integrations.imports.status.${job.status}`)}` }),
        ]),
        el("progress", { max: String(Math.max(1, job.total_rows)), value: String(job.processed_rows), "aria-label": progressText }),
        el("p", { text: progressText }),
      ]);
      if (job.message) item.append(el("p", { class: "muted", text: job.message }));
      if (job.status === "running") {
        const resume = el("button", { class: "button button-secondary button-small", text: t("integrations.imports.resume"), type: "button" });
        resume.addEventListener("click", async () => {
          const result = await api.post(`/api/v1/imports/${job.id}/resume`);
          if (!result.ok) return failed(result);
          await loadImports();
        });
        item.append(resume);
      }
      if (job.errors.length) {
        item.append(
          el("details", {}, [
            el("summary", { text: `${t("integrations.imports.errors")} (${job.error_rows})` }),
            el(
              "ul",
              { class: "import-errors" },
              job.errors.map((e) => el("li", { text: t("integrations.imports.line", { line: e.line, message: e.message }) })),
            ),
          ]),
        );
      }
      return item;
    }),
  );
}

async function startImport(event) {
  event.preventDefault();
  const file = $("import-file").files[0];
  if (!file) return;
  const form = new FormData();
  // Before the file: the server reads the fields in order and the file is streamed.
  form.append("encoding", $("import-encoding").value);
  form.append("file", file, file.name);
  const button = $("import-start");
  button.disabled = true;
  notice(t("integrations.imports.uploading"));
  const result = await request("POST", `/api/v1/imports?kind=${encodeURIComponent($("import-kind").value)}`, { form });
  button.disabled = false;
  if (!result.ok) return failed(result);
  notice("");
  $("import-form").reset();
  await loadImports();
}

// --- webhooks ------------------------------------------------------------------------------

async function loadHooks() {
  const [hooks, log] = await Promise.all([api.get("/api/v1/webhooks/endpoints"), api.get("/api/v1/webhooks/deliveries?limit=50")]);
  if (hooks.ok) state.hooks = hooks.data;
  if (log.ok) state.log = log.data;
  renderHooks();
}

function renderHooks() {
  const types = $("hook-types");
  if (!types.children.length) {
    for (const type of EVENT_TYPES) {
      const id = `type-${type.replace(".", "-")}`;
      // Words first; the event's name, which the receiving shop code matches on, as code.
      const words = el("span", { "data-event-words": type });
      types.append(el("label", {  for: id  }, [el("input", { type: "checkbox", id, value: type }), words, el("code", { text: type })]));
    }
  }
  for (const words of types.querySelectorAll("[data-event-words]")) {
    words.textContent = ` ${t(`integrations.event.${words.dataset.eventWords}`)} `;
  }
  const body = $("hooks-table").querySelector("tbody");
  body.replaceChildren(
    ...(state.hooks.length
      ? state.hooks.map((hook) => {
          const toggle = el("button", { class: "button button-secondary button-small", text: t(hook.active ? "integrations.hooks.pause" : "integrations.hooks.resume"), type: "button", "aria-label": `${t(hook.active ? "integrations.hooks.pause" : "integrations.hooks.resume")} ${hook.url}` });
          toggle.addEventListener("click", async () => {
            const result = await api.patch(`/api/v1/webhooks/endpoints/${hook.id}`, { active: !hook.active });
            if (!result.ok) return failed(result);
            await loadHooks();
          });
          const test = el("button", { class: "button button-secondary button-small", text: t("integrations.hooks.test"), type: "button", "aria-label": `${t("integrations.hooks.test")} ${hook.url}` });
          const testing = testState.get(hook.id);
          if (testing?.key === "integrations.hooks.test_sending") test.setAttribute("disabled", "");
          test.addEventListener("click", () => sendTest(hook));
          const rotate = el("button", { class: "button button-secondary button-small", text: t("integrations.hooks.rotate"), type: "button", "aria-label": `${t("integrations.hooks.rotate")} ${hook.url}` });
          rotate.addEventListener("click", () => rotateSecret(hook));
          // Announced as it changes (sending → delivered / failed).
          const status = el("span", { class: testing?.error ? "hook-test hook-test-error" : "hook-test", role: "status", text: testing ? t(testing.key, testing.params) : "" });
          const overlap = hook.previous_secret_until ? el("small", { text: t("integrations.hooks.overlap_until", { when: when(hook.previous_secret_until) }) }) : "";
          return el("tr", {}, [
            el("th", { scope: "row" }, [hook.url, overlap ? el("br") : "", overlap]),
            el("td", { text: hook.event_types.length ? hook.event_types.join(", ") : "*" }),
            el("td", { class: "actions" }, [toggle, test, rotate, status]),
          ]);
        })
      : [el("tr", {}, [el("td", { text: t("integrations.hooks.none"), colspan: "3" })])]),
  );
  const log = $("log-table").querySelector("tbody");
  log.replaceChildren(
    ...(state.log.length
      ? state.log.map((row) => {
          const cells = [
            el("th", { text: row.event_type, scope: "row" }),
            el("td", { text: t(`integrations.log.status.${row.status}`) }),
            el("td", { text: String(row.attempts) }),
            el("td", { text: row.last_error || (row.last_status_code ? `HTTP ${row.last_status_code}` : "") }),
            el("td", { text: when(row.created_at) }),
          ];
          const actions = el("td", { class: "actions" });
          if (row.status === "failed") {
            const retry = el("button", { class: "button button-secondary button-small", text: t("integrations.log.retry"), type: "button" });
            retry.addEventListener("click", async () => {
              const result = await api.post(`/api/v1/webhooks/deliveries/${row.id}/retry`);
              if (!result.ok) return failed(result);
              await loadHooks();
            });
            actions.append(retry);
          }
          return el("tr", {}, [...cells, actions]);
        })
      : [el("tr", {}, [el("td", { text: t("integrations.log.none"), colspan: "6" })])]),
  );
}

/** Send a test event and follow its delivery until it has an answer (it is tried once). */
async function sendTest(hook) {
  testState.set(hook.id, { key: "integrations.hooks.test_sending", params: {} });
  renderHooks();
  const sent = await api.post(`/api/v1/webhooks/endpoints/${hook.id}/test`);
  if (!sent.ok) {
    testState.delete(hook.id);
    renderHooks();
    return failed(sent);
  }
  let row = sent.data;
  const deadline = Date.now() + TEST_WAIT_MS;
  while (row.status === "pending" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const next = await api.get(`/api/v1/webhooks/deliveries/${row.id}`);
    if (next.ok) row = next.data;
  }
  if (row.status === "succeeded") {
    testState.set(hook.id, { key: "integrations.hooks.test_ok", params: { status: row.last_status_code ?? "" } });
  } else if (row.status === "failed") {
    testState.set(hook.id, { key: "integrations.hooks.test_failed", params: { reason: row.last_error }, error: true });
  } else {
    testState.set(hook.id, { key: "integrations.hooks.test_pending", params: {}, error: true });
  }
  await loadHooks();
}

/** A new signing secret, shown once; the old one keeps signing for the overlap window. */
async function rotateSecret(hook) {
  if (!window.confirm(t("integrations.hooks.rotate_confirm", { url: hook.url }))) return;
  const result = await api.post(`/api/v1/webhooks/endpoints/${hook.id}/rotate-secret`, {});
  if (!result.ok) return failed(result);
  $("new-secret").hidden = false;
  $("new-secret-label").textContent = t("integrations.hooks.rotated_secret", { when: when(result.data.previous_secret_until) || "—" });
  $("new-secret-value").textContent = result.data.secret;
  await loadHooks();
}

async function createHook(event) {
  event.preventDefault();
  const types = [...$("hook-types").querySelectorAll("input:checked")].map((box) => box.value);
  const result = await api.post("/api/v1/webhooks/endpoints", { url: $("hook-url").value, event_types: types });
  if (!result.ok) return failed(result);
  $("new-secret").hidden = false;
  $("new-secret-label").textContent = t("integrations.hooks.secret");
  $("new-secret-value").textContent = result.data.secret;
  $("hook-form").reset();
  await loadHooks();
}

async function createIntegration(event) {
  event.preventDefault();
  const result = await api.post("/api/v1/integrations", { name: $("integration-name").value });
  if (!result.ok) return failed(result);
  $("integration-form").reset();
  notice(t("integrations.saved"));
  await loadIntegrations();
}

function render() {
  document.title = t("integrations.page_title");
  renderIntegrations();
  renderImports();
  renderHooks();
}

async function main() {
  await initI18n({ extraAreas: ["/admin", "/history", NAV_AREA] });
  const nav = new StaffNav($("staff-nav"), location.pathname);
  onLanguageChange(render);
  const me = await request("GET", "/api/v1/auth/me");
  nav.show(me.ok ? me.data.role : null);
  $("checking").hidden = true;
  if (!me.ok || me.data.role !== "admin") {
    $("denied").hidden = false;
    $("denied-title").textContent = t(me.ok ? "integrations.forbidden" : "integrations.signed_out");
    return;
  }
  setCsrfToken(me.data.csrf_token);
  $("panel").hidden = false;
  $("integration-form").addEventListener("submit", createIntegration);
  $("import-form").addEventListener("submit", startImport);
  $("hook-form").addEventListener("submit", createHook);
  $("log-refresh").addEventListener("click", loadHooks);
  await Promise.all([loadIntegrations(), loadImports(), loadHooks()]);
  render();
}

main();
