// The home page's screen pop (for users with an extension): the socket, the card, and the connection status.
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
