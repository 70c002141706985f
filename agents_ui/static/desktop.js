// The agent desktop: sign-in with hot-desking and queues, pause codes, state and time in state; the current call
// (from the screen-pop socket's document events: cc:pop / cc:update / cc:retract / cc:hello / cc:agent_state /
// cc:socket / cc:call / cc:call-ended), notes, forced wrap-up with dispositions, transfer, tickets and
// appointments pre-filled from the call or for a customer found under Customers (off-call too: the call link is
// added only when a call is on the desk); the callback worklist with click-to-dial, my tickets, customer search.
// Everything goes through the JSON API (common.js api(): CSRF token); caller text goes in as text, never HTML.
import { api, text, zonedTime } from "/static/common.js";

const labels = JSON.parse(document.getElementById("desktop-labels").textContent);
const root = document.querySelector(".desktop");
const extension = root.dataset.extension || null;
const $ = (id) => document.getElementById(id);
const fmt = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
const label = (group, code) => (labels[group] && labels[group][code]) || code || "";

let config = null; // GET /api/desktop/config
let state = null; // GET /api/desktop/state
let stateSince = Date.now(); // when the shown agent state began (ms)
let shownState = null;
let current = null; // { call, customer, state } — the call on the desk (or just ended, for wrap-up)
let wrapupUntil = null; // ms
let chosenSlot = null;
let formsFrom = null; // whose customer the ticket / appointment forms hold: "call" (the caller) or "pick" (Customers)

function say(id, message) { text($(id), message || ""); }

async function act(messageId, fn) {
  say(messageId, "");
  try {
    const result = await fn();
    return result;
  } catch (error) {
    say(messageId, error.message);
    return null;
  }
}

// -- status: sign-in, pause, state and time in state ---------------------------------------------------------------
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

// ``secondsInState``: how long the server says the state has lasted (null: from now).
function showAgentState(name, secondsInState) {
  const badge = $("agent-state");
  const known = typeof secondsInState === "number" && secondsInState >= 0;
  if (name !== shownState) {
    shownState = name;
    stateSince = Date.now() - (known ? secondsInState * 1000 : 0);
  } else if (known) {
    stateSince = Date.now() - secondsInState * 1000;
  }
  badge.dataset.state = name;
  text(badge, label("state", name));
}

function renderState() {
  if (!state) return;
  const line = $("signin-line");
  if (state.signed_in) {
    text(line, fmt(labels.signed_in, { interface: state.interface }) +
      (state.queues && state.queues.length ? ` · ${state.queues.join(", ")}` : ""));
  } else {
    text(line, labels.not_signed_in);
  }
  let name = "logged_out";
  let since = null;
  if (state.signed_in) {
    name = state.paused ? (state.pause_reason === "wrapup" ? "wrapup" : "paused") : "idle";
    if (state.agent_state && !(state.paused && state.agent_state.state === "idle")) {
      name = state.agent_state.state === "paused" && state.pause_reason === "wrapup" ? "wrapup"
        : state.agent_state.state;
      since = state.agent_state.seconds;
    }
  }
  showAgentState(name, since);
  const badge = $("agent-state");
  badge.title = state.pause_reason || "";
  if (state.signed_in && config) {
    for (const box of document.querySelectorAll("#queue-list input")) box.checked = state.queues.includes(box.value);
    if (state.interface) $("interface").value = state.interface;
  }
  if (state.wrapup) {
    wrapupUntil = Date.now() + state.wrapup.seconds_left * 1000;
    if (!current || current.call.uniqueid !== state.wrapup.uniqueid) {
      current = { call: { uniqueid: state.wrapup.uniqueid }, customer: current?.customer || null, state: "ended" };
    }
    showWrapup(true);
  } else if (wrapupUntil !== null) {
    wrapupUntil = null;
    showWrapup(false);
  }
  if (state.call && (!current || current.call.uniqueid !== state.call.uniqueid)) {
    setCall({ uniqueid: state.call.uniqueid, linkedid: state.call.linkedid }, null, "answered");
  }
}

async function refreshState() {
  try {
    state = await api("GET", "/api/desktop/state");
    renderState();
  } catch (error) {
    say("status-message", error.message);
  }
}

function tick() {
  // signed out is not a state the agent is timed in (the badge says it; a running clock there misleads)
  text($("state-timer"), shownState === "logged_out" ? "" : clock(Date.now() - stateSince));
  if (wrapupUntil !== null) {
    const left = Math.max(0, Math.ceil((wrapupUntil - Date.now()) / 1000));
    text($("wrapup-timer"), fmt(labels.wrapup_left, { seconds: left }));
  }
}

async function loadConfig() {
  config = await api("GET", "/api/desktop/config");
  const list = $("queue-list");
  const names = $("queue-names");
  if (list) {
    for (const q of config.queues) {
      const item = document.createElement("label");
      item.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "queue";
      box.value = q;
      item.append(box, document.createTextNode(` ${q}`));
      list.append(item);
    }
    if (config.interface && !$("interface").value) $("interface").value = config.interface;
  }
  for (const q of config.queues) {
    const option = document.createElement("option");
    option.value = q;
    names.append(option);
  }
}

function agentPath(what) { return `/api/agents/${encodeURIComponent(extension)}/${what}`; }

function pause() {
  if (!extension) return null;
  return act("status-message", async () => {
    await api("POST", agentPath("pause"), { reason: $("pause-code").value });
    await refreshState();
  });
}

function unpause() {
  if (!extension) return null;
  return act("status-message", async () => {
    await api("POST", agentPath("unpause"), {});
    await refreshState();
  });
}

if (extension) {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const queues = [...document.querySelectorAll("#queue-list input:checked")].map((b) => b.value);
    const body = { queues };
    const phone = $("interface").value.trim();
    if (phone) body.interface = phone;
    act("status-message", async () => {
      const result = await api("POST", agentPath("login"), body);
      if (result.warnings && result.warnings.length) say("status-message", result.warnings.join("; "));
      await refreshState();
    });
  });
  $("signout").addEventListener("click", () => act("status-message", async () => {
    await api("POST", agentPath("logout"), {});
    await refreshState();
  }));
  $("pause-form").addEventListener("submit", (event) => { event.preventDefault(); pause(); });
  $("unpause").addEventListener("click", () => unpause());
}

// -- the call on the desk -------------------------------------------------------------------------------------------
function customerPhone(customer, call) {
  return (customer && (customer.number || customer.phone || (customer.phones && customer.phones[0]))) ||
    (call && (call.caller || call.caller_number)) || "";
}

function renderCall() {
  const box = $("call-summary");
  box.replaceChildren();
  const card = $("cc-card");
  if (!current) {
    box.dataset.state = "none";
    card.dataset.state = "none";
    const p = document.createElement("p");
    p.className = "empty";
    text(p, labels.no_call);
    box.append(p);
    return;
  }
  const { call } = current;
  box.dataset.state = current.state;
  card.dataset.state = current.state;
  card.dataset.uniqueid = call.uniqueid || "";
  // The call's facts only: who is calling is the card's (card.js, #cc-card), shown once.
  const line = document.createElement("p");
  line.className = "call-line";
  const status = document.createElement("strong");
  status.className = "call-state";
  text(status, current.reason ? label("ended", current.reason) : label("call_state", current.state));
  line.append(status);
  const facts = document.createElement("span");
  facts.className = "facts-line";
  const parts = [];
  if (call.queue) parts.push(`${labels.queue}: ${call.queue}`);
  if (call.wait !== undefined && call.wait !== null) parts.push(fmt(labels.wait, { seconds: Math.round(call.wait) }));
  text(facts, parts.join(" · "));
  if (parts.length) line.append(" ", facts);
  box.append(line);
}

// The forms' customer: id (what the APIs get), name and number (shown as text), the store to book at — the
// viewer's own when they have one (booking elsewhere is refused), else the customer's.
function fillCustomer(customer, phone) {
  const form = $("ticket-form");
  form.elements.customer_id.value = customer && customer.id ? customer.id : "";
  form.elements.customer_name.value = customer && customer.name ? customer.name : "";
  form.elements.phone.value = phone || "";
  const store = (config && config.store_id) || (customer && (customer.store_code ||
    (customer.store && (customer.store.code || customer.store.id)) ||
    (customer.home_store && customer.home_store.code) || customer.home_store_id));
  if (store) $("appointment-form").elements.store.value = store;
}

function callPlaceholder() {
  $("ticket-form").elements.body.placeholder = current && current.call.uniqueid
    ? fmt(labels.from_call, { uniqueid: current.call.uniqueid }) : "";
}

function prefillForms() {
  const customer = current && current.customer;
  fillCustomer(customer, current ? customerPhone(customer, current.call) : "");
  formsFrom = current ? "call" : null;
  callPlaceholder();
}

function setCall(call, customer, callState) {
  if (!call || !call.uniqueid) return;
  const same = current && current.call.uniqueid === call.uniqueid;
  current = {
    call: same ? { ...current.call, ...call } : call,
    customer: customer || (same ? current.customer : null),
    state: callState || (same ? current.state : "ringing"),
  };
  renderCall();
  // A new call takes the forms; later frames of the same call leave a customer the agent picked under Customers.
  if (!same || formsFrom !== "pick") prefillForms(); else callPlaceholder();
  if (current.state === "ringing" || current.state === "answered") {
    showAgentState(current.state === "ringing" ? "ringing" : "talking", null); // the frame is news before the poll
  }
}

function endCall(call, reason) {
  if (!current || (call && call.uniqueid && call.uniqueid !== current.call.uniqueid)) return;
  if (current.state === "ringing") {
    current = null; // retracted before it was ours: nothing to wrap up
    renderCall();
    if (formsFrom !== "pick") prefillForms(); else callPlaceholder();
    refreshState();
    return;
  }
  current.state = "ended";
  current.reason = reason || "ended";
  renderCall();
  if (config && config.wrapup_seconds > 0 && wrapupUntil === null) {
    wrapupUntil = Date.now() + config.wrapup_seconds * 1000;
    showWrapup(true);
  }
  setTimeout(refreshState, 300); // the server's wrap-up (its own timer) replaces the local guess
}

function showWrapup(on) {
  $("wrapup").hidden = !on;
  if (!on) text($("wrapup-timer"), "");
  tick();
}

function uniqueid() {
  if (!current || !current.call.uniqueid) throw new Error(labels.no_call);
  return encodeURIComponent(current.call.uniqueid);
}

function dispose() {
  return act("call-message", async () => {
    const result = await api("POST", `/api/calls/${uniqueid()}/disposition`, { code: $("disposition").value });
    say("call-message", labels.saved);
    wrapupUntil = null;
    showWrapup(false);
    if (current && current.state === "ended") {
      current = null;
      renderCall();
      callPlaceholder(); // the forms keep the customer (a follow-up ticket), not the call: nothing left to link
    }
    await refreshState();
    return result;
  });
}

function endWrapup() {
  return act("call-message", async () => {
    await api("POST", "/api/desktop/wrapup/end", {});
    wrapupUntil = null;
    showWrapup(false);
    await refreshState();
  });
}

$("disposition-form").addEventListener("submit", (event) => { event.preventDefault(); dispose(); });
$("end-wrapup").addEventListener("click", () => endWrapup());

$("note-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  act("call-message", async () => {
    await api("POST", `/api/calls/${uniqueid()}/notes`, { text: form.elements.text.value });
    form.reset();
    say("call-message", labels.saved);
  });
});

$("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  act("call-message", async () => {
    await api("POST", `/api/calls/${uniqueid()}/transfer`, { kind: form.get("kind"), to: String(form.get("to")) });
    say("call-message", labels.transfer_sent);
  });
});

// Frames from the screen-pop socket (agent_socket.js / card.js dispatch them on document).
const detailOf = (event) => event.detail || {};
const customerOf = (d) => d.customer || (d.card && (d.card.customer || d.card)) || null;
const callOf = (d) => d.call || (d.card && d.card.call) || null;

document.addEventListener("cc:pop", (event) => {
  const d = detailOf(event);
  setCall(callOf(d), customerOf(d), d.state || "ringing");
});
document.addEventListener("cc:update", (event) => {
  const d = detailOf(event);
  const call = callOf(d) || (current && current.call);
  if (d.state === "ended") endCall(call, "ended"); else setCall(call, customerOf(d), d.state || "answered");
});
document.addEventListener("cc:retract", (event) => {
  const d = detailOf(event);
  endCall(callOf(d) || (d.uniqueid ? { uniqueid: d.uniqueid } : null), d.reason);
});
document.addEventListener("cc:call", (event) => {
  const d = detailOf(event);
  setCall(callOf(d), customerOf(d), d.state);
});
document.addEventListener("cc:call-ended", (event) => {
  const d = detailOf(event);
  endCall(callOf(d), d.reason);
});
document.addEventListener("cc:hello", (event) => {
  const d = detailOf(event);
  if (d.state) showAgentState(typeof d.state === "string" ? d.state : d.state.state, d.seconds);
  const call = callOf(d);
  if (call) setCall(call, customerOf(d), d.call_state || "answered");
  refreshState();
});
document.addEventListener("cc:agent_state", (event) => {
  const d = detailOf(event);
  const name = d.state === "paused" && (d.paused_reason || d.reason) === "wrapup" ? "wrapup" : d.state;
  if (name) showAgentState(name, d.seconds);
  refreshState();
});
document.addEventListener("cc:socket", (event) => {
  const d = detailOf(event);
  const line = $("socket-state");
  line.dataset.state = d.state || "open";
  line.hidden = d.state === "open";
  text(line, label("socket", d.state));
});

// -- tickets and appointments: for the caller, or for a customer picked under Customers (no call needed) -------------
async function linkToCall(ticket) {
  // Only with a call on the desk: its notes name the ticket, so the call and the ticket are linked both ways in the
  // history. Off-call there is nothing to link, and a refused note never undoes the ticket.
  if (!current || !current.call.uniqueid) return;
  await api("POST", `/api/calls/${uniqueid()}/notes`, { text: `#${ticket.id} ${ticket.subject}`,
    ticket_id: ticket.id }).catch(() => {});
}

function refreshShownCustomer(id) {
  // the customer open under Customers shows the new ticket in their history
  if (shownCustomer && id && shownCustomer.id === id) openCustomer(id).catch(() => {});
}

$("ticket-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target.elements;
  const body = { kind: form.kind.value, severity: form.severity.value, subject: form.subject.value };
  if (form.body.value) body.body = form.body.value;
  if (form.customer_id.value) body.customer_id = Number(form.customer_id.value);
  if (form.phone.value) body.phone = form.phone.value;
  act("forms-message", async () => {
    const ticket = await api("POST", "/api/tickets", body);
    await linkToCall(ticket);
    form.subject.value = "";
    form.body.value = "";
    say("forms-message", fmt(labels.ticket_created, { id: ticket.id }));
    refreshShownCustomer(body.customer_id);
    loadMine();
  });
});

function findSlots() {
  const store = $("appointment-form").elements.store.value.trim();
  return act("forms-message", async () => {
    const data = await api("GET", `/api/slots?store=${encodeURIComponent(store)}&limit=8`);
    const box = $("slots");
    box.replaceChildren();
    box.dataset.store = data.store_id;
    chosenSlot = null;
    if (!data.slots.length) text(box, labels.no_slots);
    for (const slot of data.slots) {
      const item = document.createElement("label");
      item.className = "slot";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "slot";
      radio.value = slot.start;
      radio.addEventListener("change", () => { chosenSlot = slot.start; });
      item.append(radio, document.createTextNode(
        ` ${zonedTime(slot.start, slot.time_zone)}`));
      box.append(item);
    }
  });
}

$("find-slots").addEventListener("click", () => findSlots());

$("appointment-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const customerId = Number($("ticket-form").elements.customer_id.value) || null;
  // Said here, in the page's language, rather than the API's "customer_id is required" for a form with no caller.
  if (!customerId || !chosenSlot) {
    say("forms-message", customerId ? labels.pick_slot : labels.pick_customer);
    return;
  }
  act("forms-message", async () => {
    const ticket = await api("POST", "/api/appointments", {
      customer_id: customerId, store_id: Number($("slots").dataset.store), slot: chosenSlot });
    await linkToCall(ticket);
    say("forms-message", fmt(labels.booked, { id: ticket.id }));
    $("slots").replaceChildren();
    chosenSlot = null;
    refreshShownCustomer(customerId);
    loadMine();
  });
});

// -- work lists: callbacks with click-to-dial, my tickets, customers ---------------------------------------------------
function cell(row, value, className) {
  const td = row.insertCell();
  if (className) td.className = className;
  if (value instanceof Node) td.append(value); else text(td, value);
  return td;
}

// A store's work is shown in the store's hours (``zone``, which the API gives with each item), whatever the
// browser's zone: an agent in another city reads the times the store and the customer live by.
function when(iso, zone) {
  return iso ? zonedTime(iso, zone) : "–";
}

async function loadWorklist() {
  const data = await api("GET", "/api/callbacks?limit=100");
  const tbody = document.querySelector("#worklist tbody");
  tbody.replaceChildren();
  if (!data.callbacks.length) cell(tbody.insertRow(), labels.none).colSpan = 5;
  for (const item of data.callbacks) {
    const row = tbody.insertRow();
    row.dataset.ticket = item.ticket_id;
    if (item.overdue) row.className = "overdue";
    cell(row, `${when(item.due_at, item.time_zone)}${item.overdue ? " · " + labels.overdue : ""}`);
    cell(row, `${label("worktype", item.type)} #${item.ticket_id}`);
    cell(row, item.customer ? `${item.customer.name} (${label("tier", item.customer.tier)})` : "–");
    cell(row, item.phone || "–");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "dial";
    text(button, labels.dial);
    button.disabled = !item.phone;
    button.addEventListener("click", () => act("lists-message", async () => {
      const result = await api("POST", "/api/dial", { number: item.phone, ticket_id: item.ticket_id });
      say("lists-message", fmt(labels.dialling, { number: result.number }));
    }));
    cell(row, button);
  }
}

async function loadMine() {
  const data = await api("GET", "/api/tickets?mine=1&status=new,assigned,in_progress,resolved&limit=100");
  const tbody = document.querySelector("#my-tickets tbody");
  tbody.replaceChildren();
  if (!data.tickets.length) cell(tbody.insertRow(), labels.none).colSpan = 5;
  for (const t of data.tickets) {
    const row = tbody.insertRow();
    row.dataset.id = t.id;
    cell(row, t.id);
    cell(row, label("kind", t.kind));
    cell(row, t.subject, "subject");
    cell(row, label("status", t.status));
    cell(row, t.customer ? t.customer.name : t.phone || "–");
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".tabpanel")) panel.hidden = panel.id !== `tab-${name}`;
  const load = { worklist: loadWorklist, mine: loadMine }[name];
  if (load) load().catch((error) => say("lists-message", error.message));
}
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

let shownCustomer = null;

function fact(list, name, value) {
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  text(dt, name);
  text(dd, value);
  list.append(dt, dd);
}

function historyList(title, items, line) {
  const section = document.createElement("section");
  const h = document.createElement("h4");
  text(h, title);
  const ul = document.createElement("ul");
  for (const item of items) {
    const li = document.createElement("li");
    text(li, line(item));
    ul.append(li);
  }
  if (!items.length) text(ul, labels.none);
  section.append(h, ul);
  return section;
}

async function openCustomer(id) {
  const c = await api("GET", `/api/desktop/customers/${id}`);
  shownCustomer = c;
  $("customer-detail").hidden = false;
  text($("customer-title"), `#${c.id} ${c.name}${c.prospect ? " · " + labels.prospect : ""}`);
  const facts = $("customer-facts");
  facts.replaceChildren();
  fact(facts, labels.phones, c.phones.join(", ") || "–");
  fact(facts, labels.vehicles, c.vehicles.map((v) => `${v.brand} ${v.model} ${v.plate || ""}`.trim()).join("; ") || "–");
  fact(facts, labels.tier_title, label("tier", c.tier));
  const edit = $("customer-edit");
  edit.hidden = !c.prospect;
  $("customer-merge").hidden = !c.prospect;
  edit.elements.name.value = c.name;
  edit.elements.language.value = c.language;
  const history = $("customer-history");
  history.replaceChildren(
    historyList(labels.calls, c.calls, (k) => `${when(k.entered_at, k.time_zone)} · ${k.queue || k.direction} · ` +
      `${k.outcome || ""}${k.disposition ? " · " + k.disposition : ""}`),
    historyList(labels.tickets, c.tickets, (t) => `#${t.id} ${label("kind", t.kind)} · ${t.subject} · ` +
      label("status", t.status)),
    historyList(labels.visits, c.visits, (v) => `${when(v.opened_at, v.time_zone)} · ${v.store || ""} · ` +
      label("visit_status", v.status)),
  );
}

$("customer-search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = event.target.elements.q.value.trim();
  act("lists-message", async () => {
    const data = await api("GET", `/api/desktop/customers?q=${encodeURIComponent(q)}`);
    const ul = $("customer-results");
    ul.replaceChildren();
    if (!data.customers.length) text(ul, labels.none);
    for (const c of data.customers) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.dataset.id = c.id;
      text(button, `${c.name} · ${label("tier", c.tier)} · ${c.phones.join(", ")}${c.plates.length ? " · " + c.plates.join(", ") : ""}`);
      button.addEventListener("click", () => act("lists-message", () => openCustomer(c.id)));
      li.append(button);
      ul.append(li);
    }
  });
});

// The forms take the customer shown under Customers: a ticket or an appointment for them, with or without a call.
function pickShownCustomer() {
  const c = shownCustomer;
  fillCustomer(c, c.phones[0] || "");
  formsFrom = "pick";
  $("slots").replaceChildren();
  chosenSlot = null;
  say("forms-message", fmt(labels.picked, { id: c.id }));
  document.querySelector(".forms-panel").scrollIntoView({ block: "nearest" });
}

$("customer-ticket").addEventListener("click", () => {
  pickShownCustomer();
  $("ticket-form").elements.subject.focus();
});

$("customer-book").addEventListener("click", () => {
  pickShownCustomer();
  if ($("appointment-form").elements.store.value.trim()) findSlots(); else $("appointment-form").elements.store.focus();
});

$("customer-edit").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target.elements;
  act("lists-message", async () => {
    await api("POST", `/api/desktop/customers/${shownCustomer.id}`, { name: form.name.value, language: form.language.value });
    await openCustomer(shownCustomer.id);
    say("lists-message", labels.saved);
  });
});

$("customer-merge").addEventListener("submit", (event) => {
  event.preventDefault();
  const into = Number(event.target.elements.into.value);
  act("lists-message", async () => {
    await api("POST", `/api/desktop/customers/${shownCustomer.id}/merge`, { into });
    await openCustomer(into);
    say("lists-message", fmt(labels.merged, { id: into }));
  });
});

// -- keyboard: answer-side actions without the mouse ------------------------------------------------------------------
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey) return;
  const key = { KeyP: pause, KeyR: unpause, KeyE: endWrapup,
    KeyD: () => ($("wrapup").hidden ? $("disposition").focus() : dispose()) }[event.code];
  if (key) {
    event.preventDefault();
    key();
  }
});

renderCall();
loadConfig().then(refreshState).catch((error) => say("status-message", error.message));
showTab("worklist");
setInterval(tick, 1000);
setInterval(refreshState, 5000); // cc:agent_state makes it immediate when the socket is there
