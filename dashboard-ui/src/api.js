// Talks to the logs API plugin. Same-origin requests carry the ccproxy_session_<port> cookie
// the server set when the page was opened with ?token=..., so no secret lives in JS.

/**
 * The windows the page offers: seconds of history, the bucket size asked for, and how many
 * refresh periods pass between polls (a week of hourly buckets barely moves in 5 seconds,
 * and costs the server the most to compute).
 */
export const WINDOWS = {
  "15m": { seconds: 15 * 60, bucket: "minute", periods: 1 },
  "1h": { seconds: 60 * 60, bucket: "minute", periods: 1 },
  "24h": { seconds: 24 * 60 * 60, bucket: "hour", periods: 3 },
  "7d": { seconds: 7 * 24 * 60 * 60, bucket: "hour", periods: 6 },
};

export const BUCKET_SECONDS = { minute: 60, hour: 3600, day: 86400 };

/** A failed API call, with a `kind` the page turns into advice. */
export class ApiError extends Error {
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** [start, end) of a window in whole Unix seconds. */
let clockOffsetSeconds = 0;

/**
 * The server's clock, as the page got it when it loaded: windows end at the server's now. The server wrote
 * it as its answer began, not when this script runs (a moment to seconds later, on a busy machine): measured
 * from now, the page's clock would run behind the server's by that delay, and the newest requests would
 * fall after the end of every window.
 */
export function setServerTime(serverSeconds) {
  if (!Number.isFinite(serverSeconds)) return;
  const [page] = performance.getEntriesByType?.("navigation") ?? [];
  const answeredAt = page?.responseStart ? (performance.timeOrigin + page.responseStart) / 1000 : Date.now() / 1000;
  clockOffsetSeconds = serverSeconds - answeredAt;
}

export function serverNow() {
  return Date.now() / 1000 + clockOffsetSeconds;
}

export function windowBounds(windowKey, nowSeconds = serverNow()) {
  // The API's end is exclusive and takes whole seconds: round up so this second's requests count.
  const end = Math.floor(nowSeconds) + 1;
  return [end - WINDOWS[windowKey].seconds, end];
}

/** `groupBy` (project, session, api_key, client, ...) adds the answer's `groups`, top 10 and "other". */
export function analyticsUrl(logsBase, windowKey, nowSeconds = serverNow(), groupBy = null) {
  const [start, end] = windowBounds(windowKey, nowSeconds);
  const params = new URLSearchParams({
    start_time: String(start),
    end_time: String(end),
    bucket: WINDOWS[windowKey].bucket,
  });
  if (groupBy) {
    params.set("group_by", groupBy);
    params.set("top", "10");
  }
  return `${logsBase}/analytics?${params}`;
}

export async function fetchJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (error) {
    throw new ApiError("offline", `ccproxy did not answer (${error.message}); retrying`, 0);
  }
  if (response.ok) return response.json();
  throw new ApiError(kindOf(response.status), await detailOf(response), response.status);
}

function kindOf(status) {
  if (status === 404) return "endpoints_off";
  if (status === 503) return "collection_off";
  if (status === 401 || status === 403) return "auth";
  return "error";
}

async function detailOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail ?? body);
  } catch {
    return `HTTP ${response.status}`;
  }
}
