// @ts-check
// fetch() for the REST API, shared by the staff pages: the session's CSRF token on every write
// (from /auth/login or /auth/me, else the readable cookie) and every answer as
// {ok, status, data} or {ok, status, error} with the API's error shape {code, message, details}.
// Nothing here throws for an HTTP or network failure.

const CSRF_COOKIE = "livedesk_csrf";
let csrfToken = null;

/** Remember the CSRF token from /auth/login or /auth/me (null on sign-out). */
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

/** One request: a JSON body (``json``) or a multipart form (``form``), or none. */
/** @param {string} method @param {string} path @param {{json?: any, form?: FormData}} [options] */
export async function request(method, path, { json, form } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser writes the multipart Content-Type with its boundary
  }
  if (method !== "GET") {
    const token = csrfToken ?? readCookie(CSRF_COOKIE);
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch {
    return { ok: false, status: 0, error: { code: "network_error", message: "", details: null } };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return { ok: true, status: response.status, data };
  const error = data?.error ?? { code: "http_error", message: `HTTP ${response.status}`, details: null };
  return { ok: false, status: response.status, error };
}
