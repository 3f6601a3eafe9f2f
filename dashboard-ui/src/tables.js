// Breakdown tables (by model, by service type) and the recent-errors table.
import { clear, el } from "./dom.js";
import { formatCount, formatDateTime, formatMs, formatUsd, textOrDash, unpricedNote } from "./format.js";

const MESSAGE_PREVIEW_CHARS = 240;

function cell(text, className = "", title = undefined) {
  return el("td", { className, text, title });
}

/** A name cell: cut to the column's width by the stylesheet, whole on hover. */
function nameCell(value) {
  const text = textOrDash(value);
  return cell(text, "name", text);
}

/** A row of one cell across the table, for a message in place of rows. */
export function emptyRow(columns, message) {
  return el("tr", { className: "empty" }, [el("td", { text: message, attrs: { colspan: columns } })]);
}

/**
 * A row's cost: "–" when none of its requests has a known price (cost_usd is null), and the
 * known part with "+N unknown" when only some have one, so a partial sum never reads as whole.
 */
export function costCell(costUsd, unpricedRequests) {
  const note = unpricedNote(unpricedRequests);
  const known = costUsd === null || costUsd === undefined ? null : costUsd;
  const children = known !== null && note ? [el("span", { className: "unpriced", text: ` +${formatCount(unpricedRequests)} unknown` })] : [];
  const td = el("td", { className: "num cost", text: formatUsd(known), title: note || undefined }, children);
  td.dataset.unpriced = String(unpricedRequests ?? 0);
  return td;
}

/** Fills `tbody` with one row per group; `nameKey` is "model" or "service_type". */
export function renderBreakdown(tbody, groups, nameKey) {
  clear(tbody);
  if (!groups?.length) {
    tbody.append(emptyRow(6, "No requests in this window."));
    return;
  }
  for (const group of groups) {
    const name = group.rest
      ? el("td", { className: "name derived", text: "other", title: "the other models, summed" })
      : nameCell(group[nameKey]);
    tbody.append(el("tr", { dataset: group.rest ? { derived: "rest" } : { name: textOrDash(group[nameKey]) } }, [
      name,
      cell(formatCount(group.requests), "num"),
      cell(formatCount(group.errors), "num"),
      cell(formatCount(group.tokens_total), "num"),
      costCell(group.cost_usd, group.unpriced_requests),
      cell(formatMs(group.p95_ms), "num"),
    ]));
  }
}

export function renderRecentErrors(tbody, errors) {
  clear(tbody);
  if (!errors?.length) {
    tbody.append(emptyRow(6, "No errors in this window."));
    return;
  }
  for (const error of errors) {
    const message = textOrDash(error.error_message);
    const preview = message.length > MESSAGE_PREVIEW_CHARS ? `${message.slice(0, MESSAGE_PREVIEW_CHARS)}…` : message;
    const messageCell = el("td", { className: "message", text: preview, title: message });
    tbody.append(el("tr", { dataset: { requestId: textOrDash(error.request_id) } }, [
      cell(formatDateTime(error.timestamp), "time"),
      cell(textOrDash(error.status_code), "status bad"),
      nameCell(error.error_type),
      nameCell(error.model),
      nameCell(error.endpoint),
      messageCell,
    ]));
  }
}
