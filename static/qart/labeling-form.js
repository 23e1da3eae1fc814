// The new-session form: show only the fields of the chosen source (job ids, a sweep, or how many at random).
// Without JavaScript every field shows, and the server ignores the ones the source does not use.
(function () {
  "use strict";
  const form = document.querySelector("#new-session form");
  if (!form) return;
  const radios = form.querySelectorAll("input[name=source]");

  function showSource() {
    const checked = form.querySelector("input[name=source]:checked");
    if (!checked) return;
    form.querySelectorAll("[data-source-part]").forEach(function (part) {
      part.hidden = part.dataset.sourcePart !== checked.value;
    });
  }

  radios.forEach(function (radio) { radio.addEventListener("change", showSource); });
  showSource();
})();
