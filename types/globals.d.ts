// Globals the pages read that lib.dom does not declare.
interface Window {
  /** Stripe.js, loaded on demand by the payment sheet from js.stripe.com (its own script). */
  Stripe?: any;
  /** Safari before 14.1 names AudioContext this way (the call preview's level meter). */
  webkitAudioContext?: typeof AudioContext;
}
