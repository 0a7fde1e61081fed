// @ts-check
// The chat of one consultation, on the shared socket's chat channel (socket.chat(id)): history
// and replay come from the channel (every message once, in seq order); this view draws them,
// sends text, files and product cards, shows typing and read state, and reports what it read.
import { formatMoney, t } from "/shared/i18n.js";
import { errorText, upload } from "/shared/staff-api.js";
import { productCardMessage } from "/staff/product-cards.js";
import { ProductSearch } from "/staff/product-search.js";
import { el, part, setText } from "/shared/dom.js";
import { clockTime } from "/shared/time.js";

const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 8000;

export class ChatView {
  /**
   * root: the chat section (from the workspace template); chat: the socket's chat channel;
   * me: the signed-in advisor; isVisible(): whether the advisor can see this chat now.
   */
  constructor(root, { chat, consultationId, me, isVisible, onUnread, onShopperMessage }) {
    this.root = root;
    this.chat = chat;
    this.consultationId = consultationId;
    this.me = me;
    this.isVisible = isVisible;
    this.onUnread = onUnread;
    this.onShopperMessage = onShopperMessage;
    this.messages = new Map(); // seq → message
    this.clientIds = new Set(); // client_ids of the messages drawn
    // Messages on their way: the channel's outbox when it tells us (onPending), else our own
    // list of sends not yet acked; and the ones the server refused.
    this.outbox = [];
    this.local = [];
    this.failed = [];
    this.tracksOutbox = typeof chat.onPending === "function";
    // The channel keeps refused messages itself (with a retry) when it can.
    this.tracksFailed = typeof chat.onFailed === "function";
    this.shopperReadSeq = 0;
    this.readSent = 0;
    this.typingSent = false;
    this.typingTimer = null;
    this.shopperTypingTimer = null;
    this.closed = false;

    this.log = part(root, "log");
    this.scroller = part(root, "scroller");
    this.form = part(root, "form");
    this.input = part(root, "input");
    this.typingLine = part(root, "typing");
    this.errorLine = part(root, "chat-error");
    this.products = new ProductSearch(part(root, "products"));
    this.productButton = part(root, "send-product");
    this.fileInput = part(root, "file");

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendText();
    });
    this.input.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter starts a new line (IME composition is left alone).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendText();
      }
    });
    this.input.addEventListener("input", () => this.typed());
    this.productButton.addEventListener("click", () => this.sendProduct());
    this.fileInput.addEventListener("change", () => this.sendFile());
    this.scroller.addEventListener("focusin", () => this.markRead());

    this.offs = [
      chat.onMessage((message) => this.received(message)),
      chat.onTyping((who, typing) => this.shopperTyping(who, typing)),
      chat.onRead((reader, seq) => this.readBy(reader, seq)),
    ];
    if (this.tracksOutbox) {
      this.offs.push(
        chat.onPending((entries) => {
          this.outbox = entries;
          this.renderPending();
        }),
      );
    }
    if (this.tracksFailed) {
      this.offs.push(
        chat.onFailed((entries) => {
          this.failed = entries;
          this.renderPending();
        }),
      );
    }
    // A message re-sent after a reload that the server refused (nobody awaits its send()).
    if (typeof chat.onError === "function") {
      this.offs.push(
        chat.onError((error, entry) => {
          if (entry && !this.tracksFailed) {
            this.failed.push(entry);
            this.renderPending();
          }
          this.showError(error);
        }),
      );
    }
    this.fillProducts();
  }

  async start() {
    try {
      await this.chat.sync();
    } catch (error) {
      this.showError(error);
    }
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.typingTimer);
    clearTimeout(this.shopperTypingTimer);
    for (const off of this.offs) if (typeof off === "function") off();
    // The consultation is over: stop the channel (its outbox, if any, stays for a later page).
    this.chat.close?.();
  }

  showError(error) {
    this.errorLine.hidden = !error;
    setText(this.errorLine, error ? errorText(error) : "");
  }

  // ------------------------------------------------------------ receiving

  received(message) {
    if (this.messages.has(message.seq)) return;
    this.messages.set(message.seq, message);
    if (message.client_id) this.clientIds.add(message.client_id);
    this.insert(this.messageNode(message), message.seq);
    this.renderPending();
    this.scrollDown();
    if (message.sender === "shopper") {
      this.onShopperMessage?.(message);
      this.setShopperTyping(false);
      this.markRead();
    }
  }

  insert(node, seq) {
    // In seq order, before the bubbles still on their way.
    const after = [...this.log.children].find((li) => li.dataset.pending !== undefined || Number(li.dataset.seq) > seq);
    this.log.insertBefore(node, after ?? null);
  }

  scrollDown() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  shopperTyping(who, typing) {
    if (who !== "shopper") return;
    this.setShopperTyping(typing);
  }

  setShopperTyping(typing) {
    clearTimeout(this.shopperTypingTimer);
    this.shopperIsTyping = typing;
    setText(this.typingLine, typing ? t("console.chat.typing") : "");
    if (typing) this.shopperTypingTimer = setTimeout(() => this.setShopperTyping(false), TYPING_SHOWN_MS);
  }

  readBy(reader, seq) {
    if (reader !== "shopper" || seq <= this.shopperReadSeq) return;
    this.shopperReadSeq = seq;
    this.renderReceipts();
  }

  unread() {
    let count = 0;
    for (const message of this.messages.values()) {
      if (message.sender === "shopper" && message.seq > this.readSent) count += 1;
    }
    return count;
  }

  /** Tell the shopper we read up to the newest message, when the advisor can see it. */
  markRead() {
    const newest = Math.max(0, ...this.messages.keys());
    if (this.isVisible() && newest > this.readSent) {
      this.readSent = newest;
      try {
        const sent = this.chat.read(newest);
        sent?.catch?.(() => {}); // read state is best effort; the next read repeats it
      } catch {
        // the same
      }
    }
    this.onUnread?.(this.unread());
  }

  // ------------------------------------------------------------ sending

  typed() {
    if (!this.typingSent && this.input.value.trim()) {
      this.typingSent = true;
      this.sendTyping(true);
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typingSent) {
      this.typingSent = false;
      this.sendTyping(false);
    }
  }

  sendTyping(typing) {
    try {
      this.chat.typing(typing)?.catch?.(() => {});
    } catch {
      // typing is a hint; losing one is harmless
    }
  }

  sendText() {
    const body = this.input.value.trim();
    if (!body) return;
    this.input.value = "";
    this.stopTyping();
    this.send({ kind: "text", body });
  }

  async send(message) {
    this.showError(null);
    const local = { ...message, client_id: null };
    if (!this.tracksOutbox) {
      this.local.push(local);
      this.renderPending();
    }
    this.scrollDown();
    try {
      await this.chat.send(message);
    } catch (error) {
      if (!this.tracksFailed) this.failed.push(message);
      this.showError(error);
    } finally {
      this.local = this.local.filter((entry) => entry !== local);
      this.renderPending();
    }
  }

  sendProduct() {
    const product = this.products.chosen;
    if (!product) {
      // Nothing chosen yet: to the search box, with the list open.
      this.products.input.focus();
      this.products.open();
      return;
    }
    this.send(productCardMessage(product.sku));
    this.products.reset();
  }

  async sendFile() {
    const file = this.fileInput.files?.[0];
    this.fileInput.value = "";
    if (!file) return;
    this.showError(null);
    setText(this.typingLine, t("console.chat.uploading", { name: file.name }));
    const result = await upload(`/api/v1/consultations/${this.consultationId}/files`, file);
    setText(this.typingLine, "");
    if (!result.ok) {
      this.showError(result.error);
      return;
    }
    const kind = result.data.content_type.startsWith("image/") ? "image" : "file";
    this.send({ kind, body: "", data: { file_id: result.data.id } });
  }

  fillProducts() {
    this.products.relabel();
  }

  // ------------------------------------------------------------ drawing

  senderLabel(message) {
    if (message.sender === "shopper") return t("console.chat.shopper");
    if (message.sender === "system") return t("console.chat.system");
    return message.sender_staff_id === this.me.id ? t("console.chat.you") : t("console.chat.advisor");
  }

  content(message) {
    const data = message.data ?? {};
    if (message.kind === "product") {
      return el("div", { class: "product-card" }, [
        data.image_url ? el("img", { src: data.image_url, alt: "", width: 56, height: 56 }) : null,
        el("div", {}, [
          el("p", { class: "product-name", text: data.name ?? message.body }),
          el("p", { class: "product-price", text: typeof data.price_minor === "number" ? formatMoney(data.price_minor, data.currency ?? "JPY") : "" }),
          data.sku ? el("p", { class: "product-sku", text: data.sku }) : null,
        ]),
      ]);
    }
    if (message.kind === "image" && data.url) {
      return el("a", { class: "msg-image",  href: data.url, target: "_blank", rel: "noopener"  }, [
        el("img", { src: data.url, alt: data.filename ?? t("console.chat.image") }),
      ]);
    }
    if (message.kind === "file" && data.url) {
      return el("a", { class: "msg-file", text: t("console.chat.file", { name: data.filename ?? "file" }), href: data.url, target: "_blank", rel: "noopener" });
    }
    if (message.kind === "event") {
      return el("p", { class: "msg-body", text: message.body });
    }
    return el("p", { class: "msg-body", text: message.body });
  }

  messageNode(message) {
    const mine = message.sender === "staff" && message.sender_staff_id === this.me.id;
    const who = message.sender === "system" || message.kind === "event" ? "system" : mine ? "mine" : message.sender;
    const li = el("li", { class: `msg msg-${who}` });
    li.dataset.seq = String(message.seq);
    li.append(
      el("p", { class: "msg-meta" }, [
        el("span", { class: "msg-sender", text: this.senderLabel(message) }),
        el("time", { text: clockTime(message.created_at), datetime: message.created_at }),
      ]),
      this.content(message),
    );
    if (mine) li.append(el("p", { class: "msg-state" }));
    this.receipt(li, message);
    return li;
  }

  pendingNode(entry, failed) {
    const li = el("li", { class: `msg msg-mine msg-pending${failed ? " msg-failed" : ""}` });
    li.dataset.pending = "";
    li.append(
      el("p", { class: "msg-meta" }, [el("span", { class: "msg-sender", text: t("console.chat.you") })]),
      this.content({ ...entry, sender: "staff", sender_staff_id: this.me.id }),
      el("p", { class: "msg-state", text: failed ? t("console.chat.failed") : t("console.chat.sending") }),
    );
    if (failed && this.tracksFailed && entry.client_id) {
      const retry = el("button", { class: "msg-retry", text: t("console.chat.retry"), type: "button" });
      retry.addEventListener("click", () => {
        this.showError(null);
        this.chat.retry(entry.client_id).catch((error) => this.showError(error));
      });
      li.append(retry);
    }
    return li;
  }

  /** The "sending…" and "not sent" bubbles, after the delivered messages. */
  renderPending() {
    for (const node of this.log.querySelectorAll("li[data-pending]")) node.remove();
    const waiting = [...this.outbox, ...this.local].filter((entry) => !this.clientIds.has(entry.client_id));
    for (const entry of waiting) this.log.append(this.pendingNode(entry, false));
    for (const entry of this.failed) this.log.append(this.pendingNode(entry, true));
  }

  receipt(li, message) {
    const state = li.querySelector(".msg-state");
    if (!state) return;
    const read = message.seq <= this.shopperReadSeq;
    li.classList.toggle("msg-read", read);
    setText(state, read ? t("console.chat.read") : t("console.chat.sent"));
  }

  renderReceipts() {
    for (const li of this.log.querySelectorAll("li.msg-mine[data-seq]")) {
      const message = this.messages.get(Number(li.dataset.seq));
      if (message) this.receipt(li, message);
    }
  }

  /** Redraw every message (after a language change). */
  render() {
    const nodes = [...this.messages.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((message) => this.messageNode(message));
    this.log.replaceChildren(...nodes);
    this.renderPending();
    setText(this.typingLine, this.shopperIsTyping ? t("console.chat.typing") : "");
    this.fillProducts();
  }
}
