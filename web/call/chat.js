// @ts-check
// The chat beside the call (or on its own): messages with sender, time and read ticks, the
// advisor's typing, product cards, images and files. Delivery, de-duplication, the outbox and
// replay after a reconnect belong to the shared socket module (socket.chat()).
import { formatMoney, language, t } from "/shared/i18n.js";
import { errorText } from "/shared/shopper.js";
import { el } from "/shared/dom.js";

const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;
const PEER_TYPING_TIMEOUT_MS = 8000;
const NEAR_BOTTOM_PX = 80;

export class ChatPanel {
  /**
   * socket: the shopper LiveSocket; consultationId; token: the visitor token (files need it);
   * advisorName(): the advisor's name to show; isVisible(): whether the messages are on
   * screen (read receipts); onUnread(count).
   */
  constructor({ socket, consultationId, token, advisorName, isVisible, onUnread }) {
    this.consultationId = consultationId;
    this.token = token;
    this.advisorName = advisorName;
    this.isVisible = isVisible;
    this.onUnread = onUnread;
    this.list = document.getElementById("messages");
    this.empty = document.getElementById("messages-empty");
    this.typingLine = document.getElementById("typing");
    this.errorBox = document.getElementById("chat-error");
    this.input = /** @type {HTMLTextAreaElement} */ (document.getElementById("chat-input"));
    this.fileInput = /** @type {HTMLInputElement} */ (document.getElementById("chat-file"));
    this.bySeq = new Map(); // seq → {message, node}
    this.pending = new Map(); // client_id → node: in the outbox, not yet stored
    this.failed = new Map(); // client_id → node: refused by the server (kept on screen)
    this.uploads = new Set(); // nodes of files still uploading
    this.mineDelivered = new Set(); // client_ids of our own messages already shown
    this.peerReadSeq = 0;
    this.readSent = 0;
    this.unread = 0;
    this.peerTyping = false;
    this.peerTypingTimer = 0;
    this.typingSentAt = 0;
    this.typingIdleTimer = 0;
    this.error = null;
    this.images = new Map(); // file id → data: URL (the page's CSP allows data:, not blob:, images)

    this.chat = socket.chat(consultationId);
    this.chat.onMessage((message) => this.add(message));
    this.chat.onTyping((who, typing) => this.setPeerTyping(who, typing));
    // The outbox (sessionStorage, so also after a reload): shown as "sending…" until stored.
    this.chat.onPending?.((entries) => this.renderPending(entries));
    this.chat.onError?.((error, entry) => this.refused(error, entry));
    this.chat.onRead((reader, seq) => {
      if (reader === "shopper") return;
      this.peerReadSeq = Math.max(this.peerReadSeq, Number(seq) || 0);
      this.renderTicks();
    });
    this.wire();
  }

  wire() {
    document.getElementById("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText();
    });
    this.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter breaks the line; not while an IME is composing (Japanese input).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendText();
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      this.typing();
    });
    document.getElementById("attach-button").addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      this.fileInput.value = "";
      if (file) this.sendFile(file);
    });
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`;
  }

  // ---------------------------------------------------------------- sending

  typing() {
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) {
      this.typingSentAt = now;
      this.quietly(this.chat.typing(true));
    }
    clearTimeout(this.typingIdleTimer);
    this.typingIdleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingIdleTimer);
    if (this.typingSentAt) {
      this.typingSentAt = 0;
      this.quietly(this.chat.typing(false));
    }
  }

  quietly(result) {
    if (result && typeof result.catch === "function") result.catch(() => {});
  }

  sendText() {
    const body = this.input.value.trim();
    if (!body) return;
    this.input.value = "";
    this.autosize();
    this.stopTyping();
    this.send({ kind: "text", body });
  }

  async sendFile(file) {
    this.setError(null);
    const kind = file.type.startsWith("image/") ? "image" : "file";
    const node = this.messageNode(
      { kind: "file", body: "", data: { filename: file.name }, sender: "shopper", created_at: new Date().toISOString() },
      true,
    );
    node.classList.add("msg-pending");
    this.uploads.add(node);
    this.list.insertBefore(node, null);
    this.afterInsert(true);
    let uploaded;
    try {
      const form = new FormData();
      form.append("file", file);
      const response = await fetch(`/api/v1/consultations/${encodeURIComponent(this.consultationId)}/files`, {
        method: "POST",
        headers: { Authorization: `Bearer ${this.token}`, Accept: "application/json" },
        body: form,
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) throw data?.error ?? { code: "http_error", message: `HTTP ${response.status}` };
      uploaded = data;
    } catch (error) {
      this.uploads.delete(node);
      this.markFailed(node, error?.code ? error : { code: "network_error" });
      return;
    }
    this.uploads.delete(node);
    node.remove();
    this.send({ kind, body: "", data: { file_id: uploaded.id } });
  }

  send(payload) {
    this.setError(null);
    // Shown through onPending; a refusal comes through onError (the promise rejects too).
    this.chat.send(payload).catch(() => {});
  }

  renderPending(entries) {
    for (const entry of entries) {
      if (this.pending.has(entry.client_id) || this.mineDelivered.has(entry.client_id)) continue;
      const node = this.messageNode(
        { kind: entry.kind, body: entry.body, data: entry.data ?? {}, sender: "shopper", created_at: entry.queued_at },
        true,
      );
      node.classList.add("msg-pending");
      this.pending.set(entry.client_id, node);
      this.list.insertBefore(node, null);
      this.afterInsert(true);
    }
    // An entry leaving the outbox was stored (its message arrives through onMessage, which
    // replaces the placeholder) or refused (onError, right after, marks it failed).
  }

  refused(error, entry) {
    if (!entry) {
      this.setError(error);
      return;
    }
    const node = this.pending.get(entry.client_id);
    if (!node) return;
    this.pending.delete(entry.client_id);
    this.failed.set(entry.client_id, node);
    this.markFailed(node, error, entry.client_id);
  }

  markFailed(node, error, clientId) {
    node.classList.remove("msg-pending");
    node.classList.add("msg-failed");
    const status = node.querySelector(".msg-status");
    if (status) status.textContent = t("call.chat_not_sent", { reason: errorText(error, "call") });
    // The channel keeps a refused message (not the outbox: it never blocks what comes after)
    // and can send it again under the same client id, so it is stored once at most.
    if (!clientId || typeof this.chat.retry !== "function" || node.querySelector(".msg-retry")) return;
    const actions = document.createElement("p");
    actions.className = "msg-actions";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "msg-retry";
    retry.textContent = t("call.chat_retry");
    retry.addEventListener("click", () => {
      this.failed.delete(clientId);
      this.pending.set(clientId, node);
      node.classList.remove("msg-failed");
      node.classList.add("msg-pending");
      actions.remove();
      if (status) status.textContent = "";
      this.setError(null);
      this.chat.retry(clientId).catch((err) => this.setError(err));
    });
    const discard = document.createElement("button");
    discard.type = "button";
    discard.className = "msg-discard";
    discard.textContent = t("call.chat_discard");
    discard.addEventListener("click", () => {
      this.failed.delete(clientId);
      this.chat.discard?.(clientId);
      node.remove();
    });
    actions.append(retry, discard);
    node.append(actions);
  }

  setError(error) {
    this.error = error;
    this.errorBox.hidden = !error;
    this.errorBox.textContent = error ? errorText(error, "call") : "";
  }

  // ---------------------------------------------------------------- receiving

  add(message) {
    const seq = Number(message.seq);
    if (this.bySeq.has(seq)) return;
    const mine = message.sender === "shopper";
    const node = this.messageNode(message, mine);
    node.dataset.seq = String(seq);
    if (mine && message.client_id) {
      this.mineDelivered.add(message.client_id);
      const placeholder = this.pending.get(message.client_id);
      if (placeholder) {
        this.pending.delete(message.client_id);
        placeholder.remove();
      }
    }
    // In seq order, before anything still on its way.
    const later = [...this.list.querySelectorAll(/** @type {"li"} */ (".msg[data-seq]"))].find((n) => Number(n.dataset.seq) > seq);
    const firstUnsent = this.list.querySelector(".msg-pending, .msg-failed");
    this.list.insertBefore(node, later ?? firstUnsent ?? null);
    this.bySeq.set(seq, { message, node });
    if (!mine && message.sender === "staff") this.clearPeerTyping();
    this.afterInsert(mine);
    if (!mine) {
      if (this.isVisible()) this.markRead();
      else {
        this.unread += 1;
        this.onUnread(this.unread);
      }
    }
    this.renderTicks();
  }

  afterInsert(mine) {
    this.empty.hidden = this.list.querySelector(".msg") !== null;
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < NEAR_BOTTOM_PX * 3;
    if (mine || nearBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  /** The chat came into view (the drawer opened, the tab became visible). */
  shown() {
    this.unread = 0;
    this.onUnread(0);
    this.markRead();
    this.list.scrollTop = this.list.scrollHeight;
  }

  markRead() {
    let latest = 0;
    for (const [seq, { message }] of this.bySeq) if (message.sender !== "shopper" && seq > latest) latest = seq;
    if (latest > this.readSent) {
      this.readSent = latest;
      this.quietly(this.chat.read(latest));
    }
  }

  setPeerTyping(who, typing) {
    if (who === "shopper") return;
    clearTimeout(this.peerTypingTimer);
    this.peerTyping = Boolean(typing);
    // A lost "stopped typing" must not leave the line up for ever.
    if (this.peerTyping) this.peerTypingTimer = setTimeout(() => this.clearPeerTyping(), PEER_TYPING_TIMEOUT_MS);
    this.renderTyping();
  }

  clearPeerTyping() {
    clearTimeout(this.peerTypingTimer);
    this.peerTyping = false;
    this.renderTyping();
  }

  renderTyping() {
    this.typingLine.textContent = this.peerTyping ? t("call.typing", { name: this.advisorName() || t("call.advisor") }) : "";
  }

  // ---------------------------------------------------------------- drawing

  senderName(message) {
    if (message.sender === "shopper") return t("call.you");
    if (message.sender === "staff") return this.advisorName() || t("call.advisor");
    return t("call.system");
  }

  time(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return new Intl.DateTimeFormat(language() === "ja" ? "ja-JP" : "en-GB", {
      hour: "2-digit",
      minute: "2-digit",
    }).format(date);
  }

  messageNode(message, mine) {
    if (message.kind === "event" || message.sender === "system") {
      return el("div", { class: "msg msg-event" }, el("p", { class: "msg-event-text", text: message.body }));
    }
    const time = el("time", { class: "msg-time", datetime: message.created_at, text: this.time(message.created_at) });
    const head = el("p", { class: "msg-head" }, el("span", { class: "msg-sender", text: this.senderName(message) }), " ", time);
    const node = el("div", { class: `msg ${mine ? "msg-mine" : "msg-theirs"}` }, head, this.content(message));
    if (mine) node.append(el("p", { class: "msg-status", text: t("call.chat_sending") }));
    node.dataset.created = message.created_at ?? "";
    return node;
  }

  content(message) {
    const data = message.data ?? {};
    if (message.kind === "product") return this.productCard(data);
    if (message.kind === "image") {
      const image = el("img", { class: "msg-image", alt: data.filename || t("call.image") });
      if (data.file_id) this.loadImage(data.file_id, image);
      return el("div", { class: "msg-body msg-media" }, image);
    }
    if (message.kind === "file") {
      const button = el("button", { class: "msg-file", type: "button", text: data.filename || t("call.file") });
      if (data.file_id) button.addEventListener("click", () => this.download(data));
      else button.disabled = true;
      return el("div", { class: "msg-body" }, button);
    }
    return el("p", { class: "msg-body msg-text", text: message.body });
  }

  productCard(data) {
    const price = Number.isFinite(data.price_minor) && data.currency ? formatMoney(data.price_minor, data.currency) : "";
    const image = data.image_url
      ? el("img", { class: "product-image", src: data.image_url, alt: "", width: "72", height: "72", loading: "lazy" })
      : el("span", { class: "product-image product-image-none", "aria-hidden": "true" });
    // An image the page may not load (another host: the CSP allows only our own) just goes.
    if (image.tagName === "IMG") image.addEventListener("error", () => image.replaceWith(el("span", { class: "product-image product-image-none", "aria-hidden": "true" })));
    const name = data.url
      ? el("a", { class: "product-name", href: data.url, target: "_blank", rel: "noopener", text: data.name ?? "" })
      : el("span", { class: "product-name", text: data.name ?? "" });
    return el(
      "div",
      { class: "msg-body product-card" },
      image,
      el(
        "span",
        { class: "product-text" },
        el("span", { class: "product-label", text: t("call.product") }),
        name,
        el("span", { class: "product-price", text: price }),
      ),
    );
  }

  async fetchFile(fileId) {
    const response = await fetch(`/api/v1/files/${encodeURIComponent(fileId)}`, {
      headers: { Authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.blob();
  }

  async loadImage(fileId, image) {
    try {
      if (!this.images.has(fileId)) {
        const blob = await this.fetchFile(fileId);
        const url = await new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.onerror = () => reject(reader.error);
          reader.readAsDataURL(blob);
        });
        this.images.set(fileId, url);
      }
      image.src = this.images.get(fileId);
    } catch {
      image.replaceWith(el("span", { class: "msg-file-missing", text: t("call.file_unavailable") }));
    }
  }

  async download(data) {
    try {
      const blob = await this.fetchFile(data.file_id);
      const url = URL.createObjectURL(blob);
      const link = el("a", { href: url, download: data.filename || "file" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30_000);
    } catch {
      this.setError({ code: "file_unavailable" });
    }
  }

  renderTicks() {
    for (const [seq, { message, node }] of this.bySeq) {
      if (message.sender !== "shopper") continue;
      const status = node.querySelector(".msg-status");
      if (!status) continue;
      const read = seq <= this.peerReadSeq;
      status.textContent = read ? t("call.chat_read") : t("call.chat_sent");
      status.classList.toggle("msg-status-read", read);
    }
  }

  /** Re-draw the words after a language switch. */
  render() {
    for (const { message, node } of this.bySeq.values()) {
      const sender = node.querySelector(".msg-sender");
      if (sender) sender.textContent = this.senderName(message);
      const time = node.querySelector(".msg-time");
      if (time) time.textContent = this.time(message.created_at);
      const label = node.querySelector(".product-label");
      if (label) label.textContent = t("call.product");
      const price = node.querySelector(".product-price");
      const data = message.data ?? {};
      if (price && Number.isFinite(data.price_minor) && data.currency) price.textContent = formatMoney(data.price_minor, data.currency);
    }
    this.renderTicks();
    this.renderTyping();
    if (this.error) this.setError(this.error);
  }
}
