// @ts-check
// The staff pages' side of the REST API (requests through /shared/api.js), and errors in the
// reader's language.
import { request, setCsrfToken } from "/shared/api.js";
import { t } from "/shared/i18n.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

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

/** An error in the staff pages' words (the console's, then the staff area's, unless told). */
export function errorText(error, prefixes = ["console.error.", "staff.error."]) {
  return sharedErrorText(error, prefixes, { unknown: "staff.error.unknown" });
}
