// Number and time formatting for tiles, tables and the feed. Every function takes
// a value that may be null/undefined (no data) and returns a display string.

const DASH = "–";
// The reader's own way of writing numbers (the browser's locale), as for dates: 2,714 reads as 2.714 in Germany.
const LOCALE = undefined;
const USD = { style: "currency", currency: "USD" };
const integerFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const compactFormat = new Intl.NumberFormat(LOCALE, { notation: "compact", maximumFractionDigits: 1 });
const centsFormat = new Intl.NumberFormat(LOCALE, USD);
const compactUsdFormat = new Intl.NumberFormat(LOCALE, { ...USD, notation: "compact", maximumFractionDigits: 1 });
// Two significant digits, written out in full: $0.00000015, never $1.5e-7.
const smallUsdFormat = new Intl.NumberFormat(LOCALE, { ...USD, maximumSignificantDigits: 2 });
const percentFormats = [1, 2].map(
  (digits) => new Intl.NumberFormat(LOCALE, { style: "percent", minimumFractionDigits: digits, maximumFractionDigits: digits }),
);
const secondsFormats = [1, 2].map(
  (digits) => new Intl.NumberFormat(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits }),
);

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function formatCount(value) {
  if (!isNumber(value)) return DASH;
  return Math.abs(value) >= 100000 ? compactFormat.format(value) : integerFormat.format(value);
}

export function formatPercent(ratio) {
  if (!isNumber(ratio)) return DASH;
  const percent = ratio * 100;
  // A rate between none and all never reads as either: 1 error in 30,000 requests is not "0.00%".
  if (percent > 0 && percent < 0.005) return "<" + percentFormats[1].format(0.0001);
  if (percent >= 99.95 && percent < 100) return ">" + percentFormats[0].format(0.999);
  return percentFormats[percent > 0 && percent < 10 ? 1 : 0].format(ratio);
}

export function formatUsd(value) {
  if (!isNumber(value)) return DASH;
  if (value === 0) return centsFormat.format(0);
  // Single requests cost fractions of a cent: keep two significant digits rather than show $0.0000.
  if (Math.abs(value) < 0.01) return smallUsdFormat.format(value);
  if (Math.abs(value) >= 100000) return compactUsdFormat.format(value);
  return centsFormat.format(value);
}

/** "3 requests without a known cost", or "" when every request has one (or there are none). */
export function unpricedNote(unpricedRequests) {
  if (!isNumber(unpricedRequests) || unpricedRequests <= 0) return "";
  const noun = unpricedRequests === 1 ? "request" : "requests";
  return `${formatCount(unpricedRequests)} ${noun} without a known cost`;
}

export function formatMs(value) {
  if (!isNumber(value)) return DASH;
  if (value >= 10000) return `${secondsFormats[0].format(value / 1000)} s`;
  if (value >= 1000) return `${secondsFormats[1].format(value / 1000)} s`;
  return `${integerFormat.format(Math.round(value))} ms`;
}

/** Accepts unix seconds, unix milliseconds or an ISO string; returns unix seconds or null. */
export function toUnixSeconds(value) {
  if (isNumber(value)) return value > 1e12 ? value / 1000 : value;
  if (typeof value === "string") {
    // A naive ISO timestamp from the server is UTC; without a zone Date.parse would read local time.
    const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(value);
    const millis = Date.parse(hasZone ? value : `${value}Z`);
    return Number.isNaN(millis) ? null : millis / 1000;
  }
  return null;
}

export function formatClock(value) {
  const seconds = toUnixSeconds(value);
  if (seconds === null) return DASH;
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

export function formatDateTime(value) {
  const seconds = toUnixSeconds(value);
  if (seconds === null) return DASH;
  const date = new Date(seconds * 1000);
  return `${date.toLocaleDateString()} ${date.toLocaleTimeString([], { hour12: false })}`;
}

export function textOrDash(value) {
  return value === null || value === undefined || value === "" ? DASH : String(value);
}
