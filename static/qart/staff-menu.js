// The staff menu (<details class="nav-staff"> in base.html) closes as a menu does: on Escape, with focus back on
// its summary, and when focus or a click goes elsewhere. Without this file it opens and closes on its summary only.
(function () {
  "use strict";

  document.querySelectorAll("details.nav-staff").forEach(function (menu) {
    var summary = menu.querySelector("summary");
    menu.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || !menu.open) return;
      event.preventDefault(); // handled: the phone menu around it (nav-menu.js) stays open for this Escape
      menu.open = false;
      summary.focus();
    });
    menu.addEventListener("focusout", function (event) {
      // relatedTarget is null when focus leaves the page or goes nowhere (a click on the page's background).
      if (menu.open && !menu.contains(event.relatedTarget)) menu.open = false;
    });
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
  });
})();
