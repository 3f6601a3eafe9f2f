// What the page says instead of empty charts when something it needs is switched off.
import { byId, show } from "./dom.js";

const ENDPOINTS_OFF = {
  title: "The logs API is off, so there is nothing to show.",
  code: "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true",
  text: "Set this and restart ccproxy: the dashboard reads /logs/analytics and /logs/stream.",
};

const COLLECTION_OFF = {
  title: "Access logs are not being stored, so there is no history to chart.",
  code: "OBSERVABILITY__LOGS_COLLECTION_ENABLED=true",
  text: "Set this and restart ccproxy. The live feed below still shows requests as they finish.",
};

// A 503: the store is missing or did not answer (the history may be there); the server says which.
const NO_HISTORY = {
  title: "ccproxy could not read its stored history.",
  code: "",
  text: "",
};

const AUTH_NEEDED = {
  title: "ccproxy refused the dashboard's requests.",
  code: "/dashboard?token=<SECURITY__AUTH_TOKEN>",
  text: "This server needs its auth token: open the dashboard again with it once, as above.",
};

/** The notice to show at start-up from the settings the server embedded, or null. */
export function noticeFromSettings(config) {
  if (!config.logs_endpoints_enabled) return ENDPOINTS_OFF;
  if (!config.logs_collection_enabled) return COLLECTION_OFF;
  return null;
}

/** The notice for a failed analytics call; the server's own words win when it gives them. */
export function noticeFromError(error) {
  if (error.kind === "endpoints_off") return ENDPOINTS_OFF;
  if (error.kind === "auth") return AUTH_NEEDED;
  if (error.kind === "collection_off") return { ...NO_HISTORY, text: error.message };
  return null;
}

export function showNotice(notice) {
  const box = byId("notice");
  show(box, Boolean(notice));
  if (!notice) return;
  byId("notice-title").textContent = notice.title;
  byId("notice-code").textContent = notice.code;
  show(byId("notice-code").parentElement, Boolean(notice.code));
  byId("notice-text").textContent = notice.text;
}
