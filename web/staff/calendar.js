// The advisor's own booking calendar and availability editor, in the console under the
// consultations: a week of bookings (in the advisor's time zone), and the weekly hours, time
// zone and date exceptions that slots are made from. Strings: the /booking i18n area.
import { language, onLanguageChange, t } from "/shared/i18n.js";
import { api, errorText } from "/staff/api.js";

const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];
const ZONES = ["Asia/Tokyo", "Europe/London", "America/New_York", "UTC"];

function node(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

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
  }

  async start() {
    onLanguageChange(() => this.render());
    await this.loadAvailability();
    this.weekStart = todayIn(this.zone);
    await this.loadBookings();
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

  async loadBookings() {
    const end = addDays(this.weekStart, 6);
    const result = await api("GET", `/api/v1/advisors/${this.me.id}/bookings?start=${this.weekStart}&end=${end}`);
    if (!result.ok) this.error = result.error;
    else this.bookings = result.data.bookings;
    this.render();
  }

  moveWeek(days) {
    this.weekStart = addDays(this.weekStart, days);
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

  bookingList() {
    if (!this.bookings.length) return node("p", { class: "empty", text: t("calendar.no_bookings") });
    const time = new Intl.DateTimeFormat(locale(), {
      weekday: "short",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZone: this.zone,
    });
    return node(
      "ul",
      { class: "calendar-list" },
      ...this.bookings.map((b) =>
        node(
          "li",
          { class: `calendar-item status-${b.status}`, "data-booking-id": b.id },
          node("strong", { text: time.format(new Date(b.starts_at)) }),
          " ",
          node("span", { text: language() === "en" && b.type_name_en ? b.type_name_en : b.type_name }),
          " · ",
          node("span", { text: b.contact_name || b.contact_email }),
          " · ",
          node("span", { class: "calendar-status", text: t(`booking.status.${b.status}`) }),
          b.nominated ? node("span", { class: "calendar-nominated", text: ` · ${t("calendar.nominated")}` }) : null,
          this.cancelControls(b),
        ),
      ),
    );
  }

  cancelControls(booking) {
    if (booking.status !== "confirmed" || new Date(booking.starts_at) <= new Date()) return null;
    if (this.confirming !== booking.id) {
      return node("button", {
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
    return node(
      "span",
      { class: "calendar-confirm", role: "group", "aria-label": t("calendar.cancel_question") },
      ` ${t("calendar.cancel_question")} `,
      node("button", {
        type: "button",
        class: "button button-small",
        "data-confirm-yes": true,
        text: t("calendar.cancel_yes"),
        onclick: () => this.cancel(booking),
      }),
      " ",
      node("button", {
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
      return node(
        "div",
        { class: "weekly-row", "data-weekly-row": true, role: "group", "aria-label": `${day} ${span.start}–${span.end}` },
        node("label", { class: "visually-hidden", for: `${id}-day`, text: t("calendar.day") }),
        node(
          "select",
          { id: `${id}-day`, "data-part": "weekday" },
          ...WEEKDAYS.map((w) => node("option", { value: w, text: weekdayName(w), selected: w === span.weekday })),
        ),
        node("label", { class: "visually-hidden", for: `${id}-start`, text: t("calendar.from", { day }) }),
        node("input", { type: "time", id: `${id}-start`, step: 300, value: span.start }),
        node("span", { "aria-hidden": "true", text: "–" }),
        node("label", { class: "visually-hidden", for: `${id}-end`, text: t("calendar.to", { day }) }),
        node("input", { type: "time", id: `${id}-end`, step: 300, value: end }),
        node("button", {
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
    if (!this.exceptions.length) return node("p", { class: "empty", text: t("calendar.no_exceptions") });
    return node(
      "ul",
      { class: "exception-list" },
      ...this.exceptions.map((e, index) =>
        node(
          "li",
          {},
          node("span", {
            text: `${e.day} · ${t(`calendar.kind.${e.kind}`)}${e.start ? ` ${e.start}–${e.end}` : ""}`,
          }),
          " ",
          node("button", {
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
    const form = node(
      "form",
      { class: "availability", onsubmit: (event) => this.save(event) },
      node("h3", { text: t("calendar.availability") }),
      node(
        "div",
        { class: "field" },
        node("label", { for: "cal-zone", text: t("calendar.timezone") }),
        node(
          "select",
          { id: "cal-zone", name: "timezone" },
          ...zones.map((z) => node("option", { value: z, text: z, selected: z === this.zone })),
        ),
      ),
      node(
        "fieldset",
        {},
        node("legend", { text: t("calendar.weekly") }),
        ...this.weeklyRows(),
        node("button", {
          type: "button",
          class: "button button-secondary button-small",
          text: t("calendar.add_hours"),
          onclick: () => this.addHours(),
        }),
      ),
      node(
        "fieldset",
        {},
        node("legend", { text: t("calendar.exceptions") }),
        this.exceptionList(),
        node(
          "div",
          { class: "exception-add" },
          node("label", { for: "cal-exc-day", text: t("calendar.exc_day") }),
          node("input", { type: "date", id: "cal-exc-day", name: "exc-day" }),
          node("label", { for: "cal-exc-kind", text: t("calendar.exc_kind") }),
          node(
            "select",
            { id: "cal-exc-kind", name: "exc-kind" },
            node("option", { value: "off", text: t("calendar.kind.off") }),
            node("option", { value: "extra", text: t("calendar.kind.extra") }),
          ),
          node("label", { for: "cal-exc-start", text: t("calendar.exc_start") }),
          node("input", { type: "time", id: "cal-exc-start", name: "exc-start", step: 300 }),
          node("label", { for: "cal-exc-end", text: t("calendar.exc_end") }),
          node("input", { type: "time", id: "cal-exc-end", name: "exc-end", step: 300 }),
          node("button", {
            type: "button",
            class: "button button-secondary button-small",
            text: t("calendar.add"),
            onclick: (event) => this.addException(event.target.closest("form")),
          }),
        ),
      ),
      node("p", { class: "calendar-status-line", "data-status": true, tabindex: "-1", role: "status", text: this.status }),
      this.error ? node("p", { class: "alert alert-error", role: "alert", text: errorText(this.error, ["booking.error.", "staff.error."]) }) : null,
      node("button", { type: "submit", class: "button", disabled: this.saving, text: t("calendar.save") }),
    );
    const end = this.weekStart ? addDays(this.weekStart, 6) : "";
    this.root.replaceChildren(
      node("h2", { class: "section-title", id: "calendar-heading", text: t("calendar.title") }),
      node("p", { class: "calendar-zone", text: t("calendar.zone", { zone: this.zone }) }),
      node(
        "div",
        { class: "calendar-week" },
        node("button", { type: "button", class: "button button-secondary button-small", text: t("booking.week_prev"), onclick: () => this.moveWeek(-7) }),
        node("h3", { "aria-live": "polite", text: this.weekStart ? `${this.weekStart} – ${end}` : "" }),
        node("button", { type: "button", class: "button button-secondary button-small", text: t("booking.week_next"), onclick: () => this.moveWeek(7) }),
      ),
      this.bookingList(),
      node("p", {
        class: "calendar-status-line",
        "data-list-status": true,
        tabindex: "-1",
        role: "status",
        text: this.listStatus ?? "",
      }),
      form,
    );
  }
}

const STYLESHEET = "/staff/calendar.css";

/** Mount the calendar in ``root`` (a section labelled by the heading it renders). */
export function mountCalendar(root, me) {
  if (!document.querySelector(`link[href="${STYLESHEET}"]`)) {
    document.head.append(node("link", { rel: "stylesheet", href: STYLESHEET }));
  }
  const calendar = new Calendar(root, me);
  calendar.start();
  return calendar;
}
