// The campaign manager page: create a campaign, start / pause / resume it, its live progress (polled).
// Everything from the server goes into the page as text (common.js text()), never as HTML.
import { api, text } from "/static/common.js";

const labels = JSON.parse(document.getElementById("campaign-labels").textContent);
const table = document.querySelector("#campaigns tbody");
const form = document.getElementById("create");
const message = document.getElementById("message");
const NEXT = { draft: ["start"], running: ["pause"], paused: ["resume"], finished: [] };

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

function percent(value) {
  return `${(value * 100).toFixed(1)}%`;
}

function cell(row, value) {
  const td = document.createElement("td");
  text(td, value);
  row.appendChild(td);
  return td;
}

function render(campaigns) {
  table.replaceChildren();
  if (!campaigns.length) {
    const row = table.insertRow();
    const td = cell(row, labels.empty);
    td.colSpan = 12;
    td.className = "empty";
    return;
  }
  for (const c of campaigns) {
    const p = c.progress;
    const row = table.insertRow();
    row.dataset.id = c.id;
    row.dataset.status = c.status;
    cell(row, c.id);
    cell(row, c.name);
    cell(row, labels.type[c.type] ?? c.type);
    cell(row, labels.mode[c.mode] ?? c.mode);
    cell(row, labels.status[c.status] ?? c.status).className = `status ${c.status}`;
    for (const key of ["targets", "dialed", "answered", "reached", "appointments"]) cell(row, p[key]);
    const abandon = cell(row, fill(labels.abandon, { rate: percent(p.abandon_rate), cap: percent(labels.cap) }));
    if (p.abandon_rate > labels.cap) abandon.className = "error";
    const actions = cell(row, "");
    for (const action of NEXT[c.status] ?? []) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      text(button, labels.action[action]);
      button.addEventListener("click", () => move(c.id, action));
      actions.appendChild(button);
    }
  }
}

async function refresh() {
  try {
    render((await api("GET", "/api/campaigns")).campaigns);
  } catch (error) {
    text(message, fill(labels.error, { message: error.message }));
  }
}

async function move(id, action) {
  try {
    await api("POST", `/api/campaigns/${id}/${action}`);
  } catch (error) {
    text(message, fill(labels.error, { message: error.message }));
  }
  await refresh();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const body = {
    name: data.get("name"), type: data.get("type"), mode: data.get("mode"), queue: data.get("queue"),
    window: { start: data.get("start"), end: data.get("end") },
    targets: { filter: { tiers: data.getAll("tiers") } }, tiers_first: data.get("tiers_first") === "on",
  };
  try {
    const created = await api("POST", "/api/campaigns", body);
    message.className = "message";
    text(message, fill(labels.created, created));
    form.reset();
  } catch (error) {
    message.className = "message error";
    text(message, fill(labels.error, { message: error.message }) + (error.field ? ` (${error.field})` : ""));
  }
  await refresh();
});

refresh();
setInterval(refresh, 5000);
