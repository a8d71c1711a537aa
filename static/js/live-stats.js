// Live charts of one container's CPU %, memory, network and block IO (uPlot).
(function () {
  "use strict";
  const KEEP = 120;

  function human(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0; let v = Math.abs(bytes);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (bytes < 0 ? "-" : "") + v.toFixed(v < 10 && i ? 1 : 0) + " " + units[i];
  }

  function chart(el, title, series, fmt) {
    const opts = {title, width: Math.max(280, el.clientWidth || 400), height: 180,
      scales: {x: {time: true}}, axes: [{}, {values: (u, vals) => vals.map(fmt), size: 70}],
      series: [{}, ...series.map((s) => ({label: s[0], stroke: s[1], width: 2, value: (u, v) => (v == null ? "–" : fmt(v))}))]};
    const data = [[], ...series.map(() => [])];
    return {plot: new uPlot(opts, data, el), data};
  }

  function init(root) {
    const charts = {
      cpu: chart(root.querySelector("[data-chart=cpu]"), "CPU %", [["CPU", "#2563eb"]], (v) => v.toFixed(Math.abs(v) < 1 ? 2 : 1) + "%"),
      mem: chart(root.querySelector("[data-chart=mem]"), "Memory", [["used", "#059669"]], human),
      net: chart(root.querySelector("[data-chart=net]"), "Network (per second)", [["rx", "#7c3aed"], ["tx", "#d97706"]], human),
      blk: chart(root.querySelector("[data-chart=blk]"), "Block IO (per second)", [["read", "#0891b2"], ["write", "#dc2626"]], human),
    };
    const now = root.querySelector("[data-stats-now]");
    const statusEl = root.querySelector("[data-stats-status]");
    let prev = null;
    function push(c, t, values) {
      c.data[0].push(t);
      values.forEach((v, i) => c.data[i + 1].push(v));
      if (c.data[0].length > KEEP) c.data.forEach((a) => a.shift());
      c.plot.setData(c.data);
    }
    BerthLive.connect(`/ws/containers/${root.dataset.container}/stats/`, {
      open: () => { statusEl.textContent = "Waiting for the first reading…"; },
      message: (ev, ws) => {
        const m = JSON.parse(ev.data);
        if (m.t === "ping") { ws.send('{"t":"pong"}'); return; }
        if (m.t === "state") { statusEl.textContent = m.running ? "Live: one reading a second." : `The container is ${m.status}: no readings.`; root.dataset.state = m.status; return; }
        if (m.t !== "stats") return;
        const t = m.time;
        push(charts.cpu, t, [m.cpu_percent]);
        push(charts.mem, t, [m.memory_usage]);
        if (prev) {
          const dt = Math.max(0.001, t - prev.time);
          push(charts.net, t, [(m.net_rx - prev.net_rx) / dt, (m.net_tx - prev.net_tx) / dt]);
          push(charts.blk, t, [(m.block_read - prev.block_read) / dt, (m.block_write - prev.block_write) / dt]);
        }
        prev = m;
        now.textContent = `CPU ${m.cpu_percent.toFixed(1)}% · memory ${human(m.memory_usage)} of ${human(m.memory_limit)} (${m.memory_percent}%) · net ↓${human(m.net_rx)} ↑${human(m.net_tx)} · block ${human(m.block_read)} read, ${human(m.block_write)} written · ${m.pids} processes`;
        root.dataset.samples = String((+root.dataset.samples || 0) + 1);
      },
      status: (text) => { statusEl.textContent = text; },
    });
    window.addEventListener("resize", () => Object.values(charts).forEach((c) => {
      const w = c.plot.root.parentElement.clientWidth; if (w) c.plot.setSize({width: w, height: 180}); }));
  }

  window.BerthStats = {init};
  function start() { document.querySelectorAll("[data-stats]:not([data-lazy])").forEach(init); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
