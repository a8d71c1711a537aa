// The registry form shows the fields of the chosen kind only ([data-kind-only="kind kind"]).
(function () {
  "use strict";
  const form = document.getElementById("registry-form");
  if (!form) return;
  const kind = form.querySelector("[name=kind]");
  function show() {
    form.querySelectorAll("[data-kind-only]").forEach((el) => {
      el.hidden = el.dataset.kindOnly.split(" ").indexOf(kind.value) < 0;
    });
  }
  kind.addEventListener("change", show);
  show();
})();
