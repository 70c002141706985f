// The wallboard: loads the shared snapshot (GET /api/wallboard, one encoding for every board) and redraws.
// Polls with If-None-Match (a 304 costs nothing between updates); between snapshots it counts waits and time in
// state itself. Every text from the server goes in with textContent; the charts are the server's own SVG.

import { showAsterisk, text } from "./common.js";

const labels = JSON.parse(document.getElementById("wallboard-labels").textContent);
const POLL_MS = 1000;
const ICON = { ok: "✓", warn: "!", bad: "✗", none: "○" };
let etag = null;
let snapshot = null;
let offset = 0; // local clock − server clock, seconds
let failures = 0;

function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) text(node, content);
  return node;
}

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (_m, key) => String(values[key] ?? ""));
}

function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function serverNow() {
  return Date.now() / 1000 - offset;
}

function since(epoch) {
  return epoch === null || epoch === undefined ? null : serverNow() - epoch;
}

function tierBadge(tier) {
  return el("span", `tier tier-${tier || "unknown"}`, labels.tier[tier] || tier || "?");
}

function renderTotals(s) {
  text(document.getElementById("t-waiting"), s.totals.waiting);
  text(document.getElementById("t-agents"), `${s.totals.available} / ${s.totals.agents}`);
  text(document.getElementById("t-answered"), s.totals.answered);
  text(document.getElementById("t-abandoned"), s.totals.abandoned);
}

function renderVip(s) {
  const box = document.getElementById("vip-alert");
  const list = document.getElementById("vip-list");
  list.replaceChildren();
  for (const caller of s.vip_waiting) {
    const item = el("li");
    const wait = el("span", "wait", clock(since(caller.joined)));
    wait.dataset.since = caller.joined;
    item.append(tierBadge(caller.tier), el("span", "who", caller.name || labels.caller), el("span", "queue", caller.queue),
      wait);
    list.append(item);
  }
  box.hidden = s.vip_waiting.length === 0;
}

function renderTiles(s) {
  const tiles = document.getElementById("tiles");
  tiles.replaceChildren();
  for (const q of s.queues) {
    const tile = el("article", `tile sl-${q.sl_status}`);
    tile.dataset.queue = q.queue;
    const head = el("header");
    head.append(el("h3", "", q.queue));
    const sl = el("div", "sl");
    sl.append(el("span", "sl-icon", ICON[q.sl_status]),
      el("span", "sl-value", q.service_level === null ? "–" : `${Math.round(q.service_level)}%`),
      el("span", "sl-word", labels.sl[q.sl_status]));
    head.append(sl);
    tile.append(head);
    const figures = el("div", "figures");
    const waiting = el("div", "waiting");
    waiting.append(el("span", "big", q.waiting), el("span", "label", labels.waiting));
    const longest = el("div", "longest");
    const longestValue = el("span", "value wait", clock(q.waiting ? since(q.oldest_joined) : 0));
    if (q.waiting) longestValue.dataset.since = q.oldest_joined;
    longest.append(el("span", "label", labels.longest), longestValue);
    figures.append(waiting, longest,
      el("div", "free", format(labels.free, { free: q.available, total: q.logged_in })),
      el("div", "today", `${labels.offered} ${q.offered} · ${labels.answered} ${q.answered} · ${labels.abandoned} ${q.abandoned}`));
    tile.append(figures);
    const callers = el("ul", "callers");
    for (const c of q.callers) {
      const item = el("li", c.vip ? "vip" : "");
      const wait = el("span", "wait", clock(since(c.joined)));
      wait.dataset.since = c.joined;
      item.append(tierBadge(c.tier), el("span", "who", c.name || labels.caller), wait);
      if (c.ringing) item.append(el("span", "ring", labels.ringing_now));
      callers.append(item);
    }
    if (q.waiting > q.callers.length) callers.append(el("li", "more", format(labels.more, { n: q.waiting - q.callers.length })));
    tile.append(callers);
    tiles.append(tile);
  }
}

function renderAgents(s) {
  const grid = document.getElementById("agents");
  grid.replaceChildren();
  if (!s.agents.length) grid.append(el("li", "empty", labels.no_agents));
  for (const a of s.agents) {
    const item = el("li", `agent state-${a.state}`);
    const state = el("span", "state", labels.state[a.state] || a.state);
    const time = el("span", "time wait", clock(since(a.since)));
    if (a.since !== null) time.dataset.since = a.since;
    item.append(el("span", "name", a.name), state, time);
    if (a.reason) item.append(el("span", "reason", a.reason));
    grid.append(item);
  }
}

function renderAlarms(s) {
  const list = document.getElementById("alarms");
  list.replaceChildren();
  if (!s.alarms.length) list.append(el("li", "empty", labels.no_alarms));
  for (const a of s.alarms) {
    const item = el("li", `alarm stage-${a.stage}`);
    item.append(el("span", "icon", a.stage === "breach" ? "✗" : "!"), el("span", "stage", labels.stage[a.stage] || a.stage),
      el("span", "ticket", format(labels.ticket, { id: a.ticket_id })), el("span", "subject", a.subject),
      el("span", "clock", labels.clock[a.clock] || a.clock));
    list.append(item);
  }
}

function renderCharts(s) {
  // The server's own SVG (numbers and times only, every label escaped there): no script, no style attributes.
  document.getElementById("chart-sl").innerHTML = s.charts.service_level || "";
  document.getElementById("chart-ab").innerHTML = s.charts.abandon_rate || "";
}

function tick() {
  for (const node of document.querySelectorAll("[data-since]")) {
    text(node, clock(since(Number(node.dataset.since))));
  }
  if (snapshot) {
    const waits = snapshot.queues.filter((q) => q.waiting).map((q) => since(q.oldest_joined));
    text(document.getElementById("t-longest"), clock(waits.length ? Math.max(...waits) : 0));
  }
}

function render(s) {
  snapshot = s;
  document.getElementById("wallboard").dataset.version = s.version;
  renderTotals(s);
  renderVip(s);
  renderTiles(s);
  renderAgents(s);
  renderAlarms(s);
  renderCharts(s);
  showAsterisk(s.asterisk_link);
  tick();
}

async function poll() {
  try {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    const response = await fetch("/api/wallboard", { headers, credentials: "same-origin" });
    if (response.status === 401) {
      window.location.href = "/login?next=/wallboard";
      return;
    }
    const serverTime = Number(response.headers.get("X-Server-Time"));
    if (serverTime) offset = Date.now() / 1000 - serverTime; // the frame may be older than this answer
    if (response.status === 200) {
      etag = response.headers.get("ETag");
      render(await response.json());
    } else if (response.status !== 304) {
      throw new Error(`${response.status}`);
    }
    failures = 0;
    document.getElementById("stale").hidden = true;
  } catch (_error) {
    failures += 1;
    if (failures >= 3) {
      const stale = document.getElementById("stale");
      text(stale, labels.stale);
      stale.hidden = false;
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

setInterval(tick, 1000);
poll();
