// /booking/ — the shopper's booking page (opened from the widget or a mailed link):
//   book:    type → advisor or "any" → day and time (in the shopper's time zone) → survey →
//            contact → confirmation
//   ?manage=<token>  see the booking, move it to another time, or cancel it
//   ?join=<token>    count down until the call opens, then join it on /call/
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { mountSurvey } from "/shared/survey-form.js";
import { addDays, dayLabel, el, today, whenLabel, zone } from "/booking/util.js";

const VIEWS = ["loading", "type", "advisor", "slot", "survey", "contact", "done", "join"];
const VISITOR_KEY = "livedesk.visitor";
const params = new URLSearchParams(location.search);

const state = {
  view: "loading",
  mode: "book", // "book" | "reschedule"
  types: [],
  type: null,
  advisors: [],
  advisor: null, // null = any
  weekStart: null, // "YYYY-MM-DD" in the shopper's zone
  slots: [],
  slot: null,
  survey: null,
  surveyForm: null,
  token: params.get("manage") || params.get("join") || null,
  booking: null,
  justBooked: false,
  countdown: null,
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ views

function stepInfo() {
  const total = state.survey ? 5 : 4;
  const order = { type: 1, advisor: 2, slot: 3, survey: 4, contact: state.survey ? 5 : 4 };
  if (state.mode !== "book" || !(state.view in order)) return "";
  return t("booking.step", { n: order[state.view], total });
}

function showView(name, { focus = true } = {}) {
  state.view = name;
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  $("step").textContent = stepInfo();
  if (focus) {
    const heading = $(`view-${name}`).querySelector("h1");
    heading?.focus();
  }
}

function showError(code, message) {
  const key = `booking.error.${code}`;
  const text = t(key);
  const box = $("error");
  box.textContent = text === key ? message || t("booking.error.generic") : text;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function failed(result) {
  if (result.status === 0) showError("network");
  else showError(result.error.code, result.error.message);
}

function typeName(type) {
  return language() === "en" && (type.name_en || type.type_name_en) ? type.name_en || type.type_name_en : type.name || type.type_name;
}

function advisorName(advisor) {
  if (!advisor) return t("booking.any");
  return language() === "en" ? advisor.display_name_en || advisor.display_name : advisor.display_name;
}

// ------------------------------------------------------------------ step 1: type

async function loadTypes() {
  const result = await request("GET", "/api/v1/booking/types");
  if (!result.ok) return failed(result);
  state.types = result.data.types;
  renderTypes();
  showView("type", { focus: false });
}

function renderTypes() {
  const list = $("type-list");
  list.replaceChildren(
    ...state.types.map((type) => {
      const facts = [t("booking.minutes", { n: type.duration_minutes })];
      if (type.price_amount != null && type.currency) facts.push(t("booking.price", { amount: formatMoney(type.price_amount, type.currency) }));
      if (type.deposit_amount != null && type.currency) facts.push(t("booking.deposit", { amount: formatMoney(type.deposit_amount, type.currency) }));
      const description = language() === "en" && type.description_en ? type.description_en : type.description;
      return el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "choice", "data-type-id": type.id, onclick: () => chooseType(type) },
          el("span", { class: "choice-title", text: typeName(type) }),
          el("span", { class: "choice-facts", text: facts.join(" · ") }),
          description ? el("span", { class: "choice-text", text: description }) : null,
        ),
      );
    }),
  );
  $("type-empty").hidden = state.types.length > 0;
}

async function chooseType(type) {
  clearError();
  state.type = type;
  const [advisors, survey] = await Promise.all([
    request("GET", `/api/v1/booking/types/${type.id}/advisors`),
    request("GET", `/api/v1/booking/types/${type.id}/survey`),
  ]);
  if (!advisors.ok) return failed(advisors);
  state.advisors = advisors.data.advisors;
  state.survey = survey.ok ? survey.data.survey : null;
  state.surveyForm = null;
  renderAdvisors();
  showView("advisor");
}

// ------------------------------------------------------------------ step 2: advisor

function renderAdvisors() {
  const anyone = el(
    "li",
    {},
    el(
      "button",
      { type: "button", class: "choice", "data-advisor": "any", onclick: () => chooseAdvisor(null) },
      el("span", { class: "choice-title", text: t("booking.any") }),
      el("span", { class: "choice-text", text: t("booking.any_text") }),
    ),
  );
  const people = state.advisors.map((advisor) => {
    const bio = language() === "en" ? advisor.bio_en || advisor.bio : advisor.bio;
    return el(
      "li",
      {},
      el(
        "button",
        { type: "button", class: "choice choice-advisor", "data-advisor": advisor.id, onclick: () => chooseAdvisor(advisor) },
        advisor.photo_url ? el("img", { src: advisor.photo_url, alt: "", width: 56, height: 56, class: "avatar" }) : null,
        el("span", { class: "choice-title", text: advisorName(advisor) }),
        bio ? el("span", { class: "choice-text", text: bio }) : null,
      ),
    );
  });
  $("advisor-list").replaceChildren(anyone, ...people);
}

function chooseAdvisor(advisor) {
  state.advisor = advisor;
  state.weekStart = today();
  showView("slot");
  loadSlots();
}

// ------------------------------------------------------------------ step 3: day and time

async function loadSlots() {
  clearError();
  const from = state.weekStart;
  const to = addDays(from, 6);
  $("week-label").textContent = t("booking.week", { from: dayLabel(from, "short"), to: dayLabel(to, "short") });
  $("slot-zone").textContent = t("booking.zone", { zone });
  $("week-prev").disabled = from <= today();
  $("slot-loading").hidden = false;
  $("days").setAttribute("aria-busy", "true");
  const advisor = state.mode === "reschedule" ? state.booking.advisor_id : state.advisor?.id ?? "any";
  const typeId = state.mode === "reschedule" ? state.booking.type_id : state.type.id;
  const query = new URLSearchParams({ type_id: typeId, advisor, start: from, end: to, timezone: zone });
  const result = await request("GET", `/api/v1/booking/slots?${query}`);
  $("slot-loading").hidden = true;
  $("days").removeAttribute("aria-busy");
  if (!result.ok) return failed(result);
  state.slots = result.data.slots;
  renderSlots();
}

function renderSlots() {
  const byDay = new Map();
  for (let i = 0; i < 7; i += 1) byDay.set(addDays(state.weekStart, i), []);
  for (const slot of state.slots) byDay.get(slot.date)?.push(slot);
  const groups = [];
  for (const [day, slots] of byDay) {
    const headingId = `day-${day}`;
    groups.push(
      el(
        "section",
        { class: "day", "aria-labelledby": headingId },
        el("h3", { id: headingId, text: dayLabel(day) }),
        slots.length
          ? el(
              "ul",
              { class: "slot-list" },
              ...slots.map((slot) =>
                el(
                  "li",
                  {},
                  el("button", {
                    type: "button",
                    class: "slot",
                    "data-start": slot.start,
                    text: slot.time,
                    "aria-label": t("booking.slot_label", { day: dayLabel(day), time: slot.time }),
                    onclick: () => chooseSlot(slot),
                  }),
                ),
              ),
            )
          : el("p", { class: "no-slots", text: t("booking.no_slots_day") }),
      ),
    );
  }
  $("days").replaceChildren(...groups);
  $("slot-empty").hidden = state.slots.length > 0;
}

async function chooseSlot(slot) {
  state.slot = slot;
  clearError();
  if (state.mode === "reschedule") return reschedule(slot);
  if (state.survey) {
    if (!state.surveyForm) state.surveyForm = mountSurvey($("survey-form"), state.survey, { lang: language() });
    showView("survey");
  } else {
    showContact();
  }
}

// ------------------------------------------------------------------ steps 4–5: survey, contact

function summaryRows(rows) {
  return el(
    "dl",
    { class: "summary-list" },
    ...rows.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: value })]),
  );
}

function showContact() {
  const when = whenLabel({
    starts_at: state.slot.start,
    ends_at: state.slot.end,
    timezone: zone,
  });
  $("contact-summary").replaceChildren(
    summaryRows([
      [t("booking.summary_what"), typeName(state.type)],
      [t("booking.summary_with"), advisorName(state.advisor)],
      [t("booking.summary_when"), when],
    ]),
  );
  showView("contact");
}

function fieldError(name, message) {
  const input = $(`contact-${name}`);
  const box = $(`contact-${name}-error`);
  box.textContent = message ?? "";
  box.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

async function submitBooking(event) {
  event.preventDefault();
  clearError();
  fieldError("email", null);
  fieldError("phone", null);
  const email = $("contact-email").value.trim();
  if (!email) {
    fieldError("email", t("booking.email_missing"));
    $("contact-email").focus();
    return;
  }
  const body = {
    type_id: state.type.id,
    advisor_id: state.advisor?.id ?? null,
    start: state.slot.start,
    timezone: zone,
    locale: language(),
    contact: { name: $("contact-name").value.trim(), email, phone: $("contact-phone").value.trim() || null },
  };
  if (state.surveyForm) {
    body.survey = { survey_id: state.survey.id, version: state.survey.version, answers: state.surveyForm.collect() };
  }
  const button = $("contact-submit");
  button.disabled = true;
  button.textContent = t("booking.sending");
  const result = await request("POST", "/api/v1/bookings", { json: body });
  button.disabled = false;
  button.textContent = t("booking.confirm");
  if (result.ok) {
    state.booking = result.data.booking;
    state.token = result.data.token;
    state.justBooked = true;
    history.replaceState(null, "", `/booking/?manage=${encodeURIComponent(state.token)}`);
    renderDone();
    showView("done");
    return;
  }
  const details = Array.isArray(result.error.details) ? result.error.details : [];
  const surveyErrors = details.filter((d) => String(d.field ?? "").startsWith("answers."));
  if (surveyErrors.length && state.surveyForm) {
    showView("survey");
    state.surveyForm.showErrors(surveyErrors);
    return;
  }
  const message = result.error.message ?? "";
  if (result.error.code === "validation_failed" && message.includes("email")) {
    fieldError("email", t("booking.error.email"));
    $("contact-email").focus();
    return;
  }
  if (result.error.code === "validation_failed" && message.includes("phone")) {
    fieldError("phone", t("booking.error.phone"));
    $("contact-phone").focus();
    return;
  }
  failed(result);
  if (["slot_taken", "outside_hours", "too_soon", "slot_in_past"].includes(result.error.code)) {
    showView("slot", { focus: false });
    loadSlots();
  }
}

// ------------------------------------------------------------------ done / manage

function renderDone() {
  const booking = state.booking;
  let title = "booking.manage_title";
  let text = t("booking.manage_text");
  if (booking.status === "cancelled") {
    title = "booking.cancelled_title";
    text = t("booking.cancelled_text");
  } else if (state.justBooked) {
    title = "booking.done_title";
    text = t("booking.done_text", { email: booking.contact_email });
  } else if (state.justMoved) {
    title = "booking.moved_title";
  }
  $("done-title").textContent = t(title);
  $("done-text").textContent = text;
  $("done-summary").replaceChildren(
    summaryRows([
      [t("booking.summary_what"), typeName(booking)],
      [t("booking.summary_with"), language() === "en" ? booking.advisor_name_en : booking.advisor_name],
      [t("booking.summary_when"), whenLabel(booking)],
      [t("booking.summary_status"), t(`booking.status.${booking.status}`)],
    ]),
  );
  $("done-calendar").href = booking.links?.calendar ?? "#";
  $("done-calendar").hidden = booking.status !== "confirmed";
  $("done-reschedule").hidden = !booking.changeable;
  $("done-cancel").hidden = !booking.changeable;
  $("cancel-confirm").hidden = true;
}

async function loadBooking() {
  const result = await request("GET", `/api/v1/bookings/${encodeURIComponent(state.token)}`);
  if (!result.ok) {
    showView("done", { focus: false });
    $("done-title").textContent = t("booking.manage_title");
    $("done-actions").hidden = true;
    failed(result);
    return false;
  }
  state.booking = result.data;
  return true;
}

async function reschedule(slot) {
  const result = await request("POST", `/api/v1/bookings/${encodeURIComponent(state.token)}/reschedule`, {
    json: { start: slot.start, timezone: zone },
  });
  if (!result.ok) {
    failed(result);
    loadSlots();
    return;
  }
  state.booking = result.data;
  state.mode = "book";
  state.justBooked = false;
  state.justMoved = true;
  renderDone();
  showView("done");
}

async function cancelBooking() {
  const button = $("cancel-yes");
  button.disabled = true;
  const result = await request("POST", `/api/v1/bookings/${encodeURIComponent(state.token)}/cancel`, { json: {} });
  button.disabled = false;
  if (!result.ok) return failed(result);
  state.booking = result.data;
  state.justBooked = false;
  renderDone();
  $("done-title").focus();
}

// ------------------------------------------------------------------ join

function pad(n) {
  return String(n).padStart(2, "0");
}

function renderCountdown(target) {
  const left = Math.max(0, Math.round((target - Date.now()) / 1000));
  const d = Math.floor(left / 86400);
  const h = pad(Math.floor((left % 86400) / 3600));
  const m = pad(Math.floor((left % 3600) / 60));
  const s = pad(left % 60);
  $("countdown-value").textContent = d ? t("booking.countdown_days", { d, h, m, s }) : t("booking.countdown", { h, m, s });
  return left;
}

async function join() {
  clearError();
  const result = await request("POST", `/api/v1/bookings/${encodeURIComponent(state.token)}/join`);
  if (!result.ok) {
    $("join-countdown").hidden = true;
    return failed(result);
  }
  const data = result.data;
  if (data.status === "early") {
    $("join-countdown").hidden = false;
    const target = Date.now() + data.seconds_to_open * 1000;
    clearInterval(state.countdown);
    renderCountdown(target);
    state.countdown = setInterval(() => {
      if (renderCountdown(target) <= 0) {
        clearInterval(state.countdown);
        join();
      }
    }, 1000);
    return;
  }
  $("join-countdown").hidden = true;
  $("join-status").textContent = t("booking.joining", {
    name: language() === "en" ? state.booking.advisor_name_en : state.booking.advisor_name,
  });
  try {
    sessionStorage.setItem(
      VISITOR_KEY,
      JSON.stringify({
        token: data.visitor_token,
        shopper_id: data.shopper_id,
        linked: false,
        expires_at: Date.now() + (data.expires_in - 60) * 1000,
      }),
    );
  } catch {
    // Storage blocked: the call page will say it has no visit; nothing else to do here.
  }
  location.assign(`/call/?c=${encodeURIComponent(data.consultation_id)}`);
}

async function startJoin() {
  showView("join", { focus: false });
  if (!(await loadBooking())) return;
  $("join-summary").replaceChildren(
    summaryRows([
      [t("booking.summary_what"), typeName(state.booking)],
      [t("booking.summary_with"), language() === "en" ? state.booking.advisor_name_en : state.booking.advisor_name],
      [t("booking.summary_when"), whenLabel(state.booking)],
    ]),
  );
  showView("join");
  await join();
}

// ------------------------------------------------------------------ wiring

function wire() {
  for (const button of document.querySelectorAll("[data-back]")) {
    button.addEventListener("click", () => {
      clearError();
      showView(button.dataset.back);
    });
  }
  $("slot-back").addEventListener("click", () => {
    clearError();
    if (state.mode === "reschedule") {
      state.mode = "book";
      renderDone();
      showView("done");
    } else showView("advisor");
  });
  $("week-prev").addEventListener("click", () => {
    const previous = addDays(state.weekStart, -7);
    state.weekStart = previous < today() ? today() : previous;
    loadSlots();
  });
  $("week-next").addEventListener("click", () => {
    state.weekStart = addDays(state.weekStart, 7);
    loadSlots();
  });
  $("survey-next").addEventListener("click", () => {
    if (state.surveyForm.validate()) showContact();
  });
  $("contact-back").addEventListener("click", () => showView(state.survey ? "survey" : "slot"));
  $("contact-form").addEventListener("submit", submitBooking);
  $("done-reschedule").addEventListener("click", () => {
    state.mode = "reschedule";
    state.weekStart = today();
    showView("slot");
    loadSlots();
  });
  $("done-cancel").addEventListener("click", () => {
    $("cancel-confirm").hidden = false;
    $("cancel-yes").focus();
  });
  $("cancel-no").addEventListener("click", () => {
    $("cancel-confirm").hidden = true;
    $("done-cancel").focus();
  });
  $("cancel-yes").addEventListener("click", cancelBooking);
  $("join-now").addEventListener("click", join);
}

function rerender() {
  $("step").textContent = stepInfo();
  if (state.view === "type") renderTypes();
  if (state.view === "advisor") renderAdvisors();
  if (state.view === "slot") {
    renderSlots();
    $("slot-zone").textContent = t("booking.zone", { zone });
    $("week-label").textContent = t("booking.week", {
      from: dayLabel(state.weekStart, "short"),
      to: dayLabel(addDays(state.weekStart, 6), "short"),
    });
  }
  if (state.view === "done" && state.booking) renderDone();
  if (state.view === "contact" && state.slot) showContact();
  state.surveyForm?.setLanguage(language());
}

async function main() {
  await initI18n({ extraAreas: ["/booking", "/surveys"] });
  wire();
  onLanguageChange(rerender);
  if (params.get("join")) return startJoin();
  if (params.get("manage")) {
    if (await loadBooking()) {
      renderDone();
      showView("done", { focus: false });
    }
    return;
  }
  await loadTypes();
}

main();
