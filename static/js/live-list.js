// The containers list, live: CPU and memory of the rows on the page, and rows re-rendered
// when their container changes state, whoever changed it.
(function () {
  "use strict";
  function human(bytes) {
    const units = ["B", "KiB", "MiB", "GiB"]; let i = 0; let v = bytes;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 && i ? 1 : 0) + " " + units[i];
  }
  function init() {
    const body = document.getElementById("container-rows");
    if (!body) return;
    let conn = null;
    const ids = () => [...body.querySelectorAll("tr[data-pk]")].map((tr) => parseInt(tr.dataset.pk, 10));
    const watch = () => conn && conn.send(JSON.stringify({t: "watch", ids: ids()}));
    conn = BerthLive.connect("/ws/containers/live/", {
      open: () => watch(),
      message: (ev, ws) => {
        const m = JSON.parse(ev.data);
        if (m.t === "ping") ws.send('{"t":"pong"}');
        else if (m.t === "stats") {
          for (const [pk, s] of Object.entries(m.rows)) {
            const tr = document.getElementById("container-row-" + pk);
            if (!tr) continue;
            tr.querySelector("[data-live-cpu]").textContent = s.cpu.toFixed(1) + "%";
            tr.querySelector("[data-live-mem]").textContent = human(s.mem);
          }
        } else if (m.t === "rows") {
          for (const [pk, html] of Object.entries(m.rows)) {
            const tr = document.getElementById("container-row-" + pk);
            if (tr && html) tr.outerHTML = html;
          }
          m.removed.forEach((pk) => { const tr = document.getElementById("container-row-" + pk); if (tr) tr.remove(); });
          if (m.added && window.htmx) {
            const form = document.querySelector("form.filters");
            if (form) htmx.trigger(form, "submit");
          }
        }
      },
      status: () => {},
    });
    document.body.addEventListener("htmx:afterSwap", (ev) => { if (ev.detail.target === body) watch(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
