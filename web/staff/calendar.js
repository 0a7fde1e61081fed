// @ts-check
// The advisor's own booking calendar and availability editor, in the console under the
// consultations: a day or a week of bookings on a time grid (calendar-grid.js, in the
// advisor's time zone, named in words), kept current by polling while the page is shown, and
// the weekly hours, time zone and date exceptions that slots are made from. Strings: the
// /booking i18n area.
import { language, onLanguageChange, t } from "/shared/i18n.js";
import { zoneName } from "/shared/time.js";
import { api, errorText } from "/shared/staff-api.js";
import { bookingGrid, durationLabel, minutesOf, timeRange, typeName } from "/staff/calendar-grid.js";
import { el } from "/shared/dom.js";

const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];
const ZONES = ["Asia/Tokyo", "Europe/London", "America/New_York", "UTC"];
// Bookings change elsewhere (shoppers book, move and cancel; admins reassign) and no event
// tells the console: the shown range is fetched again this often while the page is visible.
const REFRESH_MS = 30_000;

function locale() {
  return language() === "ja" ? "ja-JP" : "en-GB";
}

function todayIn(zone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

function weekdayName(index) {
  // 2024-01-01 was a Monday.
  return new Intl.DateTimeFormat(locale(), { weekday: "long", timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 1 + index)));
}

class Calendar {
  constructor(root, me) {
    this.root = root;
    this.me = me;
    this.zone = "UTC";
    this.weekStart = null;
    this.bookings = [];
    this.weekly = [];
    this.exceptions = [];
    this.status = "";
    this.error = null;
    this.saving = false;
    this.confirming = null; // booking id whose cancellation waits for "yes"
    this.view = "week"; // or "day"
    this.selected = null; // booking id whose details are shown
    this.known = null; // ids seen by the last load, to announce what a refresh brought
    this.liveText = "";
  }

  async start() {
    onLanguageChange(() => this.render());
    await this.loadAvailability();
    this.weekStart = todayIn(this.zone);
    await this.loadBookings();
    setInterval(() => {
      if (document.visibilityState === "visible") this.loadBookings({ quiet: true });
    }, REFRESH_MS);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.loadBookings({ quiet: true });
    });
  }

  days() {
    const count = this.view === "day" ? 1 : 7;
    return Array.from({ length: count }, (_, i) => addDays(this.weekStart, i));
  }

  async loadAvailability() {
    const result = await api("GET", `/api/v1/advisors/${this.me.id}/availability`);
    if (!result.ok) {
      this.error = result.error;
      return this.render();
    }
    this.zone = result.data.timezone;
    this.weekly = result.data.weekly.map((w) => ({ ...w }));
    this.exceptions = result.data.exceptions.map((e) => ({ ...e }));
    this.render({ keepForm: false });
  }

  async loadBookings({ quiet = false } = {}) {
    const days = this.days();
    const result = await api("GET", `/api/v1/advisors/${this.me.id}/bookings?start=${days[0]}&end=${days.at(-1)}`);
    if (!result.ok) {
      if (!quiet) this.error = result.error;
    } else {
      this.announceChanges(result.data.bookings, quiet);
      this.bookings = result.data.bookings;
    }
    this.renderBookings();
  }

  /** On a refresh, say in words what changed in the shown range (a polite live region). */
  announceChanges(bookings, quiet) {
    const ids = new Set(bookings.map((b) => `${b.id}:${b.status}:${b.starts_at}`));
    if (quiet && this.known) {
      const changed = [...ids].filter((id) => !this.known.has(id)).length;
      if (changed) this.liveText = t("calendar.updated", { count: changed });
    }
    this.known = ids;
  }

  move(days) {
    this.weekStart = addDays(this.weekStart, days);
    this.known = null;
    this.loadBookings();
  }

  setView(view) {
    this.view = view;
    this.known = null;
    this.loadBookings();
  }

  async save(event) {
    event.preventDefault();
    this.syncFromForm();
    this.saving = true;
    this.error = null;
    this.status = t("calendar.saving");
    this.render();
    const weekly = this.weekly;
    const exceptions = this.exceptions.map((e) => ({ day: e.day, kind: e.kind, start: e.start || null, end: e.end || null }));
    const timezone = this.zone;
    const result = await api("PUT", `/api/v1/advisors/${this.me.id}/availability`, { timezone, weekly, exceptions });
    this.saving = false;
    if (!result.ok) {
      this.error = result.error;
      this.status = "";
    } else {
      this.zone = result.data.timezone;
      this.weekly = result.data.weekly;
      this.exceptions = result.data.exceptions;
      this.status = t("calendar.saved");
    }
    this.render({ keepForm: !result.ok });
    this.root.querySelector("[data-status]")?.focus();
  }

  addException(form) {
    const day = form.querySelector("[name=exc-day]").value;
    const kind = form.querySelector("[name=exc-kind]").value;
    const start = form.querySelector("[name=exc-start]").value || null;
    const end = form.querySelector("[name=exc-end]").value || null;
    if (!day) return;
    this.exceptions = [...this.exceptions, { day, kind, start, end }];
    this.render();
  }

  /** The day/week switch, the range's arrows and "today", and the grid of bookings. */
  bookingsPart() {
    const days = this.days();
    const step = this.view === "day" ? 1 : 7;
    const range = days.length === 1 ? this.dayText(days[0]) : `${this.dayText(days[0])} – ${this.dayText(days.at(-1))}`;
    const viewButton = (view) =>
      el("button", {
        type: "button",
        class: "button button-secondary button-small",
        "aria-pressed": String(this.view === view),
        "data-view": view,
        text: t(`calendar.view_${view}`),
        onclick: () => this.setView(view),
      });
    const part = el(
      "div",
      { class: "calendar-bookings", "data-part": "bookings" },
      el(
        "div",
        { class: "calendar-week" },
        el("div", { class: "calendar-views", role: "group", "aria-label": t("calendar.view") }, viewButton("day"), viewButton("week")),
        el("button", { type: "button", class: "button button-secondary button-small", text: t(this.view === "day" ? "calendar.prev_day" : "booking.week_prev"), onclick: () => this.move(-step) }),
        el("h3", { "aria-live": "polite", "data-range": true, text: range }),
        el("button", { type: "button", class: "button button-secondary button-small", text: t(this.view === "day" ? "calendar.next_day" : "booking.week_next"), onclick: () => this.move(step) }),
        el("button", {
          type: "button",
          class: "button button-secondary button-small",
          text: t("calendar.today"),
          onclick: () => {
            this.weekStart = todayIn(this.zone);
            this.known = null;
            this.loadBookings();
          },
        }),
      ),
      this.bookings.length ? null : el("p", { class: "empty", text: t(this.view === "day" ? "calendar.no_bookings_day" : "calendar.no_bookings") }),
      el(
        "div",
        { class: "cal-scroll" },
        bookingGrid({
          days,
          bookings: this.bookings,
          zone: this.zone,
          selected: this.selected,
          onSelect: (booking) => {
            this.selected = this.selected === booking.id ? null : booking.id;
            this.confirming = null;
            this.renderBookings();
            this.root.querySelector(`[data-booking-id="${booking.id}"] button`)?.focus();
          },
        }),
      ),
      this.detail(),
      el("p", { class: "calendar-status-line", "data-list-status": true, tabindex: "-1", role: "status", text: this.listStatus ?? "" }),
      el("p", { class: "visually-hidden", "aria-live": "polite", "data-live": true, text: this.liveText }),
    );
    return part;
  }

  dayText(day) {
    const [y, m, d] = day.split("-").map(Number);
    return new Intl.DateTimeFormat(locale(), { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d, 12)));
  }

  /** The chosen booking in full, with its actions. */
  detail() {
    const booking = this.bookings.find((b) => b.id === this.selected);
    if (!booking) return el("div", { id: "calendar-detail", hidden: true });
    const day = new Intl.DateTimeFormat(locale(), { weekday: "long", month: "long", day: "numeric", timeZone: this.zone }).format(new Date(booking.starts_at));
    const row = (label, value) => [el("dt", { text: label }), el("dd", { text: value })];
    return el(
      "div",
      { id: "calendar-detail", class: `calendar-detail status-${booking.status}`, "data-booking-id": booking.id },
      el("h4", { text: booking.contact_name || booking.contact_email }),
      el(
        "dl",
        {},
        ...row(t("calendar.when"), `${day} ${timeRange(booking, this.zone)}`),
        ...row(t("calendar.duration"), durationLabel(minutesOf(booking))),
        ...row(t("calendar.type"), typeName(booking)),
        ...row(t("calendar.contact"), booking.contact_email),
        ...row(t("calendar.state"), `${t(`booking.status.${booking.status}`)}${booking.nominated ? ` · ${t("calendar.nominated")}` : ""}`),
      ),
      this.cancelControls(booking),
    );
  }

  cancelControls(booking) {
    if (booking.status !== "confirmed" || new Date(booking.starts_at) <= new Date()) return null;
    if (this.confirming !== booking.id) {
      return el("button", {
        type: "button",
        class: "button button-secondary button-small calendar-cancel",
        text: t("calendar.cancel"),
        "aria-label": t("calendar.cancel_label", { name: booking.contact_name || booking.contact_email }),
        onclick: () => {
          this.confirming = booking.id;
          this.render();
          this.root.querySelector("[data-confirm-yes]")?.focus();
        },
      });
    }
    return el(
      "span",
      { class: "calendar-confirm", role: "group", "aria-label": t("calendar.cancel_question") },
      ` ${t("calendar.cancel_question")} `,
      el("button", {
        type: "button",
        class: "button button-small",
        "data-confirm-yes": true,
        text: t("calendar.cancel_yes"),
        onclick: () => this.cancel(booking),
      }),
      " ",
      el("button", {
        type: "button",
        class: "button button-secondary button-small",
        text: t("calendar.cancel_no"),
        onclick: () => {
          this.confirming = null;
          this.render();
        },
      }),
    );
  }

  async cancel(booking) {
    const result = await api("POST", `/api/v1/advisors/${this.me.id}/bookings/${booking.id}/cancel`, {});
    this.confirming = null;
    this.listStatus = result.ok ? t("calendar.cancelled") : errorText(result.error, ["booking.error.", "staff.error."]);
    this.known = null;
    await this.loadBookings();
    this.root.querySelector("[data-list-status]")?.focus();
  }

  weeklyRows() {
    // One row per stretch of hours; a day may have several (a lunch break), none is lost.
    const rows = [...this.weekly].sort((a, b) => a.weekday - b.weekday || a.start.localeCompare(b.start));
    return rows.map((span, index) => {
      const id = `cal-span-${index}`;
      const day = weekdayName(span.weekday);
      const end = span.end === "24:00" ? "00:00" : span.end;
      return el(
        "div",
        { class: "weekly-row", "data-weekly-row": true, role: "group", "aria-label": `${day} ${span.start}–${span.end}` },
        el("label", { class: "visually-hidden", for: `${id}-day`, text: t("calendar.day") }),
        el(
          "select",
          { id: `${id}-day`, "data-part": "weekday" },
          ...WEEKDAYS.map((w) => el("option", { value: w, text: weekdayName(w), selected: w === span.weekday })),
        ),
        el("label", { class: "visually-hidden", for: `${id}-start`, text: t("calendar.from", { day }) }),
        el("input", { type: "time", id: `${id}-start`, step: 300, value: span.start }),
        el("span", { "aria-hidden": "true", text: "–" }),
        el("label", { class: "visually-hidden", for: `${id}-end`, text: t("calendar.to", { day }) }),
        el("input", { type: "time", id: `${id}-end`, step: 300, value: end }),
        el("button", {
          type: "button",
          class: "button button-secondary button-small",
          text: t("calendar.remove"),
          "aria-label": t("calendar.remove_hours", { day, start: span.start, end: span.end }),
          onclick: () => {
            this.syncFromForm();
            this.weekly = this.weekly.filter((w) => !(w.weekday === span.weekday && w.start === span.start));
            this.render({ keepForm: false });
          },
        }),
      );
    });
  }

  addHours() {
    this.syncFromForm();
    const used = new Set(this.weekly.map((w) => w.weekday));
    const weekday = WEEKDAYS.find((w) => !used.has(w)) ?? 0;
    this.weekly = [...this.weekly, { weekday, start: "10:00", end: "18:00" }];
    this.render({ keepForm: false });
    const rows = this.root.querySelectorAll("[data-weekly-row] select");
    [...rows].find((select) => Number(select.value) === weekday)?.focus();
  }

  exceptionList() {
    if (!this.exceptions.length) return el("p", { class: "empty", text: t("calendar.no_exceptions") });
    return el(
      "ul",
      { class: "exception-list" },
      ...this.exceptions.map((e, index) =>
        el(
          "li",
          {},
          el("span", {
            text: `${e.day} · ${t(`calendar.kind.${e.kind}`)}${e.start ? ` ${e.start}–${e.end}` : ""}`,
          }),
          " ",
          el("button", {
            type: "button",
            class: "button button-secondary button-small",
            text: t("calendar.remove"),
            "aria-label": t("calendar.remove_label", { day: e.day }),
            onclick: () => {
              this.exceptions = this.exceptions.filter((_, i) => i !== index);
              this.render();
            },
          }),
        ),
      ),
    );
  }

  /** Keep what was typed in the weekly rows and zone across a re-render. */
  syncFromForm() {
    const form = this.root.querySelector("form.availability");
    if (!form) return;
    const weekly = [];
    for (const row of form.querySelectorAll("[data-weekly-row]")) {
      const [start, end] = [...row.querySelectorAll("input[type=time]")].map((input) => input.value);
      const weekday = Number(row.querySelector("[data-part=weekday]").value);
      if (start && end) weekly.push({ weekday, start, end: end === "00:00" ? "24:00" : end });
    }
    this.weekly = weekly;
    this.zone = form.querySelector("[name=timezone]").value;
  }

  render({ keepForm = true } = {}) {
    if (keepForm) this.syncFromForm();
    const zones = ZONES.includes(this.zone) ? ZONES : [this.zone, ...ZONES];
    const form = el(
      "form",
      { class: "availability", onsubmit: (event) => this.save(event) },
      el("h3", { text: t("calendar.availability") }),
      el(
        "div",
        { class: "field" },
        el("label", { for: "cal-zone", text: t("calendar.timezone") }),
        el(
          "select",
          { id: "cal-zone", name: "timezone" },
          ...zones.map((z) => el("option", { value: z, text: zoneName(z), selected: z === this.zone })),
        ),
      ),
      el(
        "fieldset",
        {},
        el("legend", { text: t("calendar.weekly") }),
        ...this.weeklyRows(),
        el("button", {
          type: "button",
          class: "button button-secondary button-small",
          text: t("calendar.add_hours"),
          onclick: () => this.addHours(),
        }),
      ),
      el(
        "fieldset",
        {},
        el("legend", { text: t("calendar.exceptions") }),
        this.exceptionList(),
        el(
          "div",
          { class: "exception-add" },
          el("label", { for: "cal-exc-day", text: t("calendar.exc_day") }),
          el("input", { type: "date", id: "cal-exc-day", name: "exc-day" }),
          el("label", { for: "cal-exc-kind", text: t("calendar.exc_kind") }),
          el(
            "select",
            { id: "cal-exc-kind", name: "exc-kind" },
            el("option", { value: "off", text: t("calendar.kind.off") }),
            el("option", { value: "extra", text: t("calendar.kind.extra") }),
          ),
          el("label", { for: "cal-exc-start", text: t("calendar.exc_start") }),
          el("input", { type: "time", id: "cal-exc-start", name: "exc-start", step: 300 }),
          el("label", { for: "cal-exc-end", text: t("calendar.exc_end") }),
          el("input", { type: "time", id: "cal-exc-end", name: "exc-end", step: 300 }),
          el("button", {
            type: "button",
            class: "button button-secondary button-small",
            text: t("calendar.add"),
            onclick: (event) => this.addException(event.target.closest("form")),
          }),
        ),
      ),
      el("p", { class: "calendar-status-line", "data-status": true, tabindex: "-1", role: "status", text: this.status }),
      this.error ? el("p", { class: "alert alert-error", role: "alert", text: errorText(this.error, ["booking.error.", "staff.error."]) }) : null,
      el("button", { type: "submit", class: "button", disabled: this.saving, text: t("calendar.save") }),
    );
    this.root.replaceChildren(
      el("h2", { class: "section-title", id: "calendar-heading", text: t("calendar.title") }),
      el("p", { class: "calendar-zone", text: t("calendar.zone", { zone: zoneName(this.zone) }) }),
      this.weekStart ? this.bookingsPart() : el("div", { "data-part": "bookings" }),
      form,
    );
  }

  /** Only the bookings again (a refresh): the availability form keeps what is typed in it. */
  renderBookings() {
    const old = this.root.querySelector("[data-part=bookings]");
    if (!old || !this.weekStart) return this.render();
    // Keep focus on the same control (a re-render replaces the nodes under it).
    const controls = () => [...this.root.querySelectorAll("[data-part=bookings] button")];
    const focused = controls().indexOf(document.activeElement);
    const booking = document.activeElement?.closest?.(/** @type {"div"} */ (".cal-grid [data-booking-id]"))?.dataset.bookingId;
    old.replaceWith(this.bookingsPart());
    if (booking) this.root.querySelector(`.cal-grid [data-booking-id="${booking}"] button`)?.focus();
    else if (focused >= 0) controls()[focused]?.focus();
  }
}

const STYLESHEET = "/staff/calendar.css";

/** Mount the calendar in ``root`` (a section labelled by the heading it renders). */
export function mountCalendar(root, me) {
  if (!document.querySelector(`link[href="${STYLESHEET}"]`)) {
    document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET }));
  }
  const calendar = new Calendar(root, me);
  calendar.start();
  return calendar;
}
