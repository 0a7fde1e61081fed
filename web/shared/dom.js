// @ts-check
// The DOM helpers every page builds with. Elements are made from properties, never from HTML
// strings, so text from the server or a shopper cannot become markup.
import { applyTranslations } from "/shared/i18n.js";

/**
 * What el() accepts as properties: "class", "text" (textContent), "style" (cssText), "value"
 * (on a select or textarea the property, set once the children are in, since a select has no
 * value attribute; elsewhere the attribute, so a form reset returns to it), "on<event>" (a
 * listener), anything else an
 * attribute. true gives an empty attribute; false, null and undefined leave it out (write
 * "false" as a string for ARIA states such as aria-pressed="false").
 * @typedef {Record<string, any>} Props
 */

/**
 * A child of el(): a node or text; arrays are flattened (so a list of rows can be passed as
 * one argument); null, undefined and false are skipped (so `cond && node` reads naturally).
 * @typedef {Node | string | number | null | undefined | false | any[]} Child
 */

/**
 * Make an element. The one element builder of web/: `el("li", { class: "row", text }, child…)`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const valueIsProperty = node instanceof HTMLSelectElement || node instanceof HTMLTextAreaElement;
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = String(value);
    else if (name === "text") node.textContent = String(value);
    else if (name === "style") node.style.cssText = String(value);
    else if (name === "value" && valueIsProperty) continue;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  if (valueIsProperty && props?.value !== undefined && props.value !== null && props.value !== false) {
    /** @type {HTMLSelectElement | HTMLTextAreaElement} */ (node).value = String(props.value);
  }
  return node;
}

/** @param {Element} node @param {Child[]} children */
function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(typeof child === "number" ? String(child) : child);
  }
}

/**
 * The element with this id. Typed loosely on purpose: pages look up their own markup by id and
 * use it as the element they know it is (an input's value, a dialog's showModal…).
 * @param {string} id
 * @returns {any}
 */
export function $(id) {
  return document.getElementById(id);
}

const ID_ATTRS = ["id", "for", "aria-labelledby", "aria-describedby", "aria-controls", "list"];
let counter = 0;

/** A fresh id, unique on the page. */
export function uid(base = "x") {
  counter += 1;
  return `${base}-${counter}`;
}

/**
 * Clone <template id=name>. Ids written "__thing" (and the attributes pointing at them) become
 * "<prefix>-thing", so every copy keeps its labels tied to its own controls.
 * @param {string} name
 * @param {string} prefix
 * @returns {any} the template's first element (its parts are looked up with part())
 */
export function instantiate(name, prefix) {
  const template = /** @type {HTMLTemplateElement} */ (document.getElementById(name));
  const fragment = /** @type {DocumentFragment} */ (template.content.cloneNode(true));
  for (const node of fragment.querySelectorAll("*")) {
    for (const attr of ID_ATTRS) {
      const value = node.getAttribute(attr);
      if (value && value.includes("__")) node.setAttribute(attr, value.replaceAll("__", `${prefix}-`));
    }
  }
  applyTranslations(fragment);
  return fragment.firstElementChild;
}

/**
 * The first element inside root with data-part=name.
 * @param {ParentNode} root
 * @param {string} name
 * @returns {any}
 */
export function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

/**
 * Set text only when it changed (keeps screen readers and selection calm on every tick).
 * @param {Node | null | undefined} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}
