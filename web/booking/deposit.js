// @ts-check
// The "pay" step of the booking page: a booking whose type takes a deposit (or a price) is
// pending until that is paid or held. Shows the amount and what happens to it on cancel or a
// no-show, then collects it with the same client flow as the payment sheet in a call:
// Stripe's Payment Element (the card goes from the browser to Stripe, never to livedesk) or,
// without Stripe keys, the sandbox's test-mode buttons. The server confirms the booking when
// the provider says the money is in (the Stripe webhook, or the sandbox action).
import { formatMoney, language, t } from "/shared/i18n.js";
import { request } from "/shared/api.js";
import { loadStripe } from "/shared/payment-sheet.js";
import { $, busy } from "/booking/util.js";

/** @param {any} page the booking page's shared state and helpers */
export function depositStep(page) {
  const { state } = page;
  /** @type {any} */
  let sheet = null;
  /** @type {any} */
  let stripe = null;

  function policy(s) {
    return t(`booking.pay.policy.${s.capture}.${s.purpose}`);
  }

  function render() {
    if (!sheet) return;
    const amount = formatMoney(sheet.amount_minor, sheet.currency);
    $("pay-amount").textContent = t(`booking.pay.amount.${sheet.purpose}`, { amount });
    $("pay-policy").textContent = policy(sheet);
    $("pay-test-mode").hidden = !sheet.test_mode;
    $("pay-sandbox").hidden = sheet.provider !== "sandbox";
    $("pay-stripe").hidden = sheet.provider !== "stripe";
    $("pay-failure").hidden = !sheet.failure_code;
    $("pay-failure").textContent = sheet.failure_code ? t("booking.pay.declined") : "";
    $("pay-until").textContent = state.pendingUntil
      ? t("booking.pay.until", { time: new Date(state.pendingUntil).toLocaleTimeString(language() === "ja" ? "ja-JP" : "en-GB", { hour: "2-digit", minute: "2-digit" }) })
      : "";
  }

  async function show() {
    page.clearError();
    page.showView("pay");
    const result = await request("POST", "/api/v1/bookings/payment", { json: { token: state.token } });
    if (!result.ok) return page.failed(result);
    sheet = result.data;
    render();
    if (sheet.provider === "stripe" && sheet.client_secret) await mountStripe();
  }

  async function mountStripe() {
    try {
      const Stripe = await loadStripe();
      const client = Stripe(sheet.publishable_key, { locale: language() });
      const elements = client.elements({ clientSecret: sheet.client_secret, locale: language() });
      const element = elements.create("payment");
      element.mount($("pay-stripe-element"));
      stripe = { client, elements };
    } catch {
      page.failed({ ok: false, error: { code: "stripe_unavailable", message: "" } });
    }
  }

  /** After the money is in (or declined): the booking as the server now has it. */
  async function after(data) {
    sheet = data;
    if (data.status === "open") return render();
    await page.loadBooking();
    if (state.booking.status === "pending") {
      // Paid; the link in the mail is still to be opened.
      return page.showPending();
    }
    page.renderDone();
    page.showView("done");
  }

  async function sandbox(action) {
    const done = busy($(action === "pay" ? "pay-sandbox-pay" : "pay-sandbox-decline"), "booking.pay.paying");
    const result = await request("POST", "/api/v1/bookings/payment/sandbox", { json: { token: state.token, action } });
    done();
    if (!result.ok) return page.failed(result);
    await after(result.data);
  }

  async function payWithStripe() {
    if (!stripe) return;
    const done = busy($("pay-stripe-submit"), "booking.pay.paying");
    const outcome = await stripe.client.confirmPayment({
      elements: stripe.elements,
      confirmParams: { return_url: location.href },
      redirect: "if_required",
    });
    done();
    if (outcome.error) {
      sheet = { ...sheet, failure_code: outcome.error.code ?? "card_declined" };
      return render();
    }
    // Stripe's webhook confirms the booking; wait for it a little, then show what is known.
    for (let i = 0; i < 20; i += 1) {
      const now = await request("POST", "/api/v1/bookings/payment", { json: { token: state.token } });
      if (now.ok && now.data.status !== "open") return after(now.data);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await after({ ...sheet, status: "processing" });
  }

  function wire() {
    $("pay-sandbox-pay").addEventListener("click", () => sandbox("pay"));
    $("pay-sandbox-decline").addEventListener("click", () => sandbox("decline"));
    $("pay-stripe-submit").addEventListener("click", payWithStripe);
  }

  return { show, render, wire };
}

/** The payment line of a booking's summary ("Deposit ¥1,000: paid"), or null. */
export function paymentRow(booking) {
  const p = booking.payment;
  if (!p) return null;
  return [
    t(`booking.pay.summary.${p.purpose}`),
    t("booking.pay.summary_value", { amount: formatMoney(p.amount_minor, p.currency), status: t(`booking.pay.status.${p.status}`) }) +
      (p.test_mode ? ` (${t("booking.pay.test_mode")})` : ""),
  ];
}

