// Entry point: reads the settings the server embedded in the page, then keeps the
// tiles, charts and tables fresh by polling /logs/analytics, and the live feed
// fed by /logs/stream (SSE only, never polled).
import "./dashboard.css";
import { analyticsUrl, fetchJson, serverNow, setServerTime, windowBounds, WINDOWS } from "./api.js";
import { DIMENSIONS, renderGroups, Sessions, sessionsUrl } from "./attribution.js";
import { Charts } from "./charts.js";
import { byId, show } from "./dom.js";
import { LiveFeed } from "./feed.js";
import { noticeFromError, noticeFromSettings, showNotice } from "./notices.js";
import { renderBreakdown, renderRecentErrors } from "./tables.js";
import { Tiles } from "./tiles.js";

/** Set once, when the first analytics answer is on screen; benchmarks/bench_dashboard.py reads it. */
const TILES_RENDERED_MARK = "ccproxy:tiles-rendered";
// Records are in UTC; the page shows times in the browser's zone, and says which.
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "the browser's time zone";

function readConfig() {
  return JSON.parse(byId("ccproxy-config").textContent);
}

class Dashboard {
  constructor(config) {
    this.config = config;
    this.windowKey = Object.hasOwn(WINDOWS, location.hash.slice(1)) ? location.hash.slice(1) : "1h";
    this.sequence = 0;
    this.timer = null;
    this.tiles = new Tiles(byId("tiles"));
    this.charts = null;
    this.dimension = "project";
    this.sessions = new Sessions({
      logsBase: config.logs_base,
      tbody: byId("sessions"),
      detail: byId("session-detail"),
      detailTitle: byId("session-detail-title"),
      detailBody: byId("session-requests"),
    });
    this.setUpWindowButtons();
    this.setUpBreakdownPicker();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.refresh();
    });
    // A window named in the address bar (or by a link to this page) is the window shown.
    window.addEventListener("hashchange", () => {
      const key = location.hash.slice(1);
      if (Object.hasOwn(WINDOWS, key) && key !== this.windowKey) this.selectWindow(key);
    });
  }

  start() {
    this.refresh();
    // Built while the first analytics request is in flight: charts cost more to set up than to fill.
    this.charts = new Charts(byId("charts"));
  }

  setUpWindowButtons() {
    for (const button of document.querySelectorAll("[data-window]")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === this.windowKey));
      button.addEventListener("click", () => this.selectWindow(button.dataset.window));
    }
  }

  setUpBreakdownPicker() {
    const picker = byId("breakdown-dimension");
    picker.value = this.dimension;
    picker.addEventListener("change", () => {
      this.dimension = DIMENSIONS[picker.value] ? picker.value : "project";
      byId("breakdown-name").textContent = DIMENSIONS[this.dimension];
      this.refresh();
    });
    byId("session-close").addEventListener("click", () => {
      this.sessions.openId = null;
      show(byId("session-detail"), false);
    });
  }

  selectWindow(key) {
    this.windowKey = key;
    history.replaceState(null, "", `#${key}`);
    for (const button of document.querySelectorAll("[data-window]")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === key));
    }
    this.refresh();
  }

  schedule() {
    clearTimeout(this.timer);
    const seconds = this.config.refresh_seconds * WINDOWS[this.windowKey].periods;
    this.timer = setTimeout(() => this.refresh(), seconds * 1000);
  }

  async refresh() {
    const mine = ++this.sequence; // an answer for an older window must not overwrite a newer one
    this.schedule();
    if (document.hidden) return;
    try {
      const now = serverNow();
      const [start, end] = windowBounds(this.windowKey, now);
      const [analytics, sessions] = await Promise.all([
        fetchJson(analyticsUrl(this.config.logs_base, this.windowKey, now, this.dimension)),
        fetchJson(sessionsUrl(this.config.logs_base, start, end)),
      ]);
      if (mine === this.sequence) this.render(analytics, sessions, [start, end]);
    } catch (error) {
      if (mine === this.sequence) this.fail(error);
    }
  }

  render(analytics, sessions, bounds) {
    showNotice(null);
    show(byId("analytics"), true);
    this.tiles.update(analytics);
    this.charts.update(analytics);
    renderBreakdown(byId("by-model"), analytics.by_model, "model");
    renderBreakdown(byId("by-service"), analytics.by_service_type, "service_type");
    renderRecentErrors(byId("recent-errors"), analytics.recent_errors);
    renderGroups(byId("by-dimension"), analytics.groups);
    this.sessions.render(sessions, bounds);
    setRefreshLabel(`updated ${new Date().toLocaleTimeString([], { hour12: false })}, times in ${TIME_ZONE}`, "ok");
    if (document.body.dataset.state !== "ready") performance.mark(TILES_RENDERED_MARK);
    document.body.dataset.state = "ready";
  }

  fail(error) {
    const notice = noticeFromError(error);
    if (notice) {
      showNotice(notice);
      show(byId("analytics"), false);
    }
    setRefreshLabel(`refresh failed: ${error.message}`, "bad");
    document.body.dataset.state = "error";
  }
}

function setRefreshLabel(text, tone) {
  const label = byId("refresh-status");
  label.textContent = text;
  label.dataset.tone = tone;
}

function startFeed(config) {
  const feed = new LiveFeed({
    url: `${config.logs_base}/stream`,
    statusUrl: `${config.logs_base}/status`,
    tbody: byId("feed"),
    pauseButton: byId("pause"),
    statusLabel: byId("feed-status"),
    maxRows: config.feed_max_rows,
    onClosed: () => setTimeout(() => feed.connect(), config.refresh_seconds * 1000),
  });
  feed.connect();
}

function showDisabled(sectionIds, label) {
  for (const id of sectionIds) show(byId(id), false);
  show(document.querySelector(".window-picker"), false);
  setRefreshLabel(label, "pending");
  document.body.dataset.state = "disabled";
}

function main() {
  const config = readConfig();
  setServerTime(config.server_time);
  const notice = noticeFromSettings(config);
  showNotice(notice);
  if (!config.logs_endpoints_enabled) {
    showDisabled(["analytics", "live"], "logs API off");
    return;
  }
  startFeed(config);
  if (!config.logs_collection_enabled) {
    showDisabled(["analytics"], "history off");
    return;
  }
  new Dashboard(config).start();
}

main();
