// @ts-check
// One way to turn an API or socket error ({code, message, details}) into words for the reader.
// Each page keeps its words in its i18n area ("pay.error.<code>", "staff.error.<code>"…); the
// server's English message is the last resort, so a new error code still says something.
import { t } from "/shared/i18n.js";

/**
 * @typedef {{ code?: string, message?: string, details?: any }} ApiError
 * @typedef {object} ErrorTextOptions
 * @property {Record<string, any>} [params] extra values for the translation ({seconds} is given)
 * @property {string} [unknown] the key when nothing matched and the server said nothing
 *   (default: the last prefix + "unknown")
 * @property {string} [generic] a key that takes {message} and is used for every unmatched code
 * @property {boolean} [serverFirst] show the server's message when it has one (the admin pages
 *   in English: the server writes its messages for people, in English)
 */

/**
 * The error in the reader's language.
 * @param {ApiError | null | undefined} error
 * @param {string | string[]} prefixes i18n key prefixes tried in order, e.g. "pay.error." or
 *   ["console.error.", "staff.error."]
 * @param {ErrorTextOptions} [options]
 * @returns {string}
 */
export function errorText(error, prefixes, options = {}) {
  if (!error) return "";
  const list = typeof prefixes === "string" ? [prefixes] : prefixes;
  const params = { seconds: error.details?.retry_after ?? 60, ...options.params };
  let translated = "";
  for (const prefix of list) {
    const key = `${prefix}${error.code}`;
    const text = t(key, params);
    if (text !== key) {
      translated = text;
      break;
    }
  }
  if (options.serverFirst && error.message) return error.message;
  if (translated) return translated;
  if (options.generic) return t(options.generic, { message: error.message ?? "" });
  return error.message || t(options.unknown ?? `${list[list.length - 1]}unknown`);
}
