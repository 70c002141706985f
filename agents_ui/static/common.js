// Shared by every page (loaded as an ES module: no inline script, the CSP forbids it).
// - the language switch: remembers the choice in the ccserver_lang cookie and loads the page again in it (by GET);
// - api(): fetch JSON from the API with the page's CSRF token (unsafe methods need it with a session cookie).

const LANG_COOKIE = "ccserver_lang";

function switchLanguage(lang) {
  document.cookie = `${LANG_COOKIE}=${encodeURIComponent(lang)}; Path=/; Max-Age=31536000; SameSite=Strict`;
  // Load the page again by GET: reload() would post a form again (the login after a wrong password: expired).
  window.location.replace(window.location.pathname + window.location.search);
}

for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => switchLanguage(button.dataset.lang));
}

let csrf = null;

export async function csrfToken() {
  if (csrf === null) {
    const me = await fetch("/api/me", { credentials: "same-origin" });
    if (!me.ok) throw new Error(`not signed in (${me.status})`);
    csrf = (await me.json()).csrf_token;
  }
  return csrf;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = await csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.headers.get("Content-Type")?.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error(data?.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.field = data?.field;
    throw error;
  }
  return data;
}

// Text from the server or the caller goes into the page as text, never as HTML.
export function text(element, value) {
  element.textContent = value === null || value === undefined ? "" : String(value);
  return element;
}

// A time in a given zone (the store's), with the zone's short name, in the page's language: an appointment slot is
// the store's hour whatever the browser's zone. Without a zone, the browser's (as before).
export function zonedTime(iso, zone) {
  const date = new Date(iso);
  const lang = document.documentElement.lang;
  if (!zone) return date.toLocaleString(lang, { dateStyle: "short", timeStyle: "short" });
  const shown = date.toLocaleString(lang, { dateStyle: "short", timeStyle: "short", timeZone: zone });
  const name = new Intl.DateTimeFormat(lang, { timeZone: zone, timeZoneName: "short" }).formatToParts(date)
    .find((part) => part.type === "timeZoneName");
  return name ? `${shown} ${name.value}` : shown;
}

// The Asterisk link banner (_asterisk_banner.html): none configured, or down since when (ccserver/ami/link.py);
// hidden while every link is up.
export function showAsterisk(status) {
  const banner = document.getElementById("asterisk-banner");
  if (!banner || !status) return;
  let message = "";
  if (!status.configured) {
    message = banner.dataset.lNone;
  } else if (!status.connected) {
    const lang = document.documentElement.lang || undefined;
    const since = status.down_since
      ? new Date(status.down_since * 1000).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }) : "?";
    const servers = status.servers.filter((s) => s.state === "disconnected").map((s) => s.server).join(", ");
    message = banner.dataset.lDown.replace("{since}", since).replace("{servers}", servers);
  }
  const forCampaigns = status.configured ? banner.dataset.lDialing : banner.dataset.lNoStart;
  if (message && forCampaigns) message += ` ${forCampaigns}`;
  text(banner, message);
  banner.hidden = !message;
}
