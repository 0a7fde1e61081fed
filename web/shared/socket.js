// @ts-check
// The one socket wrapper every page uses (docs/browser-contract.md): acks that resolve or
// reject, retries only where the server makes an event safe to repeat, and a chat channel
// that loses nothing across reconnects and reloads.
//
// python-socketio has no connection-state recovery, so recovery is built here: after every
// (re)connect a chat channel re-sends its un-acked messages (same client_id, so the server
// stores each once) and pages through chat.sync from the last sequence it delivered.
import { io } from "/vendor/socket.io.esm.min.js";

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;

// Events the server makes idempotent: repeating one after a lost ack cannot do anything twice
// (chat.send dedups by client_id, queue.join returns the open consultation, reads and
// presence only set state). Anything else may have taken effect before the ack was lost, so a
// timeout is reported instead of retried.
export const SAFE_TO_REPEAT = new Set([
  "chat.send",
  "chat.sync",
  "chat.read",
  "consultation.current",
  "consultation.get",
  "presence.set",
  "presence.list",
  "queue.join",
]);

/** An error the server answered ({ok: false}), or a local one (`transient`: timeout/offline). */
export class LiveError extends Error {
  constructor(code, message, details = undefined, { transient = false } = {}) {
    super(message || code);
    this.name = "LiveError";
    this.code = code;
    this.details = details;
    // true when the server never answered (timeout, disconnect): the event may or may not
    // have taken effect; false when the server refused it (repeating it would not help).
    this.transient = transient;
  }

  static fromAck(error) {
    return new LiveError(error?.code ?? "error", error?.message ?? "", error?.details);
  }
}

function transientError(cause) {
  const offline = /disconnected/i.test(String(cause?.message ?? ""));
  return new LiveError(
    offline ? "disconnected" : "timeout",
    offline ? "The connection dropped before the server answered" : "The server did not answer in time",
    undefined,
    { transient: true },
  );
}

/** A random id the server accepts as a client_id (^[A-Za-z0-9_-]{8,64}$). */
export function randomId() {
  // randomUUID needs a secure context; getRandomValues works everywhere.
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID().replaceAll("-", "");
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** {code, message} of a refused or failed connection. */
function refusal(error) {
  // livedesk refuses with {code, message} as the error's data.
  if (error?.data?.code) return { code: error.data.code, message: error.data.message ?? "" };
  // No code: the server was unreachable (socket.io-client says "xhr poll error" and the like).
  return { code: "connect_failed", message: String(error?.message ?? "") };
}

function safely(fn, ...args) {
  // One page handler throwing must not stop the others (or the wrapper's own bookkeeping).
  try {
    fn(...args);
  } catch (error) {
    (globalThis.reportError ?? console.error)(error);
  }
}

export class LiveSocket {
  /** The shopper namespace, authenticated by a visitor token from POST /api/v1/visitors. */
  static shopper(token, options = {}) {
    return new LiveSocket("/shopper", { ...options, token });
  }

  /** The staff namespace, authenticated by the login session cookie. */
  static staff(options = {}) {
    return new LiveSocket("/staff", options);
  }

  #state = "connecting";
  #stateListeners = new Set();
  #channels = new Map();
  #everConnected = false;

  constructor(namespace, { token = null, url = "", path = "/socket.io/" } = {}) {
    this.namespace = namespace;
    this.role = namespace === "/shopper" ? "shopper" : "staff";
    this.token = token;
    /** The connect refusal or failure last seen ({code, message}), for a page to explain. */
    this.lastError = null;
    this.socket = io(url + namespace, {
      path,
      auth: token ? { token } : undefined,
      // Websocket first (no sticky sessions needed behind the proxy); long-polling when a
      // network blocks websockets.
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      withCredentials: true,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
      timeout: 10_000,
    });
    this.socket.on("connect", () => {
      this.lastError = null;
      this.#everConnected = true;
      this.#setState("connected");
    });
    this.socket.on("disconnect", (reason) => {
      // socket.active: socket.io-client will reconnect by itself (not after a manual
      // disconnect or the server closing this namespace, e.g. an ended staff session).
      this.#setState(this.socket.active ? "reconnecting" : "disconnected", { reason });
    });
    this.socket.on("connect_error", (error) => {
      this.lastError = refusal(error);
      const next = this.socket.active ? (this.#everConnected ? "reconnecting" : "connecting") : "disconnected";
      this.#setState(next, { error: this.lastError });
    });
    this.socket.io.on("reconnect_attempt", () => {
      if (!this.socket.connected) this.#setState("reconnecting");
    });
  }

  get state() {
    return this.#state;
  }

  get connected() {
    return this.socket.connected;
  }

  get id() {
    return this.socket.id;
  }

  #setState(state, info = {}) {
    if (state === this.#state && !info.error) return;
    this.#state = state;
    for (const fn of [...this.#stateListeners]) safely(fn, state, info);
  }

  /** fn(state, info) now and on every change: "connecting" | "connected" | "reconnecting" |
   * "disconnected". Returns an unsubscribe function. */
  onState(fn) {
    this.#stateListeners.add(fn);
    safely(fn, this.#state, {});
    return () => this.#stateListeners.delete(fn);
  }

  /** A server → client event. Returns an unsubscribe function. */
  on(event, fn) {
    this.socket.on(event, fn);
    return () => this.socket.off(event, fn);
  }

  /** Emit with an ack; resolves ack.data, rejects LiveError. Timeouts and disconnects are
   * retried (after the socket is back) only for SAFE_TO_REPEAT events, or when the caller
   * vouches for it with {idempotent: true}. */
  /** @param {string} event @param {any} [payload] @param {{timeoutMs?: number, retries?: number, idempotent?: boolean}} [options] */
  async call(event, payload = {}, { timeoutMs = DEFAULT_TIMEOUT_MS, retries, idempotent } = {}) {
    const repeatable = idempotent ?? SAFE_TO_REPEAT.has(event);
    const attempts = 1 + (repeatable ? Math.max(0, retries ?? DEFAULT_RETRIES) : 0);
    let lastError = null;
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      // A retry waits for the connection instead of piling more copies into the buffer.
      if (attempt > 0) await this.#whenConnected(timeoutMs);
      let ack;
      try {
        ack = await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
      } catch (error) {
        lastError = transientError(error);
        continue;
      }
      if (ack && ack.ok === true) return ack.data;
      if (ack && ack.ok === false) throw LiveError.fromAck(ack.error);
      throw new LiveError("bad_ack", `Unexpected answer to ${event}`);
    }
    throw lastError;
  }

  #whenConnected(timeoutMs) {
    if (this.socket.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value) => {
        clearTimeout(timer);
        this.socket.off("connect", onConnect);
        resolve(value);
      };
      const onConnect = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.socket.on("connect", onConnect);
    });
  }

  /** The chat of one consultation (one channel per consultation and socket). */
  chat(consultationId) {
    let channel = this.#channels.get(consultationId);
    if (!channel || channel.closed) {
      channel = new ChatChannel(this, consultationId);
      this.#channels.set(consultationId, channel);
    }
    return channel;
  }

  /** A fresh visitor token for the next (re)connect (tokens expire). */
  setToken(token) {
    this.token = token;
    this.socket.auth = { token };
  }

  /** Close on purpose (no automatic reconnect); connect() opens it again. */
  disconnect() {
    this.socket.disconnect();
  }

  connect() {
    if (this.socket.connected) return;
    this.#setState(this.#everConnected ? "reconnecting" : "connecting");
    this.socket.connect();
  }

  /** Close for good: the socket and every chat channel. */
  close() {
    for (const channel of this.#channels.values()) channel.close();
    this.#channels.clear();
    this.#stateListeners.clear();
    this.socket.disconnect();
  }
}

const OUTBOX_PREFIX = "livedesk.outbox";
const SEND_TIMEOUT_MS = 8_000;
const RESEND_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000];
// Sends of one message left unanswered while connected before it is marked failed (with a
// retry) so the messages behind it go out: the outbox never waits on one message for good.
const MAX_UNANSWERED = 4;
const TYPING_REPEAT_MS = 3_000;
// Refusals that mean "not now" rather than "no": the server could not store the message at
// the moment (database or chat store down), so it stays in the outbox and is re-sent with the
// back-off; it goes to `failed` only on a final refusal. A refusal naming details.retry_after
// (a rate limit) waits at least that long, up to RETRY_AFTER_MAX_MS.
const RETRY_LATER = new Set(["database_unavailable", "store_unavailable", "rate_limited"]);
const RETRY_AFTER_MAX_MS = 60_000;

/** How long to wait before re-sending after this refusal, or null when it is final. */
function retryLaterMs(error) {
  if (error?.transient) return null;
  const after = Number(error?.details?.retry_after);
  if (Number.isFinite(after) && after > 0) return Math.min(after * 1_000, RETRY_AFTER_MAX_MS);
  return RETRY_LATER.has(error?.code) ? 0 : null;
}

/**
 * One consultation's chat. Messages reach onMessage handlers once each, in seq order, whether
 * they came live (chat.message), from a sync, or back from one's own send. Messages sent here
 * wait in an outbox kept in sessionStorage until the server acks them, so neither a dropped
 * connection nor a reload of the page loses one.
 */
export class ChatChannel {
  #live;
  #storageKey;
  #lastSeq = 0; // highest seq delivered with no gap before it
  #held = new Map(); // seq → message that arrived before its predecessor
  #delivered = [];
  #outbox = [];
  #failed = []; // refused or never answered: shown with a retry, never blocking the outbox
  #waiters = new Map(); // client_id → {resolve, reject} of this page's send() calls
  #messageHandlers = new Set();
  #typingHandlers = new Set();
  #readHandlers = new Set();
  #pendingHandlers = new Set();
  #failedHandlers = new Set();
  #errorHandlers = new Set();
  #offs = [];
  #pumping = false;
  #resendTimer = null;
  #resendAttempt = 0;
  #resendAfterMs = 0; // a refusal's own retry_after, for the next back-off
  #unanswered = 0; // unanswered sends of the outbox's first message
  #syncing = null;
  #syncAgain = false;
  #gapTimer = null;
  #readSent = 0;
  #typingSent = null;
  #typingAt = 0;
  #closed = false;

  constructor(live, consultationId) {
    this.#live = live;
    this.consultationId = consultationId;
    this.#storageKey = `${OUTBOX_PREFIX}.${live.role}.${consultationId}`;
    this.#outbox = this.#load();
    this.#offs.push(
      live.on("chat.message", (message) => {
        if (message?.consultation_id === consultationId) this.#accept(message);
      }),
      live.on("chat.typing", (event) => {
        if (event?.consultation_id !== consultationId) return;
        for (const fn of [...this.#typingHandlers]) safely(fn, event.who, event.typing);
      }),
      live.on("chat.read", (event) => {
        if (event?.consultation_id !== consultationId) return;
        for (const fn of [...this.#readHandlers]) safely(fn, event.reader, event.seq);
      }),
      // Every (re)connect: fetch what was missed and re-send what was never acked.
      live.on("connect", () => this.#recover()),
    );
    if (live.connected) queueMicrotask(() => this.#recover());
  }

  get closed() {
    return this.#closed;
  }

  /** The newest seq delivered in order so far. */
  get lastSeq() {
    return this.#lastSeq;
  }

  /** Every message delivered so far, in seq order. */
  get messages() {
    return [...this.#delivered];
  }

  /** The outbox: messages sent here and not yet acked, oldest first. */
  get pending() {
    return this.#outbox.map((entry) => ({ ...entry }));
  }

  /** Messages the server refused (or never answered), oldest first, each with its error
   * ({code, message}): a page shows them as "not sent" with retry() and discard(). */
  get failed() {
    return this.#failed.map((entry) => ({ ...entry, error: { ...entry.error } }));
  }

  #recover() {
    if (this.#closed) return;
    this.#resendAttempt = 0;
    this.sync().catch((error) => this.#reportError(error));
    this.#pump();
  }

  // ------------------------------------------------------------------ receiving

  #accept(message) {
    // A message marked failed for want of an answer was stored after all.
    if (message?.client_id && this.#failed.some((e) => e.client_id === message.client_id)) {
      this.#failed = this.#failed.filter((e) => e.client_id !== message.client_id);
      this.#failedChanged();
    }
    const seq = message?.seq;
    if (!Number.isInteger(seq) || seq <= this.#lastSeq || this.#held.has(seq)) return; // seen
    this.#held.set(seq, message);
    while (this.#held.has(this.#lastSeq + 1)) {
      const next = this.#held.get(this.#lastSeq + 1);
      this.#held.delete(this.#lastSeq + 1);
      this.#lastSeq += 1;
      this.#deliver(next);
    }
    // A later message overtook an earlier one (e.g. its chat.message was lost while a
    // reconnect was under way): hold it and fetch the gap.
    if (this.#held.size) this.#fillGap();
  }

  #deliver(message) {
    this.#delivered.push(message);
    for (const handler of [...this.#messageHandlers]) {
      if (!handler.replaying) this.#feed(handler, message);
    }
  }

  #feed(handler, message) {
    if (message.seq <= handler.seen) return;
    handler.seen = message.seq;
    safely(handler.fn, message);
  }

  #fillGap() {
    if (this.#gapTimer) return;
    this.sync()
      .catch((error) => this.#reportError(error))
      .finally(() => {
        // Still a hole (the server had not caught up): try again shortly, not in a loop.
        if (this.#held.size && !this.#closed) {
          this.#gapTimer = setTimeout(() => {
            this.#gapTimer = null;
            if (this.#held.size) this.#fillGap();
          }, 1_000);
        }
      });
  }

  /** Fetch everything after the last delivered seq, page by page until complete: the server
   * bounds each answer in messages and bytes and names the cursor to ask from next (each page
   * starts past the previous one, so a missing seq on the server cannot loop this). Runs after
   * every (re)connect on its own; concurrent calls share one run. */
  sync() {
    if (this.#syncing) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      do {
        this.#syncAgain = false;
        let after = this.#lastSeq;
        while (!this.#closed) {
          const page = await this.#live.call("chat.sync", {
            consultation_id: this.consultationId,
            after_seq: after,
          });
          const messages = page.messages ?? [];
          for (const message of messages) this.#accept(message);
          const next = Number.isInteger(page.next_after_seq) ? page.next_after_seq : messages.at(-1)?.seq;
          if (page.complete || !messages.length || !(next > after)) break;
          after = next;
        }
      } while (this.#syncAgain && !this.#closed);
    })().finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }

  /** fn(message) for every message once, in seq order — those delivered before fn was added
   * included. Returns an unsubscribe function. */
  onMessage(fn) {
    const handler = { fn, seen: 0, replaying: true };
    this.#messageHandlers.add(handler);
    // Replay after the caller's current code ran (a constructor registering handlers has
    // finished), then go live; `seen` stops a message from being given twice.
    queueMicrotask(() => {
      for (const message of this.#delivered) {
        if (!this.#messageHandlers.has(handler)) return;
        this.#feed(handler, message);
      }
      handler.replaying = false;
    });
    return () => this.#messageHandlers.delete(handler);
  }

  onTyping(fn) {
    this.#typingHandlers.add(fn);
    return () => this.#typingHandlers.delete(fn);
  }

  onRead(fn) {
    this.#readHandlers.add(fn);
    return () => this.#readHandlers.delete(fn);
  }

  /** fn(entries) now and whenever the outbox changes: [{client_id, kind, body, data,
   * queued_at}] oldest first — what a page shows as "sending…". */
  onPending(fn) {
    this.#pendingHandlers.add(fn);
    safely(fn, this.pending);
    return () => this.#pendingHandlers.delete(fn);
  }

  /** fn(entries) now and whenever the failed list changes (see `failed`). */
  onFailed(fn) {
    this.#failedHandlers.add(fn);
    safely(fn, this.failed);
    return () => this.#failedHandlers.delete(fn);
  }

  /** Send a failed message again (same client_id, so it is stored once however often it is
   * retried); resolves with its ack like send(). */
  retry(clientId) {
    const index = this.#failed.findIndex((e) => e.client_id === clientId);
    if (index < 0) return Promise.reject(new LiveError("not_failed", "No failed message with that id"));
    const [failed] = this.#failed.splice(index, 1);
    const { error: _error, ...entry } = failed;
    const acked = new Promise((resolve, reject) => this.#waiters.set(entry.client_id, { resolve, reject }));
    this.#outbox.push(entry);
    this.#failedChanged();
    this.#changed();
    this.#pump();
    return acked;
  }

  /** Forget a failed message. */
  discard(clientId) {
    this.#failed = this.#failed.filter((e) => e.client_id !== clientId);
    this.#failedChanged();
  }

  /** fn(error, entry) when the server refuses an outbox message (it moves to `failed`) or a
   * background sync fails. send() rejects too, but after a reload nobody awaits it. */
  onError(fn) {
    this.#errorHandlers.add(fn);
    return () => this.#errorHandlers.delete(fn);
  }

  #reportError(error, entry = null) {
    if (error?.transient) return; // the next reconnect retries; nothing for a page to do
    for (const fn of [...this.#errorHandlers]) safely(fn, error, entry);
  }

  // ------------------------------------------------------------------ sending

  /** Queue a message ({kind, body, data}) and send it; resolves with the ack ({seq, id,
   * duplicate, created_at}) once the server stored it — after reconnects if need be — and
   * rejects LiveError if the server refuses it. The message itself comes through onMessage. */
  send({ kind = "text", body = "", data = null } = {}) {
    const entry = { client_id: randomId(), kind, body, data, queued_at: new Date().toISOString() };
    const acked = new Promise((resolve, reject) => this.#waiters.set(entry.client_id, { resolve, reject }));
    this.#outbox.push(entry);
    this.#changed();
    this.#pump();
    return acked;
  }

  #failedChanged() {
    const list = this.failed;
    for (const fn of [...this.#failedHandlers]) safely(fn, list);
  }

  #changed() {
    this.#save();
    const list = this.pending;
    for (const fn of [...this.#pendingHandlers]) safely(fn, list);
  }

  #load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(this.#storageKey) ?? "[]");
      return Array.isArray(saved) ? saved.filter((e) => e && typeof e.client_id === "string") : [];
    } catch {
      return []; // storage disabled or garbled: an in-memory outbox still works
    }
  }

  #save() {
    try {
      if (this.#outbox.length) sessionStorage.setItem(this.#storageKey, JSON.stringify(this.#outbox));
      else sessionStorage.removeItem(this.#storageKey);
    } catch {
      // storage full or disabled: the outbox lives on in memory for this page
    }
  }

  #settle(entry, outcome, value) {
    const index = this.#outbox.indexOf(entry);
    if (index >= 0) this.#outbox.splice(index, 1);
    this.#unanswered = 0;
    if (outcome === "reject") {
      this.#failed.push({ ...entry, error: { code: value?.code ?? "error", message: value?.message ?? "" } });
      this.#failedChanged();
    }
    this.#changed();
    const waiter = this.#waiters.get(entry.client_id);
    this.#waiters.delete(entry.client_id);
    if (waiter) waiter[outcome](value);
  }

  // One message in flight at a time, oldest first: a later message can never be stored before
  // an earlier one that was lost with a dropped connection, so seq order is send order.
  async #pump() {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    let stalled = false;
    try {
      while (this.#outbox.length && this.#live.connected && !this.#closed) {
        const entry = this.#outbox[0];
        const payload = { consultation_id: this.consultationId, client_id: entry.client_id, kind: entry.kind };
        if (entry.body) payload.body = entry.body;
        if (entry.data) payload.data = entry.data;
        let ack;
        try {
          ack = await this.#live.call("chat.send", payload, { timeoutMs: SEND_TIMEOUT_MS, retries: 0 });
        } catch (error) {
          const later = retryLaterMs(error);
          if (later !== null) {
            // Refused for now (database down, too fast): keep it, and the ones behind it, in
            // order; the back-off below sends it again.
            this.#resendAfterMs = later;
            stalled = true;
            break;
          }
          if (error?.transient && !(error.code === "timeout" && ++this.#unanswered >= MAX_UNANSWERED)) {
            stalled = true; // keep it; re-sent on reconnect or after a back-off
            break;
          }
          const failure = error?.transient
            ? new LiveError("no_answer", "The server did not answer this message", undefined)
            : error;
          this.#settle(entry, "reject", failure);
          this.#reportError(failure, entry);
          continue;
        }
        this.#resendAttempt = 0;
        this.#settle(entry, "resolve", ack);
        // The sending socket gets its own message in the ack (not as a chat.message); an
        // older server's ack without it means the message comes live or by a sync.
        if (ack?.message) this.#accept(ack.message);
        else if (ack && ack.seq > this.#lastSeq && !this.#held.has(ack.seq)) this.#fillGap();
      }
    } finally {
      this.#pumping = false;
    }
    if (stalled && this.#live.connected && !this.#closed && !this.#resendTimer) {
      // Connected but unanswered (a slow server) or refused for now: try again with a growing
      // pause (at least what the server asked for).
      const backoff = RESEND_BACKOFF_MS[Math.min(this.#resendAttempt, RESEND_BACKOFF_MS.length - 1)];
      const delay = Math.max(backoff, this.#resendAfterMs);
      this.#resendAfterMs = 0;
      this.#resendAttempt += 1;
      this.#resendTimer = setTimeout(() => {
        this.#resendTimer = null;
        this.#pump();
      }, delay);
    }
  }

  /** Tell the other party whether this one is typing. Best effort: resolves false instead of
   * failing; repeated identical states within a few seconds are not re-sent. */
  async typing(typing) {
    const now = Date.now();
    if (!this.#live.connected) return false;
    if (this.#typingSent === typing && now - this.#typingAt < TYPING_REPEAT_MS) return true;
    this.#typingSent = typing;
    this.#typingAt = now;
    try {
      const payload = { consultation_id: this.consultationId, typing: !!typing };
      await this.#live.call("chat.typing", payload, { timeoutMs: 5_000 });
      return true;
    } catch {
      return false;
    }
  }

  /** Mark everything up to seq as read (only ever moves forward). */
  async read(seq) {
    if (!(seq > this.#readSent)) return { seq: this.#readSent };
    const previous = this.#readSent;
    this.#readSent = seq;
    try {
      return await this.#live.call("chat.read", { consultation_id: this.consultationId, seq });
    } catch (error) {
      if (this.#readSent === seq) this.#readSent = previous; // let the next call repeat it
      throw error;
    }
  }

  /** Stop listening (the outbox stays in sessionStorage for the next page). */
  close() {
    this.#closed = true;
    clearTimeout(this.#resendTimer);
    clearTimeout(this.#gapTimer);
    for (const off of this.#offs) off();
    this.#offs = [];
    this.#messageHandlers.clear();
    this.#typingHandlers.clear();
    this.#readHandlers.clear();
    this.#pendingHandlers.clear();
    this.#errorHandlers.clear();
  }
}
