// The summary tiles at the top. Each tile shows one number from /logs/analytics;
// its raw value is also kept in data-value so tests compare numbers, not formatting.
// A tile with a `note` shows a line under its number, empty when there is nothing to say.
import { el } from "./dom.js";
import { formatCount, formatMs, formatPercent, formatUsd, unpricedNote } from "./format.js";

/** The total cost, or null (shown "–") when requests were made and none has a known price. */
function knownCost(analytics) {
  const requests = analytics.totals?.requests ?? 0;
  const unpriced = analytics.cost?.unpriced_requests ?? 0;
  return requests > 0 && unpriced >= requests ? null : analytics.cost?.total_usd;
}

const TILES = [
  { key: "requests", label: "Requests", pick: (a) => a.totals?.requests, format: formatCount },
  // A rate of no requests is no figure ("–"), not 0.0%.
  { key: "error_rate", label: "Error rate", pick: (a) => (a.totals?.requests ? a.totals.error_rate : null), format: formatPercent },
  { key: "tokens_input", label: "Input tokens", pick: (a) => a.tokens?.input, format: formatCount },
  { key: "tokens_output", label: "Output tokens", pick: (a) => a.tokens?.output, format: formatCount },
  { key: "cache_read", label: "Cache read tokens", pick: (a) => a.tokens?.cache_read, format: formatCount },
  { key: "cache_write", label: "Cache write tokens", pick: (a) => a.tokens?.cache_write, format: formatCount },
  {
    key: "cost_usd", label: "Cost", pick: knownCost, format: formatUsd,
    note: (a) => unpricedNote(a.cost?.unpriced_requests),
  },
  { key: "latency_p50", label: "Latency p50", pick: (a) => a.duration_ms?.p50, format: formatMs },
  { key: "latency_p95", label: "Latency p95", pick: (a) => a.duration_ms?.p95, format: formatMs },
  { key: "ttft_p50", label: "First token p50", pick: (a) => a.ttft_ms?.p50, format: formatMs },
];

export class Tiles {
  constructor(container) {
    this.values = new Map();
    this.notes = new Map();
    for (const tile of TILES) {
      const value = el("div", { className: "tile-value", text: "–" });
      const parts = [el("div", { className: "tile-label", text: tile.label }), value];
      if (tile.note) {
        const note = el("div", { className: "tile-note" });
        this.notes.set(tile.key, note);
        parts.push(note);
      }
      container.append(el("div", { className: "tile", dataset: { tile: tile.key } }, parts));
      this.values.set(tile.key, value);
    }
  }

  update(analytics) {
    for (const tile of TILES) {
      const raw = tile.pick(analytics);
      const node = this.values.get(tile.key);
      node.textContent = tile.format(raw);
      node.dataset.value = raw === null || raw === undefined ? "" : String(raw);
      if (tile.note) this.notes.get(tile.key).textContent = tile.note(analytics);
    }
  }
}
