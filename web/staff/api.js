// fetch() for the staff pages, with the API's error shape and the session's CSRF token on
// every write (the token comes from /auth/me or the login answer, else the readable cookie).
import { t } from "/shared/i18n.js";

const CSRF_COOKIE = "livedesk_csrf";
let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token;
}

export function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

function csrfHeader() {
  const token = csrfToken ?? readCookie(CSRF_COOKIE);
  return token ? { "X-CSRF-Token": token } : {};
}

async function parse(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return { ok: true, status: response.status, data };
  const error = data?.error ?? { code: "http_error", message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, error };
}

/** JSON request: resolves to {ok, status, data} or {ok, status, error}; never throws. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") Object.assign(headers, csrfHeader());
  try {
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    return await parse(response);
  } catch {
    return { ok: false, status: 0, error: { code: "network_error", message: "" } };
  }
}

/** multipart/form-data upload of one file in the part named "file". */
export async function upload(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { Accept: "application/json", ...csrfHeader() },
      body: form,
      credentials: "same-origin",
    });
    return await parse(response);
  } catch {
    return { ok: false, status: 0, error: { code: "network_error", message: "" } };
  }
}

/** An error ({code, message, details}) in the reader's language when we have words for it. */
export function errorText(error, prefixes = ["console.error.", "staff.error."]) {
  if (!error) return "";
  for (const prefix of prefixes) {
    const key = `${prefix}${error.code}`;
    const translated = t(key, { seconds: error.details?.retry_after ?? 60 });
    if (translated !== key) return translated;
  }
  return error.message || t("staff.error.unknown");
}
