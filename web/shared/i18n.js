// @ts-check
// All UI text goes through t(key): one table per language in /shared/i18n/<lang>.json.
// The language follows the browser (navigator.languages) until the person picks one with a
// language switch; that choice is kept in localStorage.
//
// Markup says what to translate with attributes:
//   data-i18n="key"                      → the element's text
//   data-i18n-attr="attr:key;attr2:key2" → attributes (placeholder, aria-label, alt, content…)
//   data-lang-switch                     → a container whose buttons[data-lang] switch language

export const LANGUAGES = ["ja", "en"];
const FALLBACK = "en";
const STORAGE_KEY = "livedesk.lang";

const tables = new Map();
const listeners = new Set();
let current = FALLBACK;

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage can be disabled; the browser's language still works
  }
}

export function detectLanguage() {
  const saved = stored();
  if (LANGUAGES.includes(saved)) return saved;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return FALLBACK;
}

const loading = new Map();
// Each page area keeps its own table beside its files (/call/i18n/ja.json …), merged over the
// shared one, so areas never edit each other's strings.
const areas = ["/shared"];

function fetchTable(area, lang) {
  return fetch(`${area}/i18n/${lang}.json`, { credentials: "same-origin" }).then((response) => {
    if (!response.ok) throw new Error(`i18n table ${area} ${lang}: HTTP ${response.status}`);
    return response.json();
  });
}

function load(lang) {
  // One request per table, however many callers ask for it at once.
  if (!loading.has(lang)) {
    const request = Promise.all(areas.map((area) => fetchTable(area, lang))).then((parts) =>
      tables.set(lang, Object.assign({}, ...parts)),
    );
    request.catch(() => loading.delete(lang)); // a later call may try again
    loading.set(lang, request);
  }
  return loading.get(lang);
}

export function language() {
  return current;
}

/** The text for key in the current language; {name} placeholders are filled from params. */
export function t(key, params = {}) {
  const text = tables.get(current)?.[key] ?? tables.get(FALLBACK)?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** @param {ParentNode} [root] */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll(/** @type {"div"} */ ("[data-i18n]"))) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll(/** @type {"div"} */ ("[data-i18n-attr]"))) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
  for (const button of root.querySelectorAll(/** @type {"button"} */ ("[data-lang-switch] button[data-lang]"))) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === current));
  }
}

export async function setLanguage(lang, { persist = true } = {}) {
  if (!LANGUAGES.includes(lang)) lang = FALLBACK;
  await Promise.all([load(FALLBACK), load(lang)]);
  current = lang;
  if (persist) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // not persisted; the switch still works for this page
    }
  }
  document.documentElement.lang = lang;
  applyTranslations(document);
  for (const listener of listeners) listener(lang);
}

/** Call fn(lang) after every language change (to re-render text built in script). */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Format an amount given in the currency's minor unit (JPY has none: 4400 is ¥4,400). */
export function formatMoney(minorAmount, currency) {
  const format = new Intl.NumberFormat(current === "ja" ? "ja-JP" : "en-GB", {
    style: "currency",
    currency,
    currencyDisplay: "narrowSymbol",
  });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minorAmount / 10 ** digits);
}

/**
 * Load the tables, translate the page and wire the language switches. ``extraAreas`` names
 * page areas with their own tables, e.g. initI18n({ extraAreas: ["/call"] }).
 */
export async function initI18n({ extraAreas = [] } = {}) {
  for (const area of extraAreas) if (!areas.includes(area)) areas.push(area);
  for (const group of document.querySelectorAll("[data-lang-switch]")) {
    group.addEventListener("click", (/** @type {any} */ event) => {
      const button = event.target.closest("button[data-lang]");
      if (button) setLanguage(button.dataset.lang);
    });
  }
  try {
    await setLanguage(detectLanguage(), { persist: false });
  } finally {
    // Shown even if a table failed to load: keys are better than a blank page.
    document.documentElement.classList.add("i18n-ready");
  }
}
