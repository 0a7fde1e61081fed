// @ts-check
// One incoming offer (offer.new, or an offered consultation from consultation.current): who is
// waiting, for what and since when, their profile and latest purchases, survey answers, and a
// countdown to the offer's expiry; Accept / Decline.
import { t } from "/shared/i18n.js";
import { errorText } from "/shared/staff-api.js";
import { loadProfile, loadTimeline, orderBlock, profileList, skillName, localeName } from "/shared/customer/panel.js";
import { el, instantiate, part, setText, uid } from "/shared/dom.js";
import { duration, secondsSince } from "/shared/time.js";
import { intakePairs } from "/shared/customer/intake.js";

/** Survey answers as pairs, whatever the (future) survey module sends: {q: a} or [{question, answer}]. */
export function surveyPairs(answers) {
  if (!answers) return [];
  const text = (value) => (Array.isArray(value) ? value.join(", ") : value == null ? "" : String(value));
  if (Array.isArray(answers)) {
    return answers
      .map((a) => [text(a.label ?? a.question ?? a.title ?? a.key), text(a.answer ?? a.value ?? a.answers)])
      .filter(([q]) => q);
  }
  if (typeof answers === "object") return Object.entries(answers).map(([q, a]) => [q, text(a)]);
  return [];
}

export class OfferCard {
  constructor(offer, { me, onAccept, onDecline }) {
    this.offer = offer;
    this.me = me;
    this.profile = null;
    /** @type {number | undefined} seconds the offer had when first shown (the bar's full width) */
    this.total = undefined;
    this.orders = null; // null: loading; [] none
    this.ordersError = null;
    this.error = null;
    this.busy = false;
    this.root = instantiate("tpl-offer", uid("offer"));
    this.root.dataset.consultationId = offer.id;
    this.acceptButton = part(this.root, "accept");
    this.declineButton = part(this.root, "decline");
    this.acceptButton.addEventListener("click", () => onAccept(this));
    this.declineButton.addEventListener("click", () => onDecline(this));
    this.render();
    this.ready = this.load();
  }

  get id() {
    return this.offer.id;
  }

  /** The same offer again (consultation.current after a reconnect): keep what we know. */
  update(offer) {
    this.offer = { ...offer, offer_expires_at: offer.offer_expires_at ?? this.offer.offer_expires_at };
    this.render();
  }

  async load() {
    const [profile, orders] = await Promise.all([
      loadProfile(this.offer.shopper_id),
      loadTimeline(this.offer.shopper_id, { limit: 3, kinds: ["shop.order"] }),
    ]);
    if (profile.ok) this.profile = profile.data;
    else this.profileError = profile.error;
    if (orders.ok) this.orders = orders.data.events;
    else {
      this.orders = [];
      this.ordersError = orders.error;
    }
    this.render();
  }

  setBusy(busy) {
    this.busy = busy;
    this.acceptButton.disabled = busy;
    this.declineButton.disabled = busy;
  }

  showError(error) {
    this.error = error;
    this.render();
  }

  name() {
    return this.profile?.display_name ?? t("console.offer.shopper");
  }

  nominationText() {
    const nominated = this.offer.nominated_advisor_id;
    if (this.offer.booking_id) return t("calendar.booked_call");
    if (!nominated) return t("console.offer.not_nominated");
    if (nominated === this.me.id) return t("console.offer.nominated_you");
    return t("console.offer.nominated_other");
  }

  requestText() {
    const bits = [];
    if (this.offer.skills?.length) {
      bits.push(t("console.offer.skills", { skills: this.offer.skills.map(skillName).join(", ") }));
    }
    if (this.offer.language) bits.push(t("console.offer.language", { language: localeName(this.offer.language) }));
    return bits.join(" · ") || t("console.offer.no_request");
  }

  render() {
    const offer = this.offer;
    const root = this.root;
    root.dataset.kind = offer.kind;
    root.classList.toggle("offer-nominated", offer.nominated_advisor_id === this.me.id);
    part(root, "kind").dataset.kind = offer.kind;
    setText(part(root, "kind"), t(`console.kind.${offer.kind}`));
    setText(part(root, "name"), this.name());
    setText(part(root, "nominated"), this.nominationText());
    setText(part(root, "request"), this.requestText());

    const profileBox = part(root, "profile");
    profileBox.replaceChildren();
    if (this.profile) profileBox.append(profileList(this.profile, { compact: true }));
    else if (this.profileError) profileBox.append(el("p", { class: "muted", text: errorText(this.profileError) }));

    const purchases = part(root, "purchases");
    purchases.replaceChildren();
    if (this.orders === null) {
      purchases.append(el("p", { class: "muted", text: t("console.timeline.loading") }));
    } else if (this.ordersError) {
      purchases.append(el("p", { class: "muted", text: errorText(this.ordersError) }));
    } else if (!this.orders.length) {
      purchases.append(el("p", { class: "muted", text: t("console.offer.no_purchases") }));
    } else {
      const list = el("ul", { class: "purchase-list" });
      for (const event of this.orders) list.append(el("li", {}, [orderBlock(event, { compact: true })]));
      purchases.append(list);
    }

    const pairs = offer.intake ? intakePairs(offer.intake) : surveyPairs(offer.extra?.survey_answers);
    part(root, "survey-section").hidden = !pairs.length;
    const survey = part(root, "survey");
    survey.replaceChildren(...pairs.flatMap(([q, a]) => [el("dt", { text: q }), el("dd", { text: a })]));

    const error = part(root, "error");
    error.hidden = !this.error;
    setText(error, this.error ? errorText(this.error) : "");
    this.tick();
  }

  /** Every second: the waiting time and the countdown. */
  tick(now = Date.now()) {
    const offer = this.offer;
    const waited = secondsSince(offer.queued_at ?? offer.requested_at, now);
    setText(part(this.root, "waiting"), t("console.offer.waiting", { time: duration(waited) }));
    const countdown = part(this.root, "countdown");
    const bar = part(this.root, "bar");
    if (!offer.offer_expires_at) {
      setText(countdown, "");
      bar.parentElement.hidden = true;
      return;
    }
    const left = Math.max(0, Math.ceil((Date.parse(offer.offer_expires_at) - now) / 1000));
    this.total ??= Math.max(left, 1);
    setText(countdown, left ? t("console.offer.expires_in", { seconds: left }) : t("console.offer.expiring"));
    bar.parentElement.hidden = false;
    bar.style.setProperty("--left", String(Math.min(1, left / this.total)));
    this.root.classList.toggle("offer-urgent", left <= 10);
  }

  /** The sentence the live region reads when the offer arrives. */
  announcement() {
    return t("console.offer.announce", { kind: t(`console.kind.${this.offer.kind}`), name: this.name() });
  }
}
