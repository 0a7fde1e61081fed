// @ts-check
// Small helpers of the booking page: building elements, and dates in the shopper's zone.
import { language, t } from "/shared/i18n.js";
import { zone, zoneName } from "/shared/time.js";
import { $, el } from "/shared/dom.js";

export { zone, zoneName };

export { $ };

/** A definition list of [label, value] rows (the booking summaries). */
export function summaryRows(rows) {
  return el(
    "dl",
    { class: "summary-list" },
    ...rows.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: value })]),
  );
}

export function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d + n));
  return date.toISOString().slice(0, 10);
}

export function locale() {
  return language() === "ja" ? "ja-JP" : "en-GB";
}

export function dayLabel(day, style = "long") {
  const [y, m, d] = day.split("-").map(Number);
  /** @type {Intl.DateTimeFormatOptions} */
  const options =
    style === "long"
      ? { weekday: "short", month: "long", day: "numeric", timeZone: "UTC" }
      : { month: "short", day: "numeric", timeZone: "UTC" };
  return new Intl.DateTimeFormat(locale(), options).format(new Date(Date.UTC(y, m - 1, d, 12)));
}

/** "14:05" in the shopper's zone, for a deadline such as a pending booking's hold. */
export function timeLabel(iso) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", timeZone: zone }).format(new Date(iso));
}

export function whenLabel(booking) {
  const start = new Date(booking.starts_at);
  const end = new Date(booking.ends_at);
  const tz = booking.timezone || zone;
  const day = new Intl.DateTimeFormat(locale(), {
    weekday: "short",
    year: "numeric",
    month: "long",
    day: "numeric",
    timeZone: tz,
  }).format(start);
  const time = new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", timeZone: tz });
  return `${day} ${time.format(start)}–${time.format(end)} (${zoneName(tz)})`;
}

/** A button shows that its request is running (and cannot be pressed twice meanwhile). */
export function busy(button, label) {
  const idle = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = t(label);
  return () => {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = idle;
  };
}
