// The supervisor console: live agent states and waiting callers (polled from /api/agents and /api/queues), the
// supervisor actions (POST /api/supervisor/…, with the page's CSRF token), recorded calls with a player.
// Server and caller text goes in with textContent only.

import { api, showAsterisk, text } from "./common.js";

const labels = JSON.parse(document.getElementById("supervisor-labels").textContent);
const message = document.getElementById("message");

function say(value, isError = false) {
  text(message, value);
  message.classList.toggle("error", isError);
}

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (_m, key) => String(values[key] ?? ""));
}

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function cell(value) {
  return text(document.createElement("td"), value);
}

async function act(promise, done) {
  try {
    const result = await promise;
    say(done(result));
  } catch (error) {
    say(error.message, true);
  }
}

document.getElementById("agents").addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const row = button.closest("tr");
  const ext = row.dataset.extension;
  if (button.dataset.spy) {
    const mode = button.dataset.spy;
    const phone = document.getElementById("phone").value.trim();
    act(api("POST", "/api/supervisor/spy", phone ? { agent: ext, mode, phone } : { agent: ext, mode }),
      () => format(labels.ringing_you, { mode: labels.mode[mode], agent: ext }));
  } else if (button.dataset.act === "pause") {
    act(api("POST", `/api/supervisor/agents/${encodeURIComponent(ext)}/pause`, { reason: "supervisor" }),
      () => labels.done);
  } else if (button.dataset.act === "logout") {
    act(api("POST", `/api/supervisor/agents/${encodeURIComponent(ext)}/logout`), () => labels.done);
  }
});

async function refreshAgents() {
  const { agents } = await api("GET", "/api/agents");
  const byInterface = new Map(agents.map((a) => [a.interface, a]));
  for (const row of document.querySelectorAll("#agents tbody tr[data-interface]")) {
    const live = byInterface.get(row.dataset.interface);
    text(row.querySelector(".state"), live ? (labels.state[live.state] || live.state) : labels.unknown);
    text(row.querySelector(".since"), live ? clock(live.in_state) : "–");
    row.dataset.state = live ? live.state : "";
  }
}

async function refreshCallers() {
  const { queues, asterisk_link: link } = await api("GET", "/api/queues");
  showAsterisk(link);
  const body = document.querySelector("#callers tbody");
  body.replaceChildren();
  for (const q of queues) {
    for (const c of q.callers) {
      const row = document.createElement("tr");
      row.dataset.uniqueid = c.uniqueid;
      const raise = document.createElement("button");
      raise.type = "button";
      text(raise, labels.raise);
      raise.addEventListener("click", () => act(
        api("POST", `/api/supervisor/calls/${encodeURIComponent(c.uniqueid)}/priority`, { priority: (c.priority || 0) + 10 }),
        (r) => format(labels.priority_set, { priority: r.priority })));
      const actions = document.createElement("td");
      actions.append(raise);
      row.append(cell(q.queue), cell(c.caller_name || c.caller_number || labels.caller),
        cell(labels.tier[c.tier] || c.tier || "–"), cell(clock(c.wait)), cell(c.priority), actions);
      body.append(row);
    }
  }
  if (!body.children.length) {
    const row = document.createElement("tr");
    const empty = cell(labels.no_callers);
    empty.colSpan = 6;
    empty.className = "empty";
    row.append(empty);
    body.append(row);
  }
}

async function loadRecordings() {
  const { calls } = await api("GET", "/api/calls?limit=100");
  const body = document.querySelector("#recordings tbody");
  body.replaceChildren();
  for (const c of calls.filter((call) => call.recording).slice(0, 20)) {
    const row = document.createElement("tr");
    row.dataset.call = c.id;
    const player = document.createElement("audio");
    player.controls = true;
    player.preload = "none";
    player.src = c.recording;
    const holder = document.createElement("td");
    holder.append(player);
    row.append(cell((c.entered_at || "").replace("T", " ").slice(0, 19)), cell(c.queue || "–"), cell(c.caller || "–"),
      cell(c.agent || c.agent_interface || "–"), holder);
    body.append(row);
  }
  if (!body.children.length) {
    const row = document.createElement("tr");
    const empty = cell(labels.no_recordings);
    empty.colSpan = 5;
    empty.className = "empty";
    row.append(empty);
    body.append(row);
  }
}

async function refresh() {
  try {
    await Promise.all([refreshAgents(), refreshCallers()]);
  } catch (error) {
    say(error.message, true);
  } finally {
    setTimeout(refresh, 2000);
  }
}

refresh();
loadRecordings().catch((error) => say(error.message, true));
