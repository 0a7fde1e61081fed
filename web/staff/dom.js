// Small DOM and formatting helpers of the advisor console.
import { applyTranslations, language } from "/shared/i18n.js";

const ID_ATTRS = ["id", "for", "aria-labelledby", "aria-describedby", "aria-controls", "list"];
let counter = 0;

/** A fresh id prefix, unique on the page. */
export function uid(base = "x") {
  counter += 1;
  return `${base}-${counter}`;
}

/**
 * Clone <template id=name>. Ids written "__thing" (and the attributes pointing at them) become
 * "<prefix>-thing", so every copy keeps its labels tied to its own controls.
 */
export function instantiate(name, prefix) {
  const template = document.getElementById(name);
  const fragment = template.content.cloneNode(true);
  for (const el of fragment.querySelectorAll("*")) {
    for (const attr of ID_ATTRS) {
      const value = el.getAttribute(attr);
      if (value && value.includes("__")) el.setAttribute(attr, value.replaceAll("__", `${prefix}-`));
    }
  }
  applyTranslations(fragment);
  return fragment.firstElementChild;
}

/** The first element inside root with data-part=name. */
export function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

export function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function locale() {
  return language() === "ja" ? "ja-JP" : "en-GB";
}

/** m:ss, or h:mm:ss from an hour on. */
export function duration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export function secondsSince(iso, now = Date.now()) {
  return iso ? (now - Date.parse(iso)) / 1000 : 0;
}

export function clockTime(iso) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

export function dateTime(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function shortDate(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(new Date(iso));
}

/** Set text only when it changed (keeps screen readers and selection calm on every tick). */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}
