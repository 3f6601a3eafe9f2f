// Who spent it: the breakdown by project, session, key or client (from /logs/analytics?group_by=),
// the sessions table (/logs/sessions), and one session's requests (/logs/session?session_id=) on a click.
import { clear, el } from "./dom.js";
import { fetchJson } from "./api.js";
import { formatCount, formatDateTime, formatMs, formatUsd, textOrDash } from "./format.js";
import { costCell, emptyRow } from "./tables.js";

export const DIMENSIONS = { project: "Project", session: "Session", api_key: "Key", client: "Client" };
const SESSION_LIMIT = 25;
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

/** The sessions table; a click on a session opens its requests below it. */
export class Sessions {
  constructor({ logsBase, tbody, detail, detailTitle, detailBody }) {
    this.logsBase = logsBase;
    this.tbody = tbody;
    this.detail = detail;
    this.detailTitle = detailTitle;
    this.detailBody = detailBody;
    this.openId = null;
  }

  render(answer) {
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
    open.addEventListener("click", () => this.open(id, session.requests));
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

  /** `total` is the session's request count from the sessions table: the view says when it shows fewer. */
  async open(id, total) {
    this.openId = id;
    this.detail.hidden = false;
    this.detailTitle.textContent = `Session ${id}`;
    clear(this.detailBody);
    this.detailBody.append(emptyRow(9, "Loading…"));
    let answer;
    try {
      // The query form: a session id may hold "/" or be "." or "..", which a path cannot carry.
      answer = await fetchJson(`${this.logsBase}/session?session_id=${encodeURIComponent(id)}`);
    } catch (error) {
      if (this.openId === id) {
        clear(this.detailBody);
        this.detailBody.append(emptyRow(9, `Could not load the session: ${error.message}`));
      }
      return;
    }
    if (this.openId !== id) return; // another session was opened meanwhile
    clear(this.detailBody);
    for (const request of answer.requests) this.detailBody.append(requestRow(request));
    if (answer.truncated || answer.count < total) {
      const shown = `Showing the first ${formatCount(answer.count)} of ${formatCount(total)} requests`;
      this.detailBody.append(emptyRow(9, `${shown}, oldest first; /logs/session?limit= gives up to 10,000.`));
    }
    this.detail.scrollIntoView({ block: "nearest" });
  }
}

function requestRow(request) {
  const failed = request.status_code >= 400 || request.error_type;
  return el("tr", { dataset: { requestId: textOrDash(request.request_id) } }, [
    cell(formatDateTime(request.timestamp), "time"),
    cell(textOrDash(request.status_code), failed ? "status bad" : "status ok"),
    cell(textOrDash(request.model), "name"),
    cell(formatMs(request.duration_ms), "num"),
    cell(formatCount(request.tokens_input), "num"),
    cell(formatCount(request.tokens_output), "num"),
    cell(formatCount(request.cache_read_tokens), "num"),
    cell(formatCount(request.cache_write_tokens), "num"),
    cell(formatUsd(request.cost_usd), "num"),
  ]);
}
