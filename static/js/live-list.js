// The containers list, live. The server renders the cells and rows (htmx's websocket
// extension swaps them in, out of band); this only tells it which rows the page shows, and
// reloads the rows when a container appeared.
(function () {
  "use strict";
  function init() {
    const socket = document.querySelector("[data-list-socket]");
    const body = document.getElementById("container-rows");
    if (!socket || !body) return;
    let wrapper = null;
    const ids = () => [...body.querySelectorAll("tr[data-pk]")].map((tr) => parseInt(tr.dataset.pk, 10));
    const watch = () => { if (wrapper) wrapper.send(JSON.stringify({t: "watch", ids: ids()})); };
    socket.addEventListener("htmx:wsOpen", (ev) => { wrapper = ev.detail.socketWrapper; watch(); });
    socket.addEventListener("htmx:wsClose", () => { wrapper = null; });
    socket.addEventListener("htmx:wsAfterMessage", () => {
      const added = document.getElementById("containers-added");
      if (!added || !added.textContent) return;
      added.textContent = "";
      const form = document.querySelector("form.filters");
      if (form && window.htmx) htmx.trigger(form, "submit");
    });
    document.body.addEventListener("htmx:afterSwap", (ev) => { if (ev.detail.target === body) watch(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
