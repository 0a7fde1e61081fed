// @ts-check
// The join link (?join=<token>): count down until the call opens, then hand over to /call/
// with a visitor token for that one consultation. The token goes in the request body.
import { language, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { $, summaryRows, whenLabel } from "/booking/util.js";

const VISITOR_KEY = "livedesk.visitor";

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

/**
 * The join view. ``page`` is what it needs of the booking page: ``state`` (token, booking),
 * ``loadBooking()``, ``failed(result)``, ``clearError()``, ``showView(name)``, ``typeName(b)``.
 */
export function joiner(page) {
  const { state } = page;
  let countdown = null;

  async function join() {
    page.clearError();
    $("join-status").textContent = t("booking.join_checking");
    const result = await request("POST", "/api/v1/bookings/join", { json: { token: state.token } });
    $("join-status").textContent = "";
    if (!result.ok) {
      $("join-countdown").hidden = true;
      return page.failed(result);
    }
    const data = result.data;
    if (data.status === "early") {
      $("join-countdown").hidden = false;
      const target = Date.now() + data.seconds_to_open * 1000;
      clearInterval(countdown);
      renderCountdown(target);
      countdown = setInterval(() => {
        if (renderCountdown(target) <= 0) {
          clearInterval(countdown);
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

  async function start() {
    page.showView("join", { focus: false });
    if (!(await page.loadBooking())) return;
    $("join-summary").replaceChildren(
      summaryRows([
        [t("booking.summary_what"), page.typeName(state.booking)],
        [t("booking.summary_with"), language() === "en" ? state.booking.advisor_name_en : state.booking.advisor_name],
        [t("booking.summary_when"), whenLabel(state.booking)],
      ]),
    );
    page.showView("join");
    await join();
  }

  return { start, join };
}
