// The staff pages' side of the REST API (requests through /shared/api.js), and errors in the
// reader's language.
import { request, setCsrfToken } from "/shared/api.js";
import { t } from "/shared/i18n.js";

export { setCsrfToken };

/** JSON request: resolves to {ok, status, data} or {ok, status, error}; never throws. */
export function api(method, path, body) {
  return request(method, path, { json: body });
}

/** multipart/form-data upload of one file in the part named "file". */
export function upload(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return request("POST", path, { form });
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
