// The phone menu (the "Menu" button before <nav id="main-nav"> in base.html) is a disclosure: the button says whether
// the links are open (aria-expanded), and Escape closes them with focus back on the button. Loaded in the <head>, not
// deferred: the class it sets at once lets site.css fold the links before the first paint. Without this file the
// button stays hidden and the links stay in sight, since site.css folds them only under that class.
(function () {
  "use strict";
  document.documentElement.classList.add("nav-folds");

  function wire() {
    var button = document.getElementById("nav-toggle");
    var links = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!links) return;
    var isOpen = function () { return button.getAttribute("aria-expanded") === "true"; };
    button.addEventListener("click", function () {
      button.setAttribute("aria-expanded", String(!isOpen()));
    });
    document.addEventListener("keydown", function (event) {
      // The staff menu inside takes the first Escape (staff-menu.js marks it handled); the next one closes this.
      if (event.key !== "Escape" || event.defaultPrevented || !isOpen()) return;
      if (event.target !== button && !links.contains(event.target)) return;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
