// @ts-check
/*
 * livedesk widget loader — the one file a shop's page includes:
 *
 *   <script src="https://HOST/widget.js" data-shop-customer-id="…" data-shop-signature="…"
 *           data-lang="ja|en" async></script>
 *
 * It adds a floating "talk to an advisor" button that opens a panel with HOST/widget/ in an
 * iframe. Everything it draws lives in one Shadow DOM under one host element, styled by
 * HOST/widget/launcher.css (no inline styles, so a shop's strict CSP needs no 'unsafe-inline'),
 * and nothing is left on window. The signed customer id and the language travel in the
 * iframe URL's fragment, which browsers never send to a server (so it lands in no log).
 *
 * A classic script on purpose: document.currentScript (which says where HOST is) is only set
 * for classic scripts, and the shop should not need type="module".
 */
(function () {
  "use strict";

  var script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  if (!script || !script.src) return;
  // Included twice (two snippets, a tag manager replaying): one launcher is enough.
  if (document.querySelector("[data-livedesk-widget-host]")) return;

  var HOST = new URL(script.src, location.href).origin;
  var DATA = script.dataset;
  var LANGUAGES = ["ja", "en"];

  // The launcher runs on the shop's origin and cannot read HOST's i18n tables without CORS,
  // so its few words live here. The same keys and texts are in /widget/i18n/{en,ja}.json
  // (tests/e2e/test_shopper_pages.py keeps the two in step).
  var TEXT = {
    en: {
      "launcher.open": "Talk to an advisor",
      "launcher.resume": "Back to your consultation",
      "launcher.panel_label": "Talk to an advisor",
      "launcher.close": "Close",
      "launcher.frame_title": "Talk to an advisor — video, voice or chat",
    },
    ja: {
      "launcher.open": "アドバイザーに相談",
      "launcher.resume": "相談に戻る",
      "launcher.panel_label": "アドバイザーに相談",
      "launcher.close": "閉じる",
      "launcher.frame_title": "アドバイザーに相談 — ビデオ・音声・チャット",
    },
  };

  function pickLanguage() {
    var candidates = [DATA.lang, document.documentElement.lang].concat(navigator.languages || []);
    for (var i = 0; i < candidates.length; i++) {
      var base = String(candidates[i] || "").toLowerCase().split("-")[0];
      if (LANGUAGES.indexOf(base) >= 0) return base;
    }
    return "en";
  }

  var lang = pickLanguage();
  var state = "idle"; // what the widget page last told us: idle | queued | in_consultation
  var frame = null;
  var opener = null;

  function t(key) {
    return (TEXT[lang] || TEXT.en)[key];
  }

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    return node;
  }

  // ---- the DOM: one host element, everything else inside its shadow root
  var host = el("div", "", { "data-livedesk-widget-host": "" });
  // Hidden until launcher.css has loaded, so the shop never sees an unstyled button.
  host.style.display = "none";
  var root = host.attachShadow({ mode: "open" });

  var sheet = el("link", "", { rel: "stylesheet", href: HOST + "/widget/launcher.css" });
  sheet.addEventListener("load", function () {
    host.style.display = "";
  });
  sheet.addEventListener("error", function () {
    // Usually the shop's Content-Security-Policy (style-src) not listing HOST: a plain button
    // still beats none at all.
    console.warn("livedesk: " + HOST + "/widget/launcher.css could not be loaded (check style-src)");
    host.style.display = "";
  });
  root.appendChild(sheet);

  function makeButton(className) {
    var button = el("button", className, { type: "button", "aria-expanded": "false" });
    var icon = el("span", "ld-launcher-icon", { "aria-hidden": "true" });
    // A speech bubble with a camera lens, drawn by the stylesheet: no SVG markup to sanitise.
    icon.appendChild(el("span", "ld-launcher-lens"));
    button.appendChild(icon);
    button.appendChild(el("span", "ld-launcher-label"));
    button.appendChild(el("span", "ld-launcher-dot", { "aria-hidden": "true" }));
    button.addEventListener("click", function () {
      if (isOpen()) closePanel();
      else open(button);
    });
    return button;
  }

  var launcher = makeButton("ld-launcher");
  launcher.setAttribute("aria-controls", "ld-panel");
  var buttons = [launcher];

  var panel = el("div", "ld-panel", { id: "ld-panel", role: "dialog", hidden: "" });
  var head = el("div", "ld-panel-head");
  var title = el("p", "ld-panel-title", { id: "ld-panel-title" });
  panel.setAttribute("aria-labelledby", "ld-panel-title");
  var close = el("button", "ld-close", { type: "button" });
  close.appendChild(el("span", "ld-close-icon", { "aria-hidden": "true" }));
  head.appendChild(title);
  head.appendChild(close);
  var body = el("div", "ld-panel-body");
  panel.appendChild(head);
  panel.appendChild(body);

  root.appendChild(panel);
  root.appendChild(launcher);

  function render() {
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].querySelector(".ld-launcher-label").textContent = t(
        state === "idle" ? "launcher.open" : "launcher.resume",
      );
      buttons[i].querySelector(".ld-launcher-dot").hidden = state === "idle";
    }
    title.textContent = t("launcher.panel_label");
    close.setAttribute("aria-label", t("launcher.close"));
    close.setAttribute("title", t("launcher.close"));
    if (frame) frame.title = t("launcher.frame_title");
    host.setAttribute("lang", lang);
  }

  function frameUrl() {
    var params = new URLSearchParams();
    params.set("embed", "1");
    params.set("lang", lang);
    params.set("origin", location.origin);
    if (DATA.shopCustomerId) {
      params.set("scid", DATA.shopCustomerId);
      params.set("ssig", DATA.shopSignature || "");
    }
    return HOST + "/widget/#" + params.toString();
  }

  function ensureFrame() {
    if (frame) return;
    // Created on first open only: a page view that never opens the widget starts no visit.
    frame = el("iframe", "ld-frame", {
      src: frameUrl(),
      // Camera, microphone and screen share for HOST only (the frame's own origin).
      allow: "camera; microphone; display-capture; autoplay; fullscreen",
      referrerpolicy: "origin",
    });
    body.appendChild(frame);
    render();
  }

  function isOpen() {
    return !panel.hidden;
  }

  function setExpanded(value) {
    for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("aria-expanded", String(value));
  }

  function open(from) {
    ensureFrame();
    opener = from || launcher;
    panel.hidden = false;
    host.setAttribute("data-open", "");
    setExpanded(true);
    // Focus the frame so keyboard users continue inside the widget.
    frame.focus();
    post({ type: "livedesk:focus" });
  }

  function closePanel() {
    if (!isOpen()) return;
    // The iframe stays loaded: a shopper waiting in the queue (or in a call) keeps their place.
    panel.hidden = true;
    host.removeAttribute("data-open");
    setExpanded(false);
    // Back to the button that opened it (the panel is not modal, the shop stays usable).
    (opener && opener.isConnected ? opener : launcher).focus();
  }

  function post(message) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(message, HOST);
  }

  close.addEventListener("click", closePanel);
  // Escape while focus is on the launcher or the panel's own buttons; inside the iframe the
  // widget page catches it and asks us to close (keys do not cross frame boundaries).
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen()) {
      event.stopPropagation();
      closePanel();
    }
  });

  window.addEventListener("message", function (event) {
    if (!frame || event.source !== frame.contentWindow || event.origin !== HOST) return;
    var data = event.data || {};
    if (data.type === "livedesk:close") closePanel();
    else if (data.type === "livedesk:state" && typeof data.state === "string") {
      state = data.state;
      render();
    } else if (data.type === "livedesk:lang" && LANGUAGES.indexOf(data.lang) >= 0) {
      lang = data.lang;
      render();
    }
  });

  // Without data-lang the widget follows the shop page's language (<html lang>), switched or not.
  if (!DATA.lang) {
    new MutationObserver(function () {
      var next = pickLanguage();
      if (next !== lang) {
        lang = next;
        render();
        post({ type: "livedesk:lang", lang: lang });
      }
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  // A shop may also give the widget a place in its page (data-target="#id", or an element with
  // id "livedesk-widget"): an inline button goes there, in its own shadow root, which also
  // hides the placeholder the shop put in that element.
  function mountInline() {
    var target = document.querySelector(DATA.target || "#livedesk-widget");
    if (!target || target.shadowRoot) return;
    var inlineRoot;
    try {
      inlineRoot = target.attachShadow({ mode: "open" });
    } catch (error) {
      return; // an element that cannot host a shadow root (an <a>, an <input>…): skip it
    }
    inlineRoot.appendChild(el("link", "", { rel: "stylesheet", href: HOST + "/widget/launcher.css" }));
    var inline = makeButton("ld-inline");
    inlineRoot.appendChild(inline);
    buttons.push(inline);
  }

  function mount() {
    mountInline();
    document.body.appendChild(host);
    render();
  }
  // An async script can run before the page is parsed: wait for the place it may mount in.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
