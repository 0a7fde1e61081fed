// @ts-check
// Staff navigation: a row of links under every staff page's header to the pages the signed-in
// role may open — the console for advisors (the only role /staff/ opens it for), Customers for
// everyone, the board and Payments and refunds for supervisors and admins, Administration for
// admins — the current page marked. The server
// refuses what a role may not do anyway; this only saves people from typing addresses.
//
//   import { NAV_AREA, StaffNav } from "/shared/staffnav.js";
//   await initI18n({ extraAreas: [..., NAV_AREA] });
//   const nav = new StaffNav(document.getElementById("staff-nav"), "/supervisor/");
//   nav.show(me.role);   // after /api/v1/auth/me; nav.show(null) when signed out
//
// The advisor console puts the row inside its header (inline: not a row of its own, since at
// 1366×768 the workspace has no 45 px to give) and opens the other pages in a new tab (newTab:
// leaving the console would drop its call). A sub-page (/admin/catalogue.html) marks its
// section's link (/admin/) with aria-current="true" rather than "page".
import { onLanguageChange, t } from "/shared/i18n.js";

export const NAV_AREA = "/staffnav";
const ALL = ["advisor", "supervisor", "admin"];
const ADVISORS = ["advisor"];
const OVERSEERS = ["supervisor", "admin"];

export const PAGES = [
  { key: "console", href: "/staff/", roles: ADVISORS },
  { key: "board", href: "/supervisor/", roles: OVERSEERS },
  { key: "customers", href: "/history/", roles: ALL },
  { key: "refunds", href: "/payments/refunds.html", roles: OVERSEERS },
  { key: "admin", href: "/admin/", roles: ["admin"] },
];

/** The pages a role may open, in menu order. */
export function pagesFor(role) {
  return PAGES.filter((page) => page.roles.includes(role));
}

export class StaffNav {
  /** slot: an empty <nav> in the page's header; current: this page's address; wide: the
   * page's header spans the whole width (the board) instead of the centred column. */
  constructor(slot, current, { wide = false, inline = false, newTab = false } = {}) {
    this.slot = slot;
    this.current = current;
    this.newTab = newTab;
    this.role = null;
    if (!document.querySelector('link[href="/staffnav/nav.css"]')) {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = "/staffnav/nav.css";
      document.head.append(link);
    }
    slot.classList.add("staff-nav");
    slot.classList.toggle("staff-nav-wide", wide);
    slot.classList.toggle("staff-nav-inline", inline);
    slot.hidden = true;
    onLanguageChange(() => this.render());
  }

  show(role) {
    this.role = role ?? null;
    this.render();
  }

  render() {
    const pages = this.role ? pagesFor(this.role) : [];
    this.slot.hidden = pages.length === 0;
    this.slot.setAttribute("aria-label", t("nav.label"));
    const list = document.createElement("ul");
    for (const page of pages) {
      const link = document.createElement("a");
      link.href = page.href;
      link.textContent = t(`nav.${page.key}`);
      link.dataset.page = page.key;
      if (page.href === this.current) link.setAttribute("aria-current", "page");
      else if (page.href.endsWith("/") && this.current.startsWith(page.href)) link.setAttribute("aria-current", "true");
      else if (this.newTab) {
        link.target = "_blank";
        link.rel = "noopener";
        const hint = document.createElement("span");
        hint.className = "visually-hidden";
        hint.textContent = t("nav.new_tab");
        const mark = document.createElement("span");
        mark.className = "staff-nav-out";
        mark.setAttribute("aria-hidden", "true");
        mark.textContent = "↗";
        link.append(mark, hint);
      }
      const item = document.createElement("li");
      item.append(link);
      list.append(item);
    }
    this.slot.replaceChildren(list);
  }
}
