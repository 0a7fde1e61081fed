// @ts-check
// The admin page's side of the REST API (requests through /shared/api.js).
import { request, setCsrfToken } from "/shared/api.js";

export { setCsrfToken };

export const api = {
  get: (path) => request("GET", path),
  post: (path, json) => request("POST", path, { json }),
  patch: (path, json) => request("PATCH", path, { json }),
  delete: (path) => request("DELETE", path),
  upload: (path, file) => {
    const form = new FormData();
    form.append("file", file, file.name || "photo");
    return request("POST", path, { form });
  },
};

/** A query string from the entries whose value is not empty. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
