// Who spent it: the breakdown by project, session, key or client (from /logs/analytics?group_by=),
// the sessions table (/logs/sessions), and one session's requests in the window (/logs/entries) on a click.
import { clear, el } from "./dom.js";
import { fetchJson } from "./api.js";
import { formatCount, formatDateTime, formatMs, formatUsd, textOrDash } from "./format.js";
import { costCell, emptyRow } from "./tables.js";

export const DIMENSIONS = { project: "Project", session: "Session", api_key: "Key", client: "Client" };
const SESSION_LIMIT = 25;
const SESSION_REQUESTS_SHOWN = 1000; // /logs/entries' largest page
const SHORT_ID = 8;

function cell(text, className = "", title) {
  return el("td", { className, text, title });
}

/** A group's name cell: the client's own text as it is; ccproxy's words for the rest and for
 * "no value" in italics (class "derived"), so a project a client names "other" reads apart. */
function groupCell(group) {
  if (group.rest) return el("td", { className: "name derived", text: "other", title: "the other groups, summed" });
  if (group.key === null || group.key === undefined) {
    return el("td", { className: "name derived", text: "none", title: "requests that name none" });
  }
  const label = String(group.key);
  return cell(label, "name", label);
}

/** Fills the breakdown table with the analytics answer's `groups` (top N and "other"). */
export function renderGroups(tbody, groups) {
  clear(tbody);
  if (!groups?.length) {
    tbody.append(emptyRow(5, "No requests in this window."));
    return;
  }
  for (const group of groups) {
    const derived = group.rest ? "rest" : group.key === null || group.key === undefined ? "none" : null;
    tbody.append(el("tr", { dataset: derived ? { derived } : { key: String(group.key) } }, [
      groupCell(group),
      cell(formatCount(group.requests), "num"),
      cell(formatCount(group.errors), "num"),
      cell(formatCount(group.tokens?.total), "num"),
      costCell(group.cost_usd, group.unpriced_requests),
    ]));
  }
}

export function sessionsUrl(logsBase, startSeconds, endSeconds) {
  const params = new URLSearchParams({
    start_time: String(startSeconds), end_time: String(endSeconds), limit: String(SESSION_LIMIT),
  });
  return `${logsBase}/sessions?${params}`;
}

/** One session's requests in the window [start, end), oldest first: the rows its line in the table sums. */
export function sessionRequestsUrl(logsBase, sessionId, [start, end]) {
  const params = new URLSearchParams({
    session_id: literalName(sessionId),
    start_time: String(start),
    end_time: String(end),
    page_size: String(SESSION_REQUESTS_SHOWN),
    order_by: "timestamp",
    order_desc: "false",
  });
  return `${logsBase}/entries?${params}`;
}

/** A stored name as a filter's comma list reads it: "\" before a comma, a "!", a blank or a backslash. */
function literalName(name) {
  return name.replace(/[\\,!\s]/g, "\\$&");
}

/** The sessions table; a click on a session opens its requests below it. */
export class Sessions {
  constructor({ logsBase, tbody, detail, detailTitle, detailBody }) {
    this.logsBase = logsBase;
    this.tbody = tbody;
    this.detail = detail;
    this.detailTitle = detailTitle;
    this.detailBody = detailBody;
    this.openId = null;
    this.bounds = null;
  }

  /** `bounds` are the window's [start, end) the table was read for: a session's requests are read for it too. */
  render(answer, bounds) {
    this.bounds = bounds;
    clear(this.tbody);
    const sessions = answer?.sessions ?? [];
    if (!sessions.length) {
      this.tbody.append(emptyRow(9, "No sessions in this window: requests carry none, or none were sent."));
      return;
    }
    for (const session of sessions) this.tbody.append(this.row(session));
    if (Number(answer.total) > sessions.length) {
      const shown = `Showing the ${formatCount(sessions.length)} most recently active of ${formatCount(answer.total)} sessions`;
      this.tbody.append(emptyRow(9, `${shown}; /logs/sessions gives the rest.`));
    }
  }

  row(session) {
    const id = String(session.session_id);
    const open = el("button", { className: "link", text: id.slice(0, SHORT_ID), title: id, attrs: { type: "button" } });
    open.addEventListener("click", () => this.open(id));
    const tokens = session.tokens ?? {};
    return el("tr", { dataset: { sessionId: id } }, [
      el("td", { className: "name" }, [open]),
      cell(textOrDash(session.client_name), "name"),
      cell(textOrDash(session.project), "name"),
      cell(textOrDash(session.api_key), "name"),
      cell(formatDateTime(session.last_seen), "time"),
      cell(formatCount(session.requests), "num"),
      cell(formatCount(tokens.total), "num", `in ${tokens.input}, out ${tokens.output}, cache read ${tokens.cache_read}, cache write ${tokens.cache_write}`),
      costCell(session.cost_usd, session.unpriced_requests),
      cell(formatCount(session.errors), "num"),
    ]);
  }

  /** The session's requests in the table's window; a line says when there are more than are shown. */
  async open(id) {
    this.openId = id;
    this.detail.hidden = false;
    this.detailTitle.textContent = `Session ${id}`;
    clear(this.detailBody);
    this.detailBody.append(emptyRow(9, "Loading…"));
    let answer;
    try {
      answer = await fetchJson(sessionRequestsUrl(this.logsBase, id, this.bounds));
    } catch (error) {
      if (this.openId === id) {
        clear(this.detailBody);
        this.detailBody.append(emptyRow(9, `Could not load the session: ${error.message}`));
      }
      return;
    }
    if (this.openId !== id) return; // another session was opened meanwhile
    clear(this.detailBody);
    const requests = answer.results ?? [];
    for (const request of requests) this.detailBody.append(requestRow(request));
    if (!requests.length) this.detailBody.append(emptyRow(9, "No requests of this session in this window."));
    if (Number(answer.total) > requests.length) {
      const shown = `Showing the first ${formatCount(requests.length)} of ${formatCount(answer.total)} requests in this window`;
      this.detailBody.append(emptyRow(9, `${shown}, oldest first; /logs/query?session_id= pages through them all.`));
    }
    this.detail.scrollIntoView({ block: "nearest" });
  }
}

function requestRow(request) {
  const failed = request.status_code >= 400 || request.error_type;
  return el("tr", { dataset: { requestId: textOrDash(request.request_id) } }, [
    cell(formatDateTime(request.timestamp), "time"),
    cell(textOrDash(request.status_code), failed ? "status bad" : "status ok"),
    cell(textOrDash(request.model), "name", textOrDash(request.model)),
    cell(formatMs(request.duration_ms), "num"),
    cell(formatCount(request.tokens_input), "num"),
    cell(formatCount(request.tokens_output), "num"),
    cell(formatCount(request.cache_read_tokens), "num"),
    cell(formatCount(request.cache_write_tokens), "num"),
    cell(formatUsd(request.cost_usd), "num"),
  ]);
}
