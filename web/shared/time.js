// @ts-check
// Times and durations in the reader's language, shared by the staff pages and the booking page.
import { language } from "/shared/i18n.js";

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function locale() {
  return language() === "ja" ? "ja-JP" : "en-GB";
}

/** m:ss, or h:mm:ss from an hour on. */
export function duration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export function secondsSince(iso, now = Date.now()) {
  return iso ? (now - Date.parse(iso)) / 1000 : 0;
}

export function clockTime(iso) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

export function dateTime(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function shortDate(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(new Date(iso));
}

/**
 * A time zone by its name in the page's language ("Japan Time", "日本時間"), not its IANA id:
 * shoppers know where they are, not "Asia/Tokyo". Also used by the staff calendar.
 */
export function zoneName(tz = zone, lang = language()) {
  for (const style of /** @type {const} */ (["longGeneric", "long"])) {
    try {
      const parts = new Intl.DateTimeFormat(lang === "ja" ? "ja-JP" : "en-GB", { timeZone: tz, timeZoneName: style }).formatToParts(new Date());
      const name = parts.find((part) => part.type === "timeZoneName")?.value;
      // "GMT+09:00" is an offset, not a name (longGeneric has none for UTC): try "long".
      if (name && !/^(GMT|UTC)[+\-−]/.test(name)) return name;
    } catch {
      // an engine without this style (or zone): try the next, then the id
    }
  }
  return tz;
}
