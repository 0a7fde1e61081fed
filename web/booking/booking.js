// @ts-check
// /booking/ — the shopper's booking page (opened from the widget or a mailed link):
//   book:    type → advisor or "any" → day and time (in the shopper's time zone) → survey →
//            contact → "check your mail" (pending) — or confirmed at once when the widget
//            passed the shop's signed customer id (#scid=…&ssig=… in the fragment)
//   ?confirm=<token>  the link in the "please confirm" mail: confirm, then manage
//   ?manage=<token>   see the booking, move it to another time, or cancel it
//   ?join=<token>     count down until the call opens, then join it on /call/
// Links carry their token in the address (what a mail can hold); every state change sends it
// in the request body, never in the path.
import { formatMoney, initI18n, language, onLanguageChange, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { mountSurvey } from "/shared/survey-form.js";
import { joiner } from "/booking/join.js";
import { mailCheck } from "/booking/pending.js";
import { depositStep, paymentRow } from "/booking/deposit.js";
import { fillRegions } from "/booking/phone-region.js";
import { $, addDays, busy, dayLabel, summaryRows, today, whenLabel, zone, zoneName } from "/booking/util.js";
import { el } from "/shared/dom.js";
import { errorText as sharedErrorText } from "/shared/errors.js";

const VIEWS = ["loading", "type", "advisor", "slot", "survey", "contact", "pay", "pending", "confirm", "done", "join"];
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
  pendingUntil: null,
  justBooked: false,
  justMoved: false,
  shop: takeShopIdentity(),
  outbox: false,
};

/**
 * The shop's signed customer id, when the widget opened this page for a signed-in customer
 * (in the fragment, which never reaches a server log). Taken out of the address at once and
 * kept in memory only: it is sent with the booking, which is then confirmed without a mail.
 */
function takeShopIdentity() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const id = hash.get("scid");
  const signature = hash.get("ssig");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return id && signature ? { shop_customer_id: id, shop_signature: signature } : null;
}

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

function errorText(code, message, context) {
  const prefixes = context ? [`booking.error.${context}.`, "booking.error."] : ["booking.error."];
  return sharedErrorText({ code, message }, prefixes, { unknown: "booking.error.generic" });
}

function showError(code, message, context) {
  const box = $("error");
  box.textContent = errorText(code, message, context);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function failed(result, context) {
  if (result.status === 0) showError("network");
  else showError(result.error.code, result.error.message, context);
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
  $("slot-zone").textContent = t("booking.zone", { zone: zoneName() });
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

function bookingBody() {
  const body = {
    type_id: state.type.id,
    advisor_id: state.advisor?.id ?? null,
    start: state.slot.start,
    timezone: zone,
    locale: language(),
    contact: {
      name: $("contact-name").value.trim(),
      email: $("contact-email").value.trim(),
      phone: $("contact-phone").value.trim() || null,
      phone_region: $("contact-phone-region").value || null,
    },
  };
  if (state.surveyForm) {
    body.survey = { survey_id: state.survey.id, version: state.survey.version, answers: state.surveyForm.collect() };
  }
  if (state.shop) Object.assign(body, state.shop);
  return body;
}

/** Which contact field a 422 is about, from the error's details (or its message). */
function contactField(error) {
  const details = Array.isArray(error.details) ? error.details : [];
  for (const name of ["name", "email", "phone"]) {
    const path = `contact.${name}`;
    if (details.some((d) => String(d.field ?? "") === path) || String(error.message ?? "").includes(path)) return name;
  }
  return null;
}

async function submitBooking(event) {
  event.preventDefault();
  clearError();
  for (const name of ["name", "email", "phone"]) fieldError(name, null);
  if (!$("contact-email").value.trim()) {
    fieldError("email", t("booking.email_missing"));
    $("contact-email").focus();
    return;
  }
  const done = busy($("contact-submit"), "booking.sending");
  $("contact-form").setAttribute("aria-busy", "true");
  let result = await request("POST", "/api/v1/bookings", { json: bookingBody() });
  if (!result.ok && result.error.code === "bad_shop_signature") {
    // A stale signature must not stop the booking: book as a guest (confirmed by mail).
    console.warn("livedesk: the shop customer id signature was refused; booking as a guest");
    state.shop = null;
    result = await request("POST", "/api/v1/bookings", { json: bookingBody() });
  }
  done();
  $("contact-form").removeAttribute("aria-busy");
  if (result.ok) {
    state.booking = result.data.booking;
    state.token = result.data.token;
    state.justBooked = true;
    history.replaceState(null, "", `/booking/?manage=${encodeURIComponent(state.token)}`);
    if (state.booking.awaiting_payment) {
      // The type takes a deposit or price: pay first (the mail link, if any, after).
      state.pendingUntil = result.data.pending_until;
      pending.remember();
      await deposit.show();
    } else if (state.booking.status === "pending") {
      state.pendingUntil = result.data.pending_until;
      pending.remember();
      pending.show();
    } else {
      renderDone();
      showView("done");
    }
    return;
  }
  const details = Array.isArray(result.error.details) ? result.error.details : [];
  const surveyErrors = details.filter((d) => String(d.field ?? "").startsWith("answers."));
  if (surveyErrors.length && state.surveyForm) {
    showView("survey");
    state.surveyForm.showErrors(surveyErrors);
    return;
  }
  const field = result.error.code === "validation_failed" ? contactField(result.error) : null;
  if (field || result.error.code === "mail_budget") {
    const name = field ?? "email";
    fieldError(name, t(result.error.code === "mail_budget" ? "booking.error.mail_budget" : `booking.error.${name}`));
    $(`contact-${name}`).focus();
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
  if (booking.status === "cancelled" || booking.status === "expired") {
    title = `booking.${booking.status}_title`;
    text = t(`booking.${booking.status}_text`);
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
      paymentRow(booking),
    ].filter((row) => row !== null)),
  );
  $("done-actions").hidden = false;
  $("done-calendar").href = booking.links?.calendar ?? "#";
  $("done-calendar").hidden = booking.status !== "confirmed" || !booking.links;
  $("done-reschedule").hidden = !booking.changeable;
  $("done-cancel").hidden = !booking.changeable;
  $("done-again").hidden = booking.status !== "cancelled" && booking.status !== "expired";
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
  const days = $("days");
  days.setAttribute("aria-busy", "true");
  for (const button of days.querySelectorAll("button.slot")) button.disabled = true;
  $("slot-loading").textContent = t("booking.moving");
  $("slot-loading").hidden = false;
  const result = await request("POST", "/api/v1/bookings/reschedule", {
    json: { token: state.token, start: slot.start, timezone: zone },
  });
  $("slot-loading").hidden = true;
  $("slot-loading").textContent = t("booking.slot_loading");
  days.removeAttribute("aria-busy");
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
  const done = busy($("cancel-yes"), "booking.cancelling");
  const result = await request("POST", "/api/v1/bookings/cancel", { json: { token: state.token, reason: "" } });
  done();
  if (!result.ok) return failed(result);
  state.booking = result.data;
  state.justBooked = false;
  state.justMoved = false;
  renderDone();
  $("done-title").focus();
}

// ------------------------------------------------------------------ wiring

function wire() {
  for (const button of document.querySelectorAll(/** @type {"button"} */ ("[data-back]"))) {
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
  $("join-now").addEventListener("click", () => join.join());
  $("pending-release").addEventListener("click", () => pending.release());
  deposit.wire();
  $("confirm-button").addEventListener("click", () => pending.confirm(params.get("confirm")));
}

const page = { state, loadBooking, failed, clearError, showView, typeName, renderDone, showPending: () => pending.show() };
const join = joiner(page);
const pending = mailCheck(page);
const deposit = depositStep(page);

function rerender() {
  $("step").textContent = stepInfo();
  if (state.view === "type") renderTypes();
  if (state.view === "advisor") renderAdvisors();
  if (state.view === "slot") {
    renderSlots();
    $("slot-zone").textContent = t("booking.zone", { zone: zoneName() });
    $("week-label").textContent = t("booking.week", {
      from: dayLabel(state.weekStart, "short"),
      to: dayLabel(addDays(state.weekStart, 6), "short"),
    });
  }
  if (state.view === "done" && state.booking) renderDone();
  if (state.view === "pending" && state.booking) pending.render();
  if (state.view === "pay") deposit.render();
  if (state.view === "contact" && state.slot) showContact();
  fillRegions($("contact-phone-region"));
  state.surveyForm?.setLanguage(language());
}

async function main() {
  await initI18n({ extraAreas: ["/booking", "/surveys"] });
  wire();
  fillRegions($("contact-phone-region"));
  onLanguageChange(rerender);
  if (params.get("confirm")) {
    showView("confirm", { focus: false });
    return;
  }
  if (params.get("join")) return join.start();
  if (params.get("manage")) {
    if (await loadBooking()) {
      if (state.booking.awaiting_payment) {
        state.pendingUntil = state.booking.pending_until;
        await deposit.show();
        return;
      }
      if (state.booking.status === "pending") {
        state.pendingUntil = pending.recall();
        await pending.show();
        return;
      }
      renderDone();
      showView("done", { focus: false });
    }
    return;
  }
  await loadTypes();
}

main();
