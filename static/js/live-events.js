// The live events page: rows come rendered by the server over htmx's websocket extension
// (newest first); this filters them by type and text and keeps at most KEEP.
(function () {
  "use strict";
  const KEEP = 1000;
  function init() {
    const body = document.querySelector("[data-events]");
    const socket = document.querySelector("[data-events-socket]");
    if (!body || !socket) return;
    const typeSel = document.querySelector("[data-events-type]");
    const text = document.querySelector("[data-events-text]");
    const statusEl = document.querySelector("[data-events-status]");
    const visible = (tr) => (!typeSel.value || tr.dataset.type === typeSel.value) &&
      (!text.value || tr.textContent.toLowerCase().includes(text.value.toLowerCase()));
    const apply = () => body.querySelectorAll("tr").forEach((tr) => { tr.hidden = !visible(tr); });
    typeSel.addEventListener("change", apply);
    text.addEventListener("input", apply);
    let opened = 0;
    socket.addEventListener("htmx:wsOpen", () => {
      if (opened++) body.textContent = "";  // a reconnect sends the last hour again
      statusEl.textContent = "Live.";
    });
    socket.addEventListener("htmx:wsClose", (ev) => {
      const code = ev.detail.event.code;
      statusEl.textContent = (BerthLive.FINAL[code]) || "Disconnected; reconnecting…";
    });
    socket.addEventListener("htmx:wsAfterMessage", () => {
      const newest = body.firstElementChild;
      if (newest) newest.hidden = !visible(newest);
      while (body.childElementCount > KEEP) body.lastElementChild.remove();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
