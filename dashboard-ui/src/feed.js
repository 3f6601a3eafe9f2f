// The live feed: one row per finished request, pushed by /logs/stream (SSE), newest
// on top. The table never holds more than maxRows rows, so a busy proxy cannot make
// the tab slow; while paused, only the newest maxRows records are kept aside.
import { fetchJson } from "./api.js";
import { el } from "./dom.js";
import { formatClock, formatCount, formatMs, formatUsd, textOrDash } from "./format.js";

export class LiveFeed {
  constructor({ url, statusUrl, tbody, pauseButton, statusLabel, maxRows, onClosed }) {
    Object.assign(this, { url, statusUrl, tbody, pauseButton, statusLabel, maxRows, onClosed });
    this.paused = false;
    this.held = [];
    this.missed = 0;
    this.lastEventId = null;
    this.source = null;
    pauseButton.addEventListener("click", () => this.togglePause());
  }

  async connect() {
    this.close();
    this.setStatus("connecting…", "pending");
    if (this.lastEventId === null) this.lastEventId = await this.streamPosition();
    const source = new EventSource(this.resumeUrl());
    source.addEventListener("open", () => this.showConnected());
    source.addEventListener("record", (event) => {
      if (event.lastEventId) this.lastEventId = event.lastEventId;
      this.receive(event.data);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        this.setStatus("stopped", "bad");
        this.onClosed?.();
      } else {
        this.setStatus("reconnecting…", "pending");
      }
    });
    this.source = source;
  }

  // The browser resends the last id by itself only while the source lives: a source closed by an
  // answer that was not the stream (a 502 from a proxy in front, a 503) starts over here, from that id.
  resumeUrl() {
    if (this.lastEventId === null) return this.url;
    const url = new URL(this.url, window.location.href);
    url.searchParams.set("last_event_id", this.lastEventId);
    return url.toString();
  }

  // Where the stream stands before the first record came: the stream's own bare "id:" line sets the id a
  // live EventSource resends, but a page cannot read it, and a source closed before a record lost it.
  async streamPosition() {
    try {
      return (await fetchJson(this.statusUrl)).stream_last_event_id ?? null;
    } catch {
      return null; // the stream itself will say what is wrong
    }
  }

  close() {
    this.source?.close();
    this.source = null;
  }

  receive(data) {
    let record;
    try {
      record = JSON.parse(data);
    } catch {
      return; // a malformed event is dropped rather than breaking the feed
    }
    if (this.paused) {
      this.held.push(record);
      this.missed += 1;
      if (this.held.length > this.maxRows) this.held.shift();
      this.pauseButton.textContent = `Resume (${this.missed.toLocaleString()} new)`;
      return;
    }
    this.prepend([record]);
  }

  prepend(records) {
    this.tbody.querySelector("tr.empty")?.remove();
    const fragment = document.createDocumentFragment();
    for (const record of records.slice(-this.maxRows).reverse()) fragment.append(feedRow(record));
    this.tbody.prepend(fragment);
    while (this.tbody.rows.length > this.maxRows) this.tbody.lastElementChild.remove();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    if (this.paused) {
      this.pauseButton.textContent = "Resume";
      this.setStatus("paused", "pending");
      return;
    }
    this.pauseButton.textContent = "Pause";
    if (this.source?.readyState === EventSource.OPEN) this.showConnected();
    else this.setStatus("connecting…", "pending");
    const held = this.held;
    this.held = [];
    this.missed = 0;
    if (held.length) this.prepend(held);
  }

  showConnected() {
    if (this.paused) this.setStatus("paused", "pending");
    else this.setStatus("live", "ok");
  }

  setStatus(text, tone) {
    this.statusLabel.textContent = text;
    this.statusLabel.dataset.tone = tone;
  }
}

function feedRow(record) {
  // An error inside a 200 stream (an overload storm, a cut-off answer) is an error too.
  const failed = Number(record.status_code) >= 400 || Boolean(record.error_type);
  return el("tr", { className: failed ? "failed" : "", dataset: { requestId: textOrDash(record.request_id), clientRequestId: textOrDash(record.client_request_id) } }, [
    el("td", { className: "time", text: formatClock(record.timestamp) }),
    el("td", { className: `status ${failed ? "bad" : "ok"}`, text: textOrDash(record.status_code) }),
    el("td", { className: "name", text: textOrDash(record.service_type) }),
    el("td", { className: "name model", text: textOrDash(record.model), title: textOrDash(record.model) }),
    el("td", {
      className: "name",
      text: textOrDash(record.endpoint) + (record.streaming ? " ⇶" : ""),
      title: textOrDash(record.path),
    }),
    el("td", { className: "num", text: formatMs(record.duration_ms) }),
    el("td", { className: "num", text: formatCount(record.tokens_input) }),
    el("td", { className: "num", text: formatCount(record.tokens_output) }),
    el("td", { className: "num", text: formatUsd(record.cost_usd) }),
    el("td", { className: "name", text: textOrDash(record.error_type) }),
    el("td", { className: "agent", text: textOrDash(record.user_agent), title: textOrDash(record.user_agent) }),
  ]);
}
