// Behaviour the pages declare with data attributes, so that no page needs an inline script
// or handler (the Content-Security-Policy allows scripts from /static/ only):
//   <form data-confirm="Remove it?">                     asks before submitting
//   <form data-confirm="..." data-confirm-when="all" data-confirm-else="...">
//                                                       the message when the "all" box is checked, else the other
//   <select data-autosubmit>                            submits its form when changed
//   <form data-no-submit>                               never submits (scripts handle its fields)
//   <input type="checkbox" data-select-all="name">      checks or clears every checkbox named "name"
//   <a data-base="/url" data-append-query>              follows /url with the page's current query string
(function () {
  "use strict";

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.matches("[data-no-submit]")) { ev.preventDefault(); return; }
    let message = form.dataset.confirm;
    if (message === undefined) return;
    const when = form.dataset.confirmWhen;
    if (when && !(form.elements[when] && form.elements[when].checked)) message = form.dataset.confirmElse || message;
    if (!window.confirm(message)) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);

  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el.matches("select[data-autosubmit]") && el.form) el.form.submit();
    if (el.matches("input[data-select-all]")) {
      document.querySelectorAll(`input[type=checkbox][name="${el.dataset.selectAll}"]`)
        .forEach((box) => { box.checked = el.checked; });
    }
  });

  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[data-append-query]");
    if (link) link.href = link.dataset.base + window.location.search;
  }, true);
})();
