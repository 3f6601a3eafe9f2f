// Number and time formatting for tiles, tables and the feed. Every function takes
// a value that may be null/undefined (no data) and returns a display string.

const DASH = "–";
const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const centsFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
// Two significant digits, written out in full: $0.00000015, never $1.5e-7.
const smallFormat = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 2 });

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
  return `${percent.toFixed(percent > 0 && percent < 10 ? 2 : 1)}%`;
}

export function formatUsd(value) {
  if (!isNumber(value)) return DASH;
  if (value === 0) return "$0.00";
  // Single requests cost fractions of a cent: keep two significant digits rather than show $0.0000.
  if (Math.abs(value) < 0.01) return `$${smallFormat.format(value)}`;
  if (Math.abs(value) >= 100000) return `$${compactFormat.format(value)}`;
  return `$${centsFormat.format(value)}`;
}

/** "3 requests without a known cost", or "" when every request has one (or there are none). */
export function unpricedNote(unpricedRequests) {
  if (!isNumber(unpricedRequests) || unpricedRequests <= 0) return "";
  const noun = unpricedRequests === 1 ? "request" : "requests";
  return `${formatCount(unpricedRequests)} ${noun} without a known cost`;
}

export function formatMs(value) {
  if (!isNumber(value)) return DASH;
  if (value >= 10000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  return `${Math.round(value)} ms`;
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
