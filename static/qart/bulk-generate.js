// The bulk generation page: show the fields of the chosen engine only (the picture for halftone, the prompt and
// its settings for diffusion), as the generation page does. Without this file every field shows and still works.
(function () {
  "use strict";
  var engine = document.querySelector('select[name="engine"]');
  if (!engine || !engine.value) return;
  function showEngine() {
    document.querySelectorAll("[data-engine-part]").forEach(function (part) {
      part.hidden = part.dataset.enginePart !== engine.value;
    });
  }
  engine.addEventListener("change", showEngine);
  showEngine();
})();
