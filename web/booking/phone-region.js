// @ts-check
// The country a phone number typed without "+code" belongs to: "07911 123456" is a UK mobile
// and no Japanese number. The booking form sends it as contact.phone_region; the server parses
// the number with it (phonenumbers). It defaults from the shopper's time zone (what the browser
// reports is where they are), then their browser's language region, then Japan.
import { language } from "/shared/i18n.js";
import { CALLING_CODES, ZONE_REGIONS } from "/booking/phone-region-data.js";
import { zone } from "/booking/util.js";
import { el } from "/shared/dom.js";

const FALLBACK = "JP";
const codes = new Map(CALLING_CODES.split(" ").map((entry) => [entry.slice(0, 2), entry.slice(2)]));

function zoneMap() {
  const map = new Map();
  for (const entry of ZONE_REGIONS.split(" ")) {
    const [region, zones] = entry.split(":");
    for (const name of zones.split(",")) map.set(name, region);
  }
  return map;
}

/** The region of an IANA zone ("Europe/London" → "GB"), or null. */
export function regionOfZone(name) {
  return zoneMap().get(name) ?? null;
}

function localeRegion() {
  for (const tag of navigator.languages ?? [navigator.language]) {
    try {
      const region = new Intl.Locale(tag).region;
      if (region && codes.has(region)) return region;
    } catch {
      // a malformed language tag says nothing about the region
    }
  }
  return null;
}

export function defaultRegion() {
  return regionOfZone(zone) ?? localeRegion() ?? FALLBACK;
}

/** Fill the select with every region, named in the page's language with its calling code. */
export function fillRegions(select, selected = select.value || defaultRegion()) {
  let names = null;
  try {
    names = new Intl.DisplayNames([language()], { type: "region" });
  } catch {
    // no DisplayNames: the codes themselves
  }
  const collator = new Intl.Collator(language());
  const options = [...codes]
    .map(([region, code]) => ({ region, label: `${names?.of(region) ?? region} (+${code})` }))
    .sort((a, b) => collator.compare(a.label, b.label));
  select.replaceChildren(
    ...options.map(({ region, label }) => el("option", { value: region, selected: region === selected }, label)),
  );
  select.value = selected;
}
