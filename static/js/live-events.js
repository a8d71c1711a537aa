// The live events page: newest first, filtered by type and text, at most KEEP rows.
(function () {
  "use strict";
  const KEEP = 1000;
  function init() {
    const body = document.querySelector("[data-events]");
    if (!body) return;
    const typeSel = document.querySelector("[data-events-type]");
    const text = document.querySelector("[data-events-text]");
    const statusEl = document.querySelector("[data-events-status]");
    const visible = (tr) => (!typeSel.value || tr.dataset.type === typeSel.value) &&
      (!text.value || tr.textContent.toLowerCase().includes(text.value.toLowerCase()));
    const apply = () => body.querySelectorAll("tr").forEach((tr) => { tr.hidden = !visible(tr); });
    typeSel.addEventListener("change", apply);
    text.addEventListener("input", apply);
    BerthLive.connect("/ws/events/", {
      open: (ws, again) => { statusEl.textContent = "Live."; if (again) body.textContent = ""; },
      message: (ev, ws) => {
        const m = JSON.parse(ev.data);
        if (m.t === "ping") { ws.send('{"t":"pong"}'); return; }
        if (m.t !== "event") return;
        const e = m.event, attrs = e.Actor.Attributes || {};
        const tr = document.createElement("tr");
        tr.dataset.type = e.Type; tr.dataset.action = e.Action;
        const cells = [new Date(e.timeNano / 1e6).toLocaleString(), e.Type, e.Action,
          (attrs.name || "") + " " + e.Actor.ID.slice(0, 12),
          Object.entries(attrs).filter(([k]) => k !== "name").map(([k, v]) => `${k}=${v}`).join(" ")];
        cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
        tr.hidden = !visible(tr);
        body.insertBefore(tr, body.firstChild);
        while (body.childElementCount > KEEP) body.lastElementChild.remove();
      },
      status: (t) => { statusEl.textContent = t; },
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
