// @ts-check
// Prices as people type them ("1200" yen, "12.34" dollars) into minor units, the API's unit.

/** "12.34" in a currency → minor units (1234), or null when it is not a price. */
export function toMinor(text, currency) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
    .maximumFractionDigits;
  const clean = String(text).trim().replaceAll(",", "");
  const pattern = digits ? new RegExp(`^\\d+(\\.\\d{1,${digits}})?$`) : /^\d+$/;
  if (!pattern.test(clean)) return null;
  const [whole, fraction = ""] = clean.split(".");
  return Number(whole) * 10 ** digits + Number(fraction.padEnd(digits, "0") || 0);
}
