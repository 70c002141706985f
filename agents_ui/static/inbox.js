// The department inbox: the tickets of the viewer's department with SLA countdowns, filter and sort; a ticket's
// detail with its history, comment, status moves and reassignment. Everything through the JSON API (common.js api()
// with CSRF); every text from the server or a caller goes in as text, never as HTML.
import { api, text, zonedTime } from "/static/common.js";

const labels = JSON.parse(document.getElementById("inbox-labels").textContent);
const filters = document.getElementById("filters");
const tbody = document.querySelector("#tickets tbody");
const detail = document.getElementById("detail");
const message = document.getElementById("detail-message");
const transitionForm = document.getElementById("transition-form");
let current = null; // the ticket shown in the detail pane
let shown = []; // the tickets in the table

const fmt = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
const label = (group, code) => (labels[group] && labels[group][code]) || code || "";

function duration(seconds) {
  const s = Math.abs(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days) return `${fmt(labels.days, { n: days })} ${fmt(labels.hours, { n: hours })}`;
  if (hours) return `${fmt(labels.hours, { n: hours })} ${fmt(labels.minutes, { n: minutes })}`;
  return fmt(labels.minutes, { n: minutes });
}

// The clock that matters now: the first response while the ticket is new, else the resolution.
function runningClock(ticket) {
  const first = ticket.sla.first_response;
  if (ticket.status === "new" && first && !first.met_at) return ["first_response", first];
  return ["resolution", ticket.sla.resolution];
}

function countdown(element, ticket) {
  const [name, clock] = runningClock(ticket);
  element.className = "sla";
  if (!clock && ticket.appointment) {  // an appointment's time is what its ticket is due by
    return text(element, fmt(labels.appointment_at,
      { time: zonedTime(ticket.appointment.slot, ticket.appointment.time_zone) }));
  }
  if (!clock) return text(element, labels.none);
  if (clock.met_at) {
    element.classList.add(clock.state === "met" ? "ok" : "late");
    return text(element, `${label("clock", name)}: ${labels[clock.state] || labels.met}`);
  }
  if (clock.state === "stopped") return text(element, "–");
  const left = (Date.parse(clock.due_at) - Date.now()) / 1000;
  const state = left <= 0 ? "breached" : left <= 1800 ? "warning" : "ok";
  element.classList.add(state);
  element.dataset.state = state;
  element.title = zonedTime(clock.due_at, ticket.time_zone);  // the store's hours, as on the desktop
  return text(element, `${label("clock", name)}: ${fmt(left > 0 ? labels.left : labels.overdue,
    { time: duration(left) })}`);
}

function cell(row, value, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  text(td, value);
  return td;
}

function renderTable(tickets, total) {
  shown = tickets;
  tbody.replaceChildren();
  if (!tickets.length) {
    const row = tbody.insertRow();
    const td = cell(row, labels.empty, "empty");
    td.colSpan = 8;
  }
  for (const t of tickets) {
    const row = tbody.insertRow();
    row.dataset.id = t.id;
    row.tabIndex = 0;
    row.className = `severity-${t.severity}${current && current.id === t.id ? " selected" : ""}`;
    cell(row, t.id);
    cell(row, `${label("kind", t.kind)}${t.category ? " · " + label("category", t.category) : ""}`);
    cell(row, t.subject, "subject");
    cell(row, t.customer ? `${t.customer.name} (${label("tier", t.customer.tier)})` : t.phone || "–");
    cell(row, t.store ? t.store.name : "–");
    cell(row, label("status", t.status), `status status-${t.status}`);
    cell(row, t.assignee ? t.assignee.name : labels.unassigned);
    countdown(row.insertCell(), t);
    row.addEventListener("click", () => open(t.id));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(t.id); });
  }
  text(document.getElementById("count"), fmt(labels.total, { shown: tickets.length, total }));
}

async function load() {
  const form = new FormData(filters);
  const query = new URLSearchParams({ limit: "200" });
  for (const [key, value] of form) if (value) query.set(key, value);
  const data = await api("GET", `/api/tickets?${query}`);
  renderTable(data.tickets, data.total);
}

function fact(list, name, value) {
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  text(dt, name);
  if (value instanceof Node) dd.append(value); else text(dd, value);
  list.append(dt, dd);
}

function renderDetail(t) {
  current = t;
  detail.hidden = false;
  text(document.getElementById("detail-title"), `#${t.id} ${t.subject}`);
  const facts = document.getElementById("detail-facts");
  facts.replaceChildren();
  const headings = [...document.querySelectorAll("#tickets thead th")].map((th) => th.textContent);
  fact(facts, headings[1], `${label("kind", t.kind)}${t.category ? " · " + label("category", t.category) : ""}` +
    ` · ${label("severity", t.severity)}`);
  fact(facts, headings[5], label("status", t.status));
  fact(facts, headings[3], t.customer ? `${t.customer.name} (${label("tier", t.customer.tier)})${t.phone ? " " + t.phone : ""}`
    : t.phone || "–");
  fact(facts, labels.department_title, label("department", t.department) || "–");
  fact(facts, headings[6], t.assignee ? t.assignee.name : labels.unassigned);
  const clock = document.createElement("span");
  countdown(clock, t);
  fact(facts, headings[7], clock);
  if (t.satisfaction) fact(facts, labels.satisfaction, `${t.satisfaction} / 5`);
  if (t.appointment) fact(facts, label("kind", "appointment"),
    zonedTime(t.appointment.slot, t.appointment.time_zone));
  const body = document.getElementById("detail-body");
  text(body, t.body || "");
  body.hidden = !t.body;  // no empty bordered box for a ticket without details

  const actions = document.getElementById("detail-actions");
  actions.replaceChildren();
  for (const to of t.allowed) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.to = to;
    const reopening = to === "in_progress" && ["resolved", "customer_called_back"].includes(t.status);
    const puttingBack = to === "assigned" && t.status === "in_progress";  // not "Accept" a second time
    text(button, reopening ? labels.reopen : puttingBack ? labels.put_back : label("action", to));
    if (to === "cancelled") button.className = "danger";
    button.addEventListener("click", () => move(to));
    actions.append(button);
  }
  transitionForm.querySelector(".satisfaction").hidden = !t.allowed.includes("customer_called_back");

  const history = document.getElementById("detail-history");
  history.replaceChildren();
  for (const e of t.events || []) {
    const li = document.createElement("li");
    const when = zonedTime(e.at, t.time_zone);
    let what = label("event", e.action);
    if (e.action === "transition") what = `${label("status", e.from)} → ${label("status", e.to)}`;
    if (e.action === "assigned" && e.detail && e.detail.department) {
      what += ` → ${label("department", e.detail.department)}`;
    }
    if (e.detail && e.detail.satisfaction) what += ` (${labels.satisfaction} ${e.detail.satisfaction}/5)`;
    text(li, `${when} · ${e.actor || labels.system} · ${what}${e.comment ? ": " + e.comment : ""}`);
    history.append(li);
  }
  for (const row of tbody.rows) row.classList.toggle("selected", Number(row.dataset.id) === t.id);
}

async function open(id) {
  text(message, "");
  try {
    renderDetail(await api("GET", `/api/tickets/${id}`));
  } catch (error) {
    text(message, error.message);
  }
}

async function act(call) {
  text(message, "");
  try {
    const result = await call();
    transitionForm.reset();
    await load();
    if (result && result.visible === false) {
      detail.hidden = true;
      current = null;
    } else {
      await open(current.id);
    }
    text(message, labels.saved);
  } catch (error) {
    text(message, error.message);
  }
}

function move(to) {
  const form = new FormData(transitionForm);
  const body = { to };
  if (form.get("comment")) body.comment = form.get("comment");
  if (to === "customer_called_back" && form.get("satisfaction")) body.satisfaction = Number(form.get("satisfaction"));
  return act(() => api("POST", `/api/tickets/${current.id}/transition`, body));
}

document.getElementById("comment-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const comment = new FormData(transitionForm).get("comment");
  act(() => api("POST", `/api/tickets/${current.id}/comments`, { text: comment }));
});

document.getElementById("assign-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { department: form.get("department") };
  const comment = new FormData(transitionForm).get("comment");
  if (comment) body.comment = comment;
  act(() => api("POST", `/api/tickets/${current.id}/assign`, body)).then(() => event.target.reset());
});

for (const option of filters.querySelectorAll("option[data-label]")) {
  text(option, label(option.dataset.label, option.value));
}
filters.addEventListener("change", () => load().catch((error) => text(message, error.message)));
filters.addEventListener("submit", (event) => event.preventDefault());
// The countdowns move on by themselves; the list is read again every minute.
setInterval(() => {
  for (const row of tbody.rows) {
    const ticket = shown.find((t) => t.id === Number(row.dataset.id));
    if (ticket) countdown(row.cells[7], ticket);
  }
}, 15000);
setInterval(() => load().catch(() => {}), 60000);
load().catch((error) => text(document.getElementById("count"), error.message));
