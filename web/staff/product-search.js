// @ts-check
// The console's product picker: a search box over the admin-managed catalogue (issue 19 item
// 5). The server searches (GET /api/v1/products?q=…: SKU, English or Japanese name) and pages
// (?after=<last SKU>), so a catalogue of thousands never comes to the browser whole. The box
// is an ARIA 1.2 combobox: typing searches, ↓/↑ walk the results, Enter picks one (or, on
// "More products", reads the next page), Escape closes the list, then clears the box. The list
// opens upwards, over the chat, so the workspace's layout does not move. The card itself is
// sent as its SKU alone (product-cards.js); the server fills in the rest.
import { t } from "/shared/i18n.js";
import { api } from "/shared/staff-api.js";
import { el, part, uid } from "/shared/dom.js";
import { productLabel } from "/staff/product-cards.js";

const PAGE = 20;
const TYPING_PAUSE_MS = 200;

export class ProductSearch {
  /** root: the .product-picker of one workspace (input[data-part=product], its listbox). */
  constructor(root) {
    this.root = root;
    this.input = part(root, "product");
    this.list = part(root, "product-list");
    this.status = part(root, "product-status");
    this.prefix = uid("product");
    this.results = [];
    this.more = false; // a full page came: there may be more after the last SKU
    this.active = -1; // index into the options (results, then "more")
    this.query = null; // the query the results are for
    this.chosen = null;
    this.serial = 0; // answers to older searches are dropped
    this.timer = null;
    this.error = false;

    this.input.addEventListener("input", () => {
      this.chosen = null;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), TYPING_PAUSE_MS);
    });
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("click", () => this.open());
    this.input.addEventListener("blur", () => this.close());
    // A press on an option must not blur the box first (that would close the list).
    this.list.addEventListener("mousedown", (event) => event.preventDefault());
    this.list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.pick(Number(option.dataset.index));
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Open the list, searching for what is typed if the results are for something else. */
  async open() {
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    if (this.query !== this.text()) await this.search();
    else this.render();
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
  }

  text() {
    return this.input.value.trim();
  }

  /** The first page for what is typed (an empty box: the catalogue from its first SKU). */
  async search() {
    clearTimeout(this.timer);
    const query = this.text();
    const page = await this.fetch(query, null);
    if (!page) return;
    this.query = query;
    this.results = page;
    this.more = page.length === PAGE;
    this.active = -1;
    if (document.activeElement === this.input && !this.isOpen) {
      this.list.hidden = false;
      this.input.setAttribute("aria-expanded", "true");
    }
    this.render();
    this.announce();
  }

  /** The next page after the last result; the first new one becomes active. */
  async loadMore() {
    const last = this.results.at(-1);
    const page = last ? await this.fetch(this.query, last.sku) : null;
    if (!page) return;
    const first = this.results.length;
    this.results = [...this.results, ...page];
    this.more = page.length === PAGE;
    this.active = page.length ? first : this.results.length - 1;
    this.render();
    this.announce();
  }

  async fetch(query, after) {
    const serial = ++this.serial;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (query) params.set("q", query);
    if (after) params.set("after", after);
    const result = await api("GET", `/api/v1/products?${params}`);
    if (serial !== this.serial) return null; // a newer search is under way
    this.error = !result.ok;
    if (!result.ok) {
      this.results = [];
      this.more = false;
      this.render();
      this.announce();
      return null;
    }
    return result.data;
  }

  optionCount() {
    return this.results.length + (this.more ? 1 : 0);
  }

  async key(event) {
    if (event.isComposing) return; // the IME's own Enter and arrows
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!this.isOpen) {
        this.open();
        return;
      }
      // Typed faster than the pause: the results must be for what the box says first.
      if (this.query !== this.text()) await this.search();
      const count = this.optionCount();
      if (!count) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = this.active < 0 ? (step > 0 ? 0 : count - 1) : (this.active + step + count) % count;
      this.render();
    } else if (event.key === "Enter") {
      if (this.isOpen && this.active >= 0) {
        event.preventDefault();
        this.pick(this.active);
      }
    } else if (event.key === "Escape") {
      if (this.isOpen) {
        event.preventDefault();
        this.close();
      } else if (this.input.value) {
        event.preventDefault();
        this.input.value = "";
        this.chosen = null;
      }
    }
  }

  pick(index) {
    if (index === this.results.length && this.more) {
      this.loadMore();
      return;
    }
    const product = this.results[index];
    if (!product) return;
    this.chosen = product;
    this.input.value = productLabel(product);
    this.query = null; // the box now holds a label, not a search
    this.close();
    this.status.textContent = t("console.product.chosen", { name: productLabel(product) });
  }

  /** After the card went out: an empty box for the next search. */
  reset() {
    this.chosen = null;
    this.input.value = "";
    this.query = null;
    this.status.textContent = "";
  }

  optionId(index) {
    return `${this.prefix}-${index}`;
  }

  render() {
    const options = this.results.map((product, index) =>
      el("li", {
        class: "product-option",
         id: this.optionId(index), role: "option", "aria-selected": String(index === this.active), "data-index": index ,
      }, [
        el("span", { class: "product-option-name", text: productLabel(product) }),
        el("span", { class: "product-option-sku", text: product.sku }),
      ]),
    );
    if (this.more) {
      const index = this.results.length;
      options.push(
        el("li", { class: "product-option product-option-more", text: t("console.product.more"), id: this.optionId(index), role: "option", "aria-selected": String(index === this.active), "data-index": index }),
      );
    }
    if (!options.length) {
      const text = this.error ? t("console.product.error") : t("console.product.none", { query: this.query ?? "" });
      options.push(el("li", { class: "product-option-empty", text, role: "option", "aria-disabled": "true", "aria-selected": "false" }));
    }
    this.list.replaceChildren(...options);
    this.list.dataset.query = this.query ?? ""; // what the shown results are for
    if (this.active >= 0 && this.isOpen) {
      const node = this.list.querySelector(`#${CSS.escape(this.optionId(this.active))}`);
      this.input.setAttribute("aria-activedescendant", node.id);
      node.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  announce() {
    let text;
    if (this.error) text = t("console.product.error");
    else if (!this.results.length) text = t("console.product.none", { query: this.query ?? "" });
    else text = t(this.more ? "console.product.found_more" : "console.product.found", { count: this.results.length });
    this.status.textContent = text;
  }

  /** Language changed: the labels of the results and of the chosen product. */
  relabel() {
    if (this.chosen) this.input.value = productLabel(this.chosen);
    this.render();
  }
}
