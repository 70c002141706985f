// A page's screen pop (the home page, the desktop): the socket, the card in #cc-card, and the connection status
// in #cc-socket when the page has one.
import { connectAgentSocket } from "/static/agent_socket.js";
import { bindCard } from "/static/card.js";

const root = document.getElementById("cc-card");
const status = document.getElementById("cc-socket");
if (root !== null) {
  bindCard(root);
  document.addEventListener("cc:socket", (event) => {
    if (status === null) return;
    status.dataset.state = event.detail.state;
    status.textContent = status.dataset[`l${event.detail.state[0].toUpperCase()}${event.detail.state.slice(1)}`]
      || event.detail.state;
  });
  connectAgentSocket();
}
