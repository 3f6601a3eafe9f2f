// The four time-series charts, drawn with uPlot from analytics.timeseries.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { BUCKET_SECONDS } from "./api.js";
import { formatCount, formatMs, formatUsd, isNumber, toUnixSeconds } from "./format.js";

const COLORS = {
  blue: "#3b82f6", red: "#ef4444", green: "#10b981", amber: "#f59e0b", violet: "#8b5cf6", slate: "#64748b",
};
const CHART_HEIGHT = 190;
const AXIS_FONT = "12px system-ui, sans-serif";
const Y_AXIS_MIN_WIDTH = 64;
const Y_AXIS_TICK_AND_GAP = 17; // uPlot's tick (10 px) and gap (5 px), and a little air
const measuring = document.createElement("canvas").getContext("2d");
const MAX_GRID_BUCKETS = 5000;

// emptyAs: what a bucket without requests shows. Counts are 0; a percentile of nothing is a gap.
const CHARTS = [
  {
    id: "chart-requests", format: formatCount, emptyAs: 0,
    series: [["Requests", "requests", COLORS.blue], ["Errors", "errors", COLORS.red]],
  },
  {
    id: "chart-tokens", format: formatCount, emptyAs: 0,
    series: [
      ["Input", "tokens_input", COLORS.blue], ["Output", "tokens_output", COLORS.green],
      ["Cache read", "cache_read_tokens", COLORS.violet], ["Cache write", "cache_write_tokens", COLORS.amber],
    ],
  },
  // A bucket whose requests all lack a known price is a gap, not $0.00; a partial sum names the rest.
  { id: "chart-cost", format: formatUsd, emptyAs: 0, unknownAs: null, series: [["Cost", "cost_usd", COLORS.green]] },
  {
    // Buckets without requests are gaps, so a lone busy minute would be an invisible
    // zero-length line: mark such points.
    id: "chart-latency", format: formatMs, emptyAs: null, points: { show: true, size: 5, filter: isolatedPoints },
    series: [["p50", "p50_ms", COLORS.blue], ["p95", "p95_ms", COLORS.amber], ["p99", "p99_ms", COLORS.red]],
  },
];

/** uPlot axis size: wide enough for the longest tick label ("$12,000.00" does not fit in 64 px). */
function yAxisWidth(u, labels) {
  measuring.font = AXIS_FONT;
  const widest = Math.max(0, ...(labels || []).map((label) => measuring.measureText(label).width));
  return Math.max(Y_AXIS_MIN_WIDTH, Math.ceil(widest) + Y_AXIS_TICK_AND_GAP);
}

/** uPlot points filter: the indexes of values with no value on either side. */
function isolatedPoints(u, seriesIdx) {
  const values = u.data[seriesIdx];
  const lone = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null && values[i - 1] == null && values[i + 1] == null) lone.push(i);
  }
  return lone;
}

/**
 * Buckets with no requests are absent from the API's answer; put them back so a quiet
 * period reads as zero instead of a line drawn straight across it.
 */
export function bucketTimes(analytics) {
  const points = (analytics.timeseries?.points || [])
    .map((point) => [toUnixSeconds(point.t), point])
    .filter(([t]) => t !== null)
    .sort((a, b) => a[0] - b[0]);
  const step = BUCKET_SECONDS[analytics.timeseries?.bucket];
  const start = toUnixSeconds(analytics.window?.start);
  const end = toUnixSeconds(analytics.window?.end);
  const byTime = new Map(points);
  const aligned = step && start !== null && end !== null && points.every(([t]) => t % step === 0);
  if (!aligned || (end - start) / step > MAX_GRID_BUCKETS) return { times: points.map(([t]) => t), byTime };
  const times = [];
  for (let t = Math.floor(start / step) * step; t < end; t += step) times.push(t); // the end is not in the window
  const onGrid = new Set(times);
  const offGrid = points.map(([t]) => t).filter((t) => !onGrid.has(t));
  return { times: offGrid.length ? [...times, ...offGrid].sort((a, b) => a - b) : times, byTime };
}

function chartData(spec, times, byTime) {
  const columns = spec.series.map(([, field]) => times.map((t) => {
    const point = byTime.get(t);
    if (spec.unknownAs !== undefined && unpricedIn(point) > 0 && unpricedIn(point) >= point.requests) return spec.unknownAs;
    const value = point?.[field];
    return isNumber(value) ? value : spec.emptyAs;
  }));
  return [times, ...columns];
}

function unpricedIn(point) {
  return isNumber(point?.unpriced_requests) ? point.unpriced_requests : 0;
}

/** The legend's figure at bucket `index`; for cost, the requests of that bucket without a known price too. */
function legendValue(spec, u, value, index) {
  const shown = spec.format(value);
  if (spec.unknownAs === undefined || index === null || index === undefined) return shown;
  const unknown = unpricedIn(u.bucketPoints?.[index]);
  if (!unknown) return shown;
  return value === null ? `${shown} (${formatCount(unknown)} unknown)` : `${shown} +${formatCount(unknown)} unknown`;
}

/**
 * uPlot writes times from templates in US style ("{M}/{D}", "{h}:{mm}{aa}"): write them the browser's
 * way instead (5.12., 08:00 in Germany), keeping what each template shows (year, date, time).
 */
export function localDateFormat(template) {
  const lines = template.split("\n").map(localLineFormat); // an axis label may have two lines
  return (date) => lines.map((line) => line(date)).join("\n");
}

function localLineFormat(template) {
  const day = {};
  if (template.includes("{YY")) day.year = "numeric";
  if (/\{M|\{D|\{W/.test(template)) Object.assign(day, { month: "numeric", day: "numeric" });
  const time = /\{h|\{H|\{m/.test(template) ? { hour: "numeric", minute: "2-digit" } : null;
  if (time && template.includes("{ss")) time.second = "2-digit";
  return (date) => {
    const parts = [];
    if (Object.keys(day).length) parts.push(date.toLocaleDateString([], day));
    if (time) parts.push(date.toLocaleTimeString([], time));
    return parts.join(" ");
  };
}

function chartOptions(spec, width) {
  return {
    width,
    height: CHART_HEIGHT,
    fmtDate: localDateFormat,
    padding: [null, 36, null, null], // room on the right for half the last time label ("12/5/2026" is 62 px)
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [
      {},
      ...spec.series.map(([label, , color]) => ({
        label, stroke: color, width: 2, ...(spec.points && { points: spec.points }),
        value: (u, v, seriesIndex, index) => legendValue(spec, u, v, index),
      })),
    ],
    axes: [
      { stroke: COLORS.slate, grid: { stroke: "#e5e7eb" }, space: 90, font: AXIS_FONT },
      {
        stroke: COLORS.slate, grid: { stroke: "#e5e7eb" }, font: AXIS_FONT, size: yAxisWidth,
        values: (u, splits) => splits.map(spec.format),
      },
    ],
  };
}

export class Charts {
  constructor(root) {
    this.plots = new Map();
    for (const spec of CHARTS) {
      const target = root.querySelector(`#${spec.id}`);
      const empty = [[], ...spec.series.map(() => [])];
      this.plots.set(spec.id, { spec, target, plot: new uPlot(chartOptions(spec, widthOf(target)), empty, target) });
    }
    new ResizeObserver(() => this.resize()).observe(root);
  }

  update(analytics) {
    const { times, byTime } = bucketTimes(analytics);
    const points = times.map((t) => byTime.get(t));
    for (const { spec, plot } of this.plots.values()) {
      plot.bucketPoints = points; // what the legend reads besides the drawn values
      plot.setData(chartData(spec, times, byTime));
    }
  }

  resize() {
    for (const { target, plot } of this.plots.values()) {
      const width = widthOf(target);
      if (width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
    }
  }
}

function widthOf(node) {
  return Math.max(200, Math.floor(node.clientWidth));
}
