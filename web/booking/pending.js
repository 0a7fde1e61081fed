// @ts-check
// A booking made without the shop's signed customer id waits for the link in its mail:
//   the pending view ("check your mail": where it went, until when the time is held, what to do
//   if nothing arrives, and the demo outbox when the server has one), and
//   the confirm step (?confirm=<token>): one press confirms, then only the NEW token opens the
//   booking (the form's answer stops working), so the address becomes ?manage=<new token>.
// A press rather than confirming on load: mail scanners that open links must not confirm.
import { language, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { $, busy, summaryRows, timeLabel, whenLabel } from "/booking/util.js";

// How long a pending booking holds its slot is in the booking form's answer only; kept for
// this tab so a reload of the pending page can still say it.
const PENDING_KEY = "livedesk.booking.pending";

/**
 * ``page`` is what these views need of the booking page: ``state``, ``failed(result, context)``,
 * ``clearError()``, ``showView(name)``, ``typeName(booking)``, ``renderDone()``.
 */
export function mailCheck(page) {
  const { state } = page;

  function remember() {
    try {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ id: state.booking.id, until: state.pendingUntil }));
    } catch {
      // Without storage a reload just does not say until when the time is held.
    }
  }

  function recall() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
      return saved?.id === state.booking.id ? saved.until : null;
    } catch {
      return null;
    }
  }

  function render() {
    const booking = state.booking;
    const until = state.pendingUntil;
    const minutes = until ? Math.max(1, Math.ceil((new Date(until).getTime() - Date.now()) / 60000)) : null;
    const facts = { email: booking.contact_email, minutes, time: until ? timeLabel(until) : "" };
    $("pending-text").textContent = t(until ? "booking.pending_text" : "booking.pending_text_plain", facts);
    $("pending-address").textContent = booking.contact_email;
    $("pending-help-time").textContent = t(until ? "booking.pending_help_time" : "booking.pending_help_time_plain", facts);
    $("pending-summary").replaceChildren(
      summaryRows([
        [t("booking.summary_what"), page.typeName(booking)],
        [t("booking.summary_with"), language() === "en" ? booking.advisor_name_en : booking.advisor_name],
        [t("booking.summary_when"), whenLabel(booking)],
        [t("booking.summary_status"), t("booking.status.pending")],
      ]),
    );
    $("pending-demo").hidden = !state.outbox;
  }

  async function show() {
    render();
    page.showView("pending");
    // The demo's outbox (no mail server): say where the mail is. 404 when there is none.
    const outbox = await request("GET", "/demo/mail.json?limit=0");
    state.outbox = outbox.ok && outbox.data?.outbox === true;
    // The address is given only when the page exists (it is registered with the outbox only).
    if (state.outbox) $("pending-outbox").href = "/demo/mail";
    $("pending-demo").hidden = !state.outbox;
  }

  async function release() {
    page.clearError();
    const done = busy($("pending-release"), "booking.releasing");
    const result = await request("POST", "/api/v1/bookings/cancel", { json: { token: state.token, reason: "" } });
    done();
    if (!result.ok) return page.failed(result);
    state.booking = result.data;
    state.justBooked = false;
    page.renderDone();
    page.showView("done");
  }

  async function confirm(token) {
    page.clearError();
    const view = $("view-confirm");
    view.setAttribute("aria-busy", "true");
    const done = busy($("confirm-button"), "booking.confirming");
    const result = await request("POST", "/api/v1/bookings/confirm", { json: { token } });
    done();
    view.removeAttribute("aria-busy");
    if (!result.ok) {
      // No connection: the link is still good, so the button stays. Otherwise the link is done
      // with; a used one means the booking was confirmed already (its mail has the links).
      const retry = result.status === 0;
      $("confirm-button").hidden = !retry;
      $("confirm-text").hidden = !retry;
      $("confirm-again").hidden = retry || result.error.code === "link_used";
      return page.failed(result, "confirm");
    }
    // From now on only the new token opens the booking; a reload opens it too.
    state.booking = result.data.booking;
    state.token = result.data.token;
    state.justBooked = true;
    history.replaceState(null, "", `/booking/?manage=${encodeURIComponent(state.token)}`);
    page.renderDone();
    page.showView("done");
  }

  return { remember, recall, render, show, release, confirm };
}
