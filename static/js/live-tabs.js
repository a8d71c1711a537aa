// Tabs of the live panel; the stats socket opens when its tab is first shown.
(function () {
  "use strict";
  function init() {
    document.querySelectorAll(".live-panel").forEach((panel) => {
      const tabs = panel.querySelectorAll("[data-tab]");
      const show = (name) => {
        tabs.forEach((t) => t.setAttribute("aria-selected", String(t.dataset.tab === name)));
        panel.querySelectorAll("[data-tab-panel]").forEach((p) => { p.hidden = p.dataset.tabPanel !== name; });
        const stats = panel.querySelector(`[data-tab-panel="${name}"] [data-stats][data-lazy]`);
        if (stats) { delete stats.dataset.lazy; window.BerthStats.init(stats); }
        panel.querySelectorAll(`[data-tab-panel="${name}"] .terminal-pane`).forEach((p) => p.refit && p.refit());
        history.replaceState(null, "", "#" + name);
      };
      tabs.forEach((t) => t.addEventListener("click", () => show(t.dataset.tab)));
      const wanted = location.hash.slice(1);
      const first = [...tabs].find((t) => t.dataset.tab === wanted) || [...tabs].find((t) => t.getAttribute("aria-selected") === "true");
      if (first) show(first.dataset.tab);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
