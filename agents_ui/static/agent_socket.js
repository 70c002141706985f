// The agent's screen-pop socket (README "Screen pop"). Import and call connectAgentSocket() once per page:
// - gets a one-time ticket (POST /api/ws-ticket with the page's CSRF header) and opens the URL it names;
// - after a drop, reconnects with a fresh ticket and &last_seq=N (the last frame seen), backing off 0.5 s … 15 s;
// - re-dispatches every frame as a document CustomEvent "cc:<type>" (detail: the frame), once per seq, and
//   "cc:socket" {state: "open" | "reconnecting", code, reason} when the connection opens or drops.
import { api } from "/static/common.js";

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
// Closes that another try cannot fix: the page must be reloaded (logged out, not allowed).
const FINAL = new Set([4401, 4403, 4404]);

function emit(type, detail) {
  document.dispatchEvent(new CustomEvent(type, { detail }));
}

export function connectAgentSocket({ socket = "agent" } = {}) {
  let lastSeq = null;
  let delay = MIN_DELAY;
  let stopped = false;
  let ws = null;
  let ticketFailures = 0;

  async function open() {
    let url;
    try {
      url = (await api("POST", "/api/ws-ticket", { socket })).url;
      ticketFailures = 0;
    } catch (error) {
      ticketFailures += 1;
      if (error.status === 401 || error.status === 403) {
        emit("cc:socket", { state: "closed", code: error.status, reason: error.message });
        return;
      }
      retry(0, "ticket: " + error.message);
      return;
    }
    if (lastSeq !== null) url += `&last_seq=${lastSeq}`;
    ws = new WebSocket(url);
    ws.addEventListener("open", () => {
      delay = MIN_DELAY;
      emit("cc:socket", { state: "open" });
    });
    ws.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (typeof frame !== "object" || frame === null || typeof frame.type !== "string") return;
      if (frame.type === "hello") {
        lastSeq = frame.seq;
      } else if (typeof frame.seq === "number") {
        if (lastSeq !== null && frame.seq <= lastSeq) return; // never the same frame twice
        lastSeq = frame.seq;
      }
      emit(`cc:${frame.type}`, frame);
    });
    ws.addEventListener("close", (event) => {
      ws = null;
      if (stopped) return;
      if (FINAL.has(event.code) && event.reason !== "ticket invalid, used or expired") {
        emit("cc:socket", { state: "closed", code: event.code, reason: event.reason });
        return;
      }
      retry(event.code, event.reason);
    });
  }

  function retry(code, reason) {
    emit("cc:socket", { state: "reconnecting", code, reason, in_ms: delay });
    const wait = delay * (0.8 + Math.random() * 0.4);
    delay = Math.min(MAX_DELAY, delay * 2);
    setTimeout(() => { if (!stopped) open(); }, ticketFailures > 5 ? MAX_DELAY : wait);
  }

  open();
  return {
    close() {
      stopped = true;
      if (ws !== null) ws.close(1000, "page closed");
    },
    get lastSeq() { return lastSeq; },
  };
}
