// The campaign manager page: create a campaign, start / pause / resume it, its live progress (polled).
// Everything from the server goes into the page as text (common.js text()), never as HTML.
import { api, csrfToken, text, zonedTime } from "/static/common.js";

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
  const pick = document.getElementById("import-campaign");
  const chosen = pick.value;
  pick.replaceChildren();
  for (const c of campaigns.filter((c) => c.status !== "finished")) {
    const option = document.createElement("option");
    option.value = String(c.id);
    text(option, `#${c.id} ${c.name}`);
    pick.appendChild(option);
  }
  if (chosen) pick.value = chosen;
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
    const show = document.createElement("a");
    show.href = `/campaigns/${c.id}/results`;
    show.dataset.action = "results";
    text(show, labels.results);
    actions.appendChild(show);
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

function spec() {
  const data = new FormData(form);
  return {
    name: data.get("name"), type: data.get("type"), mode: data.get("mode"), queue: data.get("queue"),
    window: { start: data.get("start"), end: data.get("end") },
    targets: targets(String(data.get("source") || "filter"), data.getAll("tiers")),
    tiers_first: data.get("tiers_first") === "on",
  };
}

// "due:kind[:days]" and "source:name" choose a due-date campaign or the tickets worklist; else the tier filter.
function targets(choice, tiers) {
  const [kind, name, days] = choice.split(":");
  if (kind === "due") return { due: days ? { kind: name, days: Number(days) } : { kind: name } };
  if (kind === "source") return { source: name };
  return { filter: { tiers } };
}

// A refusal: the server's message names the field by its label in the page's language; the field is marked.
function refused(where, error) {
  text(where, fill(labels.error, { message: error.message }));
  const field = error.field && form.elements.namedItem(error.field);
  if (field && field.setAttribute) {
    field.setAttribute("aria-invalid", "true");
    field.addEventListener("input", () => field.removeAttribute("aria-invalid"), { once: true });
  }
}

// The dry run: how many the selection matches and what the compliance gate would exclude now, and why.
document.getElementById("count").addEventListener("click", async () => {
  const result = document.getElementById("count-result");
  const reasons = document.getElementById("count-reasons");
  reasons.replaceChildren();
  try {
    const c = await api("POST", "/api/campaigns/count", spec());
    result.className = "message";
    text(result, fill(labels.count, { matched: c.matched, eligible: c.eligible, waiting: c.outside_window_now,
                                      excluded: c.excluded_total }));
    for (const [reason, n] of Object.entries(c.excluded)) {
      const item = document.createElement("li");
      item.dataset.reason = reason;
      text(item, `${labels.reason[reason] ?? reason}: ${n}`);
      reasons.appendChild(item);
    }
  } catch (error) {
    result.className = "message error";
    refused(result, error);
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = spec();
  try {
    const created = await api("POST", "/api/campaigns", body);
    message.className = "message";
    text(message, fill(labels.created, created));
    form.reset();
  } catch (error) {
    message.className = "message error";
    refused(message, error);
  }
  await refresh();
});

// The DNC screen: the list, add, remove, CSV import (the /api/dnc routes).
const dncTable = document.querySelector("#dnc-list tbody");
const dncMessage = document.getElementById("dnc-message");
const dncErrors = document.getElementById("dnc-errors");

// The rows a CSV import refused, each with its reason (the targets import and the DNC import alike).
function listErrors(list, errors) {
  for (const e of errors) {
    const item = document.createElement("li");
    text(item, fill(labels.row_error, e));
    list.appendChild(item);
  }
}

async function dncRefresh() {
  const listed = (await api("GET", "/api/dnc")).numbers;
  dncTable.replaceChildren();
  if (!listed.length) {
    const td = cell(dncTable.insertRow(), labels.no_numbers);
    td.colSpan = 4;
    td.className = "empty";
  }
  for (const n of listed) {
    const row = dncTable.insertRow();
    row.dataset.number = n.number;
    cell(row, n.number);
    cell(row, n.added_at ? zonedTime(n.added_at) : "");  // stored in UTC: shown in the reader's own time
    cell(row, n.source);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.dataset.action = "remove";
    text(remove, labels.remove);
    remove.addEventListener("click", () => dncDo(async () => {
      const done = await api("DELETE", `/api/dnc/${encodeURIComponent(n.number)}`);
      return fill(labels.dnc_removed, done);
    }));
    cell(row, "").appendChild(remove);
  }
}

async function dncDo(action) {
  dncErrors.replaceChildren();
  try {
    const said = await action();
    dncMessage.className = "message";
    text(dncMessage, said);
  } catch (error) {
    dncMessage.className = "message error";
    text(dncMessage, fill(labels.error, { message: error.message }));
  }
  await dncRefresh();
}

document.getElementById("dnc-add").addEventListener("submit", (event) => {
  event.preventDefault();
  dncDo(async () => {
    const done = await api("POST", "/api/dnc", { number: document.getElementById("dnc-number").value });
    document.getElementById("dnc-number").value = "";
    return fill(done.added ? labels.dnc_added : labels.dnc_already, done);
  });
});

document.getElementById("dnc-import").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = document.getElementById("dnc-file").files[0];
  if (!file) return;
  dncDo(async () => {
    const response = await fetch("/api/dnc/import", {
      method: "POST", credentials: "same-origin", body: await file.arrayBuffer(),  // bytes: file.text() would garble GBK
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": await csrfToken(), Accept: "application/json" },
    });
    const done = await response.json();
    if (!response.ok) throw new Error(done.error || String(response.status));
    listErrors(dncErrors, done.errors);
    return fill(labels.dnc_imported, done);
  });
});

// Targets from a CSV into a campaign, checked row by row: the bad rows are listed with the reason.
document.getElementById("targets-import").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("targets-file").files[0];
  const id = document.getElementById("import-campaign").value;
  const out = document.getElementById("import-message");
  const errors = document.getElementById("import-errors");
  errors.replaceChildren();
  if (!file || !id) return;
  try {
    const response = await fetch(`/api/campaigns/${encodeURIComponent(id)}/targets/import`, {
      method: "POST", credentials: "same-origin", body: await file.arrayBuffer(),  // bytes: file.text() would garble GBK
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": await csrfToken(), Accept: "application/json" },
    });
    const done = await response.json();
    if (!response.ok) throw new Error(done.error || String(response.status));
    out.className = "message";
    text(out, fill(labels.imported, done));
    listErrors(errors, done.errors);
  } catch (error) {
    out.className = "message error";
    text(out, fill(labels.error, { message: error.message }));
  }
  await refresh();
});

refresh();
dncRefresh();
setInterval(refresh, 5000);
