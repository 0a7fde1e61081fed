// @ts-check
// The advisor's bookings on a time grid: one column per day (a day or a week), each booking a
// block as tall as it lasts, with its times and duration written out. Blocks are buttons in
// time order (what a screen reader and the keyboard go through); pressing one shows the
// booking's details and actions below the grid (calendar.js). Times are in the advisor's zone.
import { language, t } from "/shared/i18n.js";
import { el } from "/shared/dom.js";

const PX_PER_MINUTE = 1.1;
const DEFAULT_FIRST_HOUR = 9;
const DEFAULT_LAST_HOUR = 19;

export function locale() {
  return language() === "ja" ? "ja-JP" : "en-GB";
}

/** "YYYY-MM-DD" of an instant in a zone. */
export function dayIn(zone, date) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(date);
}

/** Minutes since midnight of an instant in a zone. */
function minuteIn(zone, date) {
  const text = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
  const [hours, minutes] = text.split(":").map(Number);
  return hours * 60 + minutes;
}

/** "30 mins" / "30 分"; ``narrow`` ("30m") where a block has little room. */
/** @param {number} minutes @param {"long" | "short" | "narrow"} [display] */
export function durationLabel(minutes, display = "short") {
  return new Intl.NumberFormat(locale(), { style: "unit", unit: "minute", unitDisplay: display }).format(minutes);
}

export function timeRange(booking, zone) {
  const time = new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", timeZone: zone });
  return `${time.format(new Date(booking.starts_at))}–${time.format(new Date(booking.ends_at))}`;
}

export function minutesOf(booking) {
  return Math.round((Date.parse(booking.ends_at) - Date.parse(booking.starts_at)) / 60000);
}

export function typeName(booking) {
  return language() === "en" && booking.type_name_en ? booking.type_name_en : booking.type_name;
}

function dayHeading(day, today) {
  const [y, m, d] = day.split("-").map(Number);
  const text = new Intl.DateTimeFormat(locale(), { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, d, 12)),
  );
  return day === today ? `${text} · ${t("calendar.today")}` : text;
}

/**
 * The grid for ``days`` ("YYYY-MM-DD" each) with the bookings that start on them.
 * ``selected`` is the id of the booking whose details are open; ``onSelect(booking)``.
 */
export function bookingGrid({ days, bookings, zone, selected, onSelect }) {
  const byDay = new Map(days.map((day) => [day, []]));
  let first = DEFAULT_FIRST_HOUR * 60;
  let last = DEFAULT_LAST_HOUR * 60;
  for (const booking of bookings) {
    const start = new Date(booking.starts_at);
    const list = byDay.get(dayIn(zone, start));
    if (!list) continue;
    list.push(booking);
    const from = minuteIn(zone, start);
    first = Math.min(first, Math.floor(from / 60) * 60);
    last = Math.max(last, Math.min(24 * 60, Math.ceil((from + minutesOf(booking)) / 60) * 60));
  }
  const height = (last - first) * PX_PER_MINUTE;
  const today = dayIn(zone, new Date());
  const nowMinute = minuteIn(zone, new Date());
  const hours = [];
  for (let minute = first; minute < last; minute += 60) {
    hours.push(el("span", { class: "cal-hour", style: `top:${(minute - first) * PX_PER_MINUTE}px`, text: `${String(minute / 60).padStart(2, "0")}:00` }));
  }
  const columns = days.map((day) => {
    const list = byDay.get(day).sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    const headingId = `cal-day-${day}`;
    return el(
      "section",
      { class: `cal-day${day === today ? " cal-today" : ""}`, "aria-labelledby": headingId, "data-day": day },
      el("h4", { id: headingId, class: "cal-day-title", text: dayHeading(day, today) }),
      el(
        "div",
        { class: "cal-day-body", style: `height:${height}px` },
        day === today && nowMinute >= first && nowMinute < last
          ? el("div", { class: "cal-now", "aria-hidden": "true", style: `top:${(nowMinute - first) * PX_PER_MINUTE}px` })
          : null,
        list.length
          ? el("ol", { class: "cal-bookings" }, ...list.map((booking) => block(booking, { zone, first, selected, onSelect })))
          : el("p", { class: "visually-hidden", text: t("calendar.day_empty") }),
      ),
    );
  });
  return el(
    "div",
    { class: `cal-grid cal-grid-${days.length === 1 ? "day" : "week"}`, style: `--cal-days:${days.length}` },
    el("div", { class: "cal-hours", "aria-hidden": "true", style: `height:${height}px` }, ...hours),
    ...columns,
  );
}

function block(booking, { zone, first, selected, onSelect }) {
  const minutes = minutesOf(booking);
  const top = (minuteIn(zone, new Date(booking.starts_at)) - first) * PX_PER_MINUTE;
  const name = booking.contact_name || booking.contact_email;
  const status = t(`booking.status.${booking.status}`);
  // Narrow English ("30m") fits a column; Japanese narrow is also "30m", its short "30 分" fits.
  const times = `${timeRange(booking, zone)} (${durationLabel(minutes, language() === "ja" ? "short" : "narrow")})`;
  return el(
    "li",
    {
      class: `calendar-item status-${booking.status}`,
      "data-booking-id": booking.id,
      style: `top:${top}px;height:${Math.max(minutes * PX_PER_MINUTE, 22)}px`,
    },
    el(
      "button",
      {
        type: "button",
        class: "cal-block",
        "aria-expanded": String(selected === booking.id),
        "aria-controls": "calendar-detail",
        // The narrow "30m" is for the eye; the name says it in words.
        "aria-label": `${timeRange(booking, zone)} (${durationLabel(minutes, "long")}) ${name}, ${typeName(booking)}, ${status}`,
        onclick: () => onSelect(booking),
      },
      el("span", { class: "cal-block-time", text: times }),
      " ",
      el("span", { class: "cal-block-name", text: name }),
      " ",
      el("span", { class: "cal-block-type", text: `${typeName(booking)} · ${status}` }),
    ),
  );
}
