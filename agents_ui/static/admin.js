// The admin pages: lists from /api/admin/…, forms that create or change through the API (CSRF via common.js).
// Every value from the server goes into the page as text (text()), never as HTML.
import { api, csrfToken, text, zonedTime } from "/static/common.js";

const labels = JSON.parse(document.getElementById("admin-labels").textContent);
const message = document.getElementById("message");

function say(value, isError = false) {
  text(message, value);
  message.classList.toggle("error", isError);
}

function cell(row, column) {
  let value = row[column];
  if ((column === "before" || column === "after") && row.detail) value = row.detail[column];
  if (labels.values[column] && labels.values[column][value]) return labels.values[column][value];
  if (column === "weekday") return labels.weekdays[value];
  if (column === "at" && value) return zonedTime(value);  // the audit log's UTC instant, in the reader's time
  if (column === "line" && value === null && "opens" in row) return "*";
  if (Array.isArray(value)) return value.join(", ");
  if (value === true) return labels.yes;
  if (value === false) return labels.no;
  if (value !== null && typeof value === "object") return JSON.stringify(value, null, 1);
  return value;
}

function button(label, className = "") {
  const b = document.createElement("button");
  b.type = "button";
  if (className) b.className = className;
  return text(b, label);
}

// A row that can be changed (the table has data-item, the path of one row) ends with Edit and Delete. Delete asks
// first, in the row itself: the name, "Delete" again to confirm, or Cancel.
function actions(table, row, td) {
  const edit = button(labels.edit, "edit");
  edit.addEventListener("click", () => startEdit(table, row));
  if (table.dataset.actions === "edit") {  // (users are deactivated, by their own form, never deleted)
    td.replaceChildren(edit);
    return;
  }
  const remove = button(labels.delete, "danger delete");
  td.replaceChildren(edit, " ", remove);
  remove.addEventListener("click", () => {
    const question = document.createElement("span");
    text(question, labels.confirm_delete.replace("{name}", row[table.dataset.name]));
    const yes = button(labels.delete, "danger confirm");
    const no = button(labels.cancel, "cancel");
    td.replaceChildren(question, " ", yes, " ", no);
    no.addEventListener("click", () => actions(table, row, td));
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api("DELETE", itemPath(table, row));
        say(labels.deleted);
        reloadLists();
      } catch (error) {
        say(labels.refused.replace("{reason}", error.message), true);
        actions(table, row, td);
      }
    });
    yes.focus();
  });
}

// A row the server would refuse this user to change has no Edit or Delete: data-changeable="column:a,b" (set for a
// store manager) names the values of a row they may change — their store's holidays, not the group-wide ones;
// agents and department staff, not supervisors.
function changeable(table, row) {
  const rule = table.dataset.changeable;
  if (!rule) return true;
  const [column, allowed] = [rule.slice(0, rule.indexOf(":")), rule.slice(rule.indexOf(":") + 1)];
  return allowed.split(",").includes(String(row[column] ?? ""));
}

function itemPath(table, row) {
  return table.dataset.item.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(row[name]));
}

function words(td, value) {
  const parts = (value === null || value === undefined ? "" : String(value)).split(/(\s+)/);
  td.replaceChildren(...parts.filter(Boolean).map((part) => (/^\s+$/.test(part)
    ? document.createTextNode(part) : text(Object.assign(document.createElement("span"), { className: "word" }), part))));
}

function render(table, rows) {
  const columns = table.dataset.columns.split(",");
  const editable = "item" in table.dataset;
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  // data-details="extension:interface": a column shown on a second, smaller line under another (in its head
  // too), rather than as a column of its own, to keep a wide table inside the window.
  const details = new Map((table.dataset.details || "").split(",").filter(Boolean).map((pair) => pair.split(":")));
  const withDetail = (cellNode, column, value, detail) => {
    text(cellNode, value);
    if (!details.has(column)) return;
    // "Local/8001@agent-phones/n" may break after its "@" (a <wbr>), nowhere else
    const line = Object.assign(document.createElement("small"), { className: "subline" });
    const parts = detail === null || detail === undefined ? [] : String(detail).split(/(?<=@)/);
    parts.forEach((part, i) => line.append(...(i ? [document.createElement("wbr")] : []), part));
    cellNode.append(line);
  };
  for (const column of columns) {
    const th = document.createElement("th");
    withDetail(th, column, labels.columns[column] || column, labels.columns[details.get(column)]);
    head.append(th);
  }
  if (editable) head.append(text(document.createElement("th"), labels.actions));
  const body = table.createTBody();
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length + (editable ? 1 : 0);
    td.className = "empty";
    text(td, labels.empty);
  }
  // Columns in data-words wrap at their spaces only: each word is a span that never breaks (CSS .word), so
  // "Hoffmann-Rasmussen" is not cut at its hyphen either.
  const byWord = new Set((table.dataset.words || "").split(",").filter(Boolean));
  for (const row of rows) {
    const tr = body.insertRow();
    if (row.id !== undefined) tr.dataset.id = row.id;
    for (const column of columns) {
      const td = tr.insertCell();
      td.className = column;
      if (byWord.has(column)) words(td, cell(row, column));
      else withDetail(td, column, cell(row, column), cell(row, details.get(column)));
    }
    if (editable) {
      const td = tr.insertCell();
      td.className = "actions";
      if (changeable(table, row)) actions(table, row, td);
    }
  }
}

// Editing reuses the add form: filled with the row, its button saves (PATCH) until saved or cancelled. Fields
// marked data-fixed (a user's name, the initial password) are not edited here.
const editedRows = new WeakMap();  // form -> the row as it was shown

function shown(value) {
  return value === null || value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
}

function startEdit(table, row) {
  const form = document.getElementById(table.dataset.form);
  for (const field of form.elements) {
    if (!field.name) continue;
    field.removeAttribute("aria-invalid");
    field.disabled = "fixed" in field.dataset;
    field.value = shown(row[field.name]);
  }
  editedRows.set(form, row);
  form.dataset.editing = itemPath(table, row);
  const submit = form.querySelector("button[type=submit]");
  submit.dataset.addLabel ??= submit.textContent;
  text(submit, labels.save);
  let cancel = form.querySelector("button.cancel-edit");
  if (!cancel) {
    cancel = button(labels.cancel, "cancel-edit");
    cancel.addEventListener("click", () => { stopEdit(form); say(""); });
    submit.after(cancel);
  }
  cancel.hidden = false;
  say(labels.editing.replace("{name}", row[table.dataset.name]));
  form.scrollIntoView({ block: "nearest" });
  form.elements[0].focus();
}

function stopEdit(form) {
  delete form.dataset.editing;
  editedRows.delete(form);
  for (const field of form.elements) field.disabled = false;
  form.reset();
  const submit = form.querySelector("button[type=submit]");
  if (submit.dataset.addLabel) text(submit, submit.dataset.addLabel);
  const cancel = form.querySelector("button.cancel-edit");
  if (cancel) cancel.hidden = true;
}

// An edit sends the fields changed from the row: an emptied one as null, which clears the value (a DID with no
// store is group-wide); a list field as a list, [] when emptied.
function changedValues(form) {
  const row = editedRows.get(form) || {};
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled) continue;
    const list = "listField" in field.dataset;
    const now = list ? field.value.split(",").map((v) => v.trim()).filter(Boolean) : field.value.trim();
    if ((list ? now.join(",") : now) === shown(row[field.name])) continue;
    body[field.name] = list || now !== "" ? now : null;
  }
  return body;
}

async function load(table, query = "") {
  const asked = String(Number(table.dataset.asked || 0) + 1);  // only the latest answer is shown
  table.dataset.asked = asked;
  try {
    const data = await api("GET", table.dataset.list + query);
    if (table.dataset.asked === asked) render(table, data[table.dataset.key] || []);
  } catch (error) {
    say(labels.refused.replace("{reason}", error.message), true);
  }
}

function values(form) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.value.trim() === "") continue;
    body[field.name] = "listField" in field.dataset
      ? field.value.split(",").map((v) => v.trim()).filter(Boolean) : field.value.trim();
  }
  return body;
}

function reloadLists() {
  for (const table of document.querySelectorAll("table[data-list]")) load(table, table.dataset.query || "");
}

for (const form of document.querySelectorAll("form[data-create], form[data-path]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const field of form.elements) field.removeAttribute("aria-invalid");
    const editing = form.dataset.editing;
    const body = editing ? changedValues(form) : values(form);
    if (editing && !Object.keys(body).length) {  // nothing changed: nothing to send
      stopEdit(form);
      say(labels.saved);
      return;
    }
    let path = editing || form.dataset.create;
    if (form.dataset.path) {
      path = form.dataset.path.replace(/\{(\w+)\}/g, (_, name) => {
        const value = encodeURIComponent(body[name] || "");
        delete body[name];
        return value;
      });
    }
    try {
      await api(editing ? "PATCH" : "POST", path, body);
      say(labels.saved);
      if (editing) stopEdit(form); else form.reset();
      reloadLists();
    } catch (error) {
      say(labels.refused.replace("{reason}", error.message), true);
      const field = error.field && form.elements[error.field];
      if (field && field.setAttribute) {  // the field the server names: marked and focused
        field.setAttribute("aria-invalid", "true");
        field.focus();
      }
    }
  });
}

for (const form of document.querySelectorAll("form[data-query]")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams(values(form)).toString();
    load(document.getElementById(form.dataset.target), query ? `?${query}` : "");
  });
}

const importForm = document.getElementById("import-form");
if (importForm) {
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = importForm.elements.file.files[0];
    if (!file) return;
    // A new import: the previous one's summary and report go now, so a refused file never shows under them.
    say("");
    text(document.getElementById("import-summary"), "");
    document.getElementById("import-report").replaceChildren();
    const dryRun = importForm.elements.dry_run.checked;
    let response;
    let data = null;
    try {
      response = await fetch(
        `/api/admin/import/${encodeURIComponent(importForm.elements.kind.value)}${dryRun ? "?dry_run=1" : ""}`, {
          method: "POST", credentials: "same-origin", body: await file.arrayBuffer(),
          headers: { "Content-Type": "text/csv", "X-CSRF-Token": await csrfToken(), Accept: "application/json" },
        });
      data = await response.json().catch(() => null);  // a proxy's HTML error page: refused with its status
    } catch (error) {
      say(labels.refused.replace("{reason}", error.message), true);
      return;
    }
    if (!response.ok || !data?.result) {
      say(labels.refused.replace("{reason}", data?.error || response.status), true);
      return;
    }
    const r = data.result;
    say(r.dry_run ? labels.checked : labels.written);
    text(document.getElementById("import-summary"), labels.summary.replace(/\{(\w+)\}/g, (_, k) => r[k]));
    render(document.getElementById("import-report"),
      r.report.map((x) => ({ row: x.line, status: x.status, reason: x.message })));
  });
}

// Hours and holidays: the year shown, the provisional warning, the store's hours edited a few days at a time.
const yearForm = document.getElementById("year-form");
let yearShown = 0;  // answers for a year asked before the last one are stale
async function showYear() {
  const year = yearForm.elements.year.value;
  const asked = ++yearShown;
  for (const id of ["holidays", "makeup"]) document.getElementById(id).dataset.query = `?year=${year}`;
  reloadLists();
  try {
    const data = await api("GET", `/api/admin/calendar?year=${encodeURIComponent(year)}`);
    if (asked === yearShown) document.getElementById("provisional").hidden = !data.provisional;
  } catch (error) {
    say(labels.refused.replace("{reason}", error.message), true);
  }
}
if (yearForm) {
  yearForm.addEventListener("submit", (event) => { event.preventDefault(); showYear(); });
  document.getElementById("import-year")?.addEventListener("click", async () => {
    try {
      await api("POST", "/api/admin/calendar/import", { year: Number(yearForm.elements.year.value) });
      say(labels.saved);
      showYear();
    } catch (error) {
      say(labels.refused.replace("{reason}", error.message), true);
    }
  });
  showYear();
}

const hoursStore = document.getElementById("hours-store");
const hoursForm = document.getElementById("hours-form");
let hours = null;  // {store, hours: [...]} as the server last said
async function showHours() {
  const store = hoursStore.elements.store.value.trim();
  if (!store) return;
  try {
    hours = await api("GET", `/api/admin/stores/${encodeURIComponent(store)}/hours`);
    render(document.getElementById("hours"), hours.hours);
  } catch (error) {
    hours = null;
    say(labels.refused.replace("{reason}", error.message), true);
  }
}
async function changeHours(replace) {
  say("");
  if (!hours) await showHours();
  if (!hours) return;
  const days = [...hoursForm.querySelectorAll("input[name=weekday]:checked")].map((box) => Number(box.value));
  const line = hoursForm.elements.line.value || null;
  const kept = hours.hours.filter((h) => !(days.includes(h.weekday) && h.line === line));
  const added = replace ? days.map((weekday) => ({
    weekday, line, opens: hoursForm.elements.opens.value, closes: hoursForm.elements.closes.value,
  })) : [];
  try {
    const answer = await api("PUT", `/api/admin/stores/${encodeURIComponent(hours.store)}/hours`,
      { hours: [...kept, ...added] });
    hours = answer.result;
    render(document.getElementById("hours"), hours.hours);
    say(labels.saved);
  } catch (error) {
    say(labels.refused.replace("{reason}", error.message), true);
  }
}
if (hoursStore) {
  hoursStore.addEventListener("submit", (event) => { event.preventDefault(); showHours(); });
  hoursForm.addEventListener("submit", (event) => { event.preventDefault(); changeHours(true); });
  document.getElementById("hours-clear").addEventListener("click", () => changeHours(false));
  if (hoursStore.elements.store.readOnly) showHours();  // a store manager's own store: shown at once
}

// Routing rules and IVR: the effective settings as JSON, applied only when the server finds all of it valid.
async function showSettings(form) {
  const data = await api("GET", form.dataset.settings);
  form.elements.json.value = JSON.stringify(data[form.dataset.field], null, 2);
  text(document.getElementById(`${form.id.replace("-form", "")}-source`), labels.source[data.source]);
  if (form.dataset.tables) {  // the codes as the desktop shows them, one table per list
    for (const [list, rows] of Object.entries(data[form.dataset.field])) {
      const table = document.getElementById(`${form.dataset.tables}-${list}`);
      if (table) render(table, rows);
    }
  }
}
for (const form of document.querySelectorAll("form[data-settings]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let value;
    try {
      value = JSON.parse(form.elements.json.value);
    } catch (error) {
      say(labels.bad_json.replace("{reason}", error.message), true);
      return;
    }
    try {
      await api("PUT", form.dataset.settings, { [form.dataset.field]: value });
      say(labels.saved);
      await showSettings(form);
    } catch (error) {
      say(labels.refused.replace("{reason}", error.message), true);
    }
  });
  form.querySelector("[data-reset]").addEventListener("click", async () => {
    try {
      await api("DELETE", form.dataset.settings);
      say(labels.saved);
      await showSettings(form);
    } catch (error) {
      say(labels.refused.replace("{reason}", error.message), true);
    }
  });
  showSettings(form).catch((error) => say(labels.refused.replace("{reason}", error.message), true));
}

reloadLists();
