// Preview campaigns on the agent desktop: the next contact (card + script), dial it (the agent's phone rings
// first) or skip it with a reason, then the disposition. Everything through the JSON API (common.js api(): CSRF);
// server and customer text goes in as text, never HTML.
import { api, text } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const panel = $("preview-panel");

if (panel) {
  const labels = JSON.parse($("preview-labels").textContent);
  const tiers = JSON.parse($("desktop-labels")?.textContent || "{}").tier || {};
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
  let current = null;

  const say = (message) => text($("preview-message"), message);

  function show(shown) {
    current = shown.target ? shown : null;
    $("preview-contact").hidden = !current;
    if (!current) {
      say(labels.none);
      return;
    }
    say("");
    text($("preview-campaign"), current.campaign.name);
    text($("preview-number"), current.target.e164);
    const customer = current.customer || {};
    text($("preview-customer"), customer.name || "");
    text($("preview-tier"), tiers[customer.tier] || customer.tier || "");
    text($("preview-attempts"), fill(labels.attempts, { n: current.target.attempts }));
    const list = $("preview-vehicles");
    list.replaceChildren();
    for (const vehicle of customer.vehicles || []) {
      const item = document.createElement("li");
      text(item, [vehicle.model, vehicle.plate].filter(Boolean).join(" · "));
      list.append(item);
    }
    text($("preview-script"), current.campaign.script || labels.no_script);
    $("preview-disposition").hidden = !current.attempt_id;
    $("preview-dial").disabled = Boolean(current.attempt_id);
    $("preview-skip").disabled = Boolean(current.attempt_id);
  }

  async function guarded(action) {
    try {
      await action();
    } catch (error) {
      say(error.message);
    }
  }

  $("preview-next").addEventListener("click", () => guarded(async () => {
    show(await api("POST", "/api/preview/next", {}));
  }));

  $("preview-dial").addEventListener("click", () => guarded(async () => {
    const dialled = await api("POST", `/api/preview/${current.target.id}/dial`, {});
    current.attempt_id = dialled.attempt_id;
    show(current);
    say(fill(labels.dialling, { number: dialled.number }));
  }));

  $("preview-skip").addEventListener("click", () => guarded(async () => {
    await api("POST", `/api/preview/${current.target.id}/skip`, { reason: $("preview-skip-reason").value });
    show(await api("POST", "/api/preview/next", {}));
    say(labels.skipped);
  }));

  $("preview-disposition").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const body = { attempt_id: current.attempt_id, disposition: $("preview-disposition-code").value };
      const note = $("preview-note").value.trim();
      if (note) body.note = note;
      await api("POST", `/api/campaigns/${current.campaign.id}/dispositions`, body);
      $("preview-note").value = "";
      current = null;
      $("preview-contact").hidden = true;
      say(labels.saved);
    });
  });
}
