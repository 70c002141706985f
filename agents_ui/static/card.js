// Renders the screen-pop card into an element, from the socket's frames (agent_socket.js), as text only: every
// value from the server or the caller goes in with textContent, never as HTML.
// Emits document CustomEvents for the desktop: "cc:call" {call, customer, state} when a call pops, is answered or
// is shown again after a reconnect (hello), and "cc:call-ended" {call, reason} when it is retracted.
// Labels come from the element's data-l-* attributes (translated by the page template). A page that shows the call
// itself (the desktop's call summary: state, queue, wait) marks the element data-call-facts="page": the card then
// shows the customer only, so nothing appears twice.

function label(root, key, fallback) {
  return root.dataset[`l${key[0].toUpperCase()}${key.slice(1)}`] || fallback;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(root, list, key, fallback, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = el("dt", label(root, key, fallback));
  const dd = el("dd", value);
  dd.dataset.field = key;
  list.append(dt, dd);
}

function section(root, key, fallback, items, format, kindOf) {
  if (!Array.isArray(items) || items.length === 0) return null;
  const box = el("section", undefined, `cc-card-${key}`);
  box.append(el("h3", label(root, key, fallback)));
  const ul = el("ul");
  for (const item of items) {
    const li = el("li", format(item));
    if (kindOf) li.dataset.kind = kindOf(item);
    ul.append(li);
  }
  box.append(ul);
  return box;
}

// One care reminder in words: what ("Birthday (turns 47)", "Insurance expires"), the day, and how far off it is.
const CARE_KINDS = { birthday: "Birthday (turns {age})", insurance: "Insurance expires", maintenance: "Maintenance due" };

function when(root, days) {
  if (typeof days !== "number") return "";
  if (days === 0) return label(root, "careToday", "today");
  if (days === 1) return label(root, "careTomorrow", "tomorrow");
  if (days > 0) return label(root, "careIn", "in {n} days").replace("{n}", String(days));
  if (days === -1) return label(root, "careOverdueDay", "1 day overdue");
  return label(root, "careOverdue", "{n} days overdue").replace("{n}", String(-days));
}

export function careText(root, c) {
  const kind = Object.hasOwn(CARE_KINDS, c.kind) ? c.kind : null;
  const what = kind
    ? label(root, `care${kind[0].toUpperCase()}${kind.slice(1)}`, CARE_KINDS[kind]).replace("{age}", String(c.age ?? ""))
    : String(c.kind ?? "");
  const vehicle = [c.vehicle, c.plate].filter(Boolean).join(" ");
  return [what, c.due, when(root, c.days), vehicle].filter(Boolean).join(" · ");
}

export function renderCard(root, frame) {
  const customer = frame.customer || {};
  const call = frame.call || {};
  root.replaceChildren();
  root.dataset.state = frame.state || frame.call_state || "";
  root.dataset.uniqueid = call.uniqueid || "";
  const title = customer.name || customer.caller_name || customer.number || label(root, "unknown", "Unknown caller");
  const h2 = el("h2", title, "cc-card-name");
  root.append(h2);
  const facts = el("dl", undefined, "cc-card-facts");
  const callFacts = root.dataset.callFacts !== "page";
  if (callFacts) row(root, facts, "state", "State", frame.state || frame.call_state);
  row(root, facts, "callerName", "Caller ID name", customer.name ? customer.caller_name : null);
  row(root, facts, "number", "Number", customer.withheld ? label(root, "withheld", "Withheld") : customer.number);
  const tier = typeof customer.tier === "string" ? customer.tier.replace(/[^a-z]/g, "") : "";
  row(root, facts, "tier", "Tier", tier ? label(root, `tier${tier[0].toUpperCase()}${tier.slice(1)}`, tier) : null);
  row(root, facts, "membership", "Membership",
      customer.membership ? `${customer.membership.level} · ${customer.membership.points}` : null);
  row(root, facts, "language", "Language", customer.language);
  row(root, facts, "consultant", "Consultant", customer.consultant && customer.consultant.name);
  row(root, facts, "advisor", "Advisor", customer.advisor && customer.advisor.name);
  row(root, facts, "store", "Store", customer.store);
  row(root, facts, "birthday", "Date of birth", customer.birthday);
  if (callFacts) {
    row(root, facts, "queue", "Queue", call.queue);
    row(root, facts, "wait", "Wait", typeof call.wait === "number" ? `${Math.round(call.wait)} s` : null);
  }
  row(root, facts, "ivr", "IVR", customer.ivr_path);
  if (customer.new_prospect) row(root, facts, "prospect", "New prospect", "✓");
  root.append(facts);
  for (const part of [
    section(root, "reasons", "Why this tier", customer.reasons, (r) => r),
    section(root, "care", "Care reminders", customer.care, (c) => careText(root, c), (c) => String(c.kind ?? "")),
    section(root, "vehicles", "Vehicles", customer.vehicles,
            (v) => [v.brand, v.model, v.plate, v.vin, v.mileage_km && `${v.mileage_km} km`].filter(Boolean).join(" · ")),
    section(root, "tickets", "Open tickets", customer.open_tickets, (t) => `#${t.id} ${t.kind} ${t.status} ${t.subject}`),
    section(root, "orders", "Last orders", customer.orders, (o) => `${o.date} ${o.kind} ${o.amount}`),
    section(root, "visits", "Last visits", customer.visits, (v) => `${v.date} ${v.status} ${v.description || ""}`),
    section(root, "calls", "Last calls", customer.calls, (c) => `${c.date} ${c.outcome || ""} ${c.disposition || ""}`),
    section(root, "variants", "Also on this number", customer.variants, (v) => v.name),
  ]) {
    if (part !== null) root.append(part);
  }
  root.hidden = false;
}

// Wire a card element to the socket's events; returns a function that stops listening.
export function bindCard(root) {
  let current = null;
  const show = (event) => {
    const frame = event.detail;
    if (frame.type === "hello" && !frame.call) return;
    if (frame.type === "update" && !frame.customer && current && current.customer) {
      frame.customer = current.customer; // an answer without a new card keeps the one on screen
    }
    current = frame;
    renderCard(root, frame);
    document.dispatchEvent(new CustomEvent("cc:call", {
      detail: { call: frame.call, customer: frame.customer, state: frame.state || frame.call_state },
    }));
  };
  const retract = (event) => {
    const frame = event.detail;
    if (current && frame.call && current.call && frame.call.uniqueid !== current.call.uniqueid) return;
    root.hidden = true;
    root.replaceChildren();
    root.dataset.state = "retracted";
    root.dataset.reason = frame.reason || "";
    current = null;
    document.dispatchEvent(new CustomEvent("cc:call-ended", { detail: { call: frame.call, reason: frame.reason } }));
  };
  const listeners = [["cc:hello", show], ["cc:pop", show], ["cc:update", show], ["cc:retract", retract]];
  for (const [name, fn] of listeners) document.addEventListener(name, fn);
  return () => { for (const [name, fn] of listeners) document.removeEventListener(name, fn); };
}
