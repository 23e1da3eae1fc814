// The admin's menu (Django's nav sidebar) starts folded on a window narrower than NARROW px, where beside it a list
// has ~630 px and its last columns scroll sideways out of view. Django opens the menu unless the browser remembers a
// choice (localStorage, nav_sidebar.js): a browser with no choice yet gets "folded" for this page only, put there
// before Django's deferred script reads it. The « button opens it again, and that choice is remembered as Django does.
(function () {
  "use strict";

  var KEY = "django.admin.navSidebarIsOpen"; // Django's own key (django/contrib/admin/static/admin/js/nav_sidebar.js)
  var NARROW = 1600; // a 1280 px window with the menu folded leaves each list what 1580 px leave beside it
  try {
    if (localStorage.getItem(KEY) === null && window.innerWidth < NARROW) {
      localStorage.setItem(KEY, "false");
      // Taken back once Django's deferred script has read it (deferred scripts run before DOMContentLoaded): kept,
      // it was a choice the person never made, and the same browser on a wide screen later kept the menu folded.
      document.addEventListener("DOMContentLoaded", function () {
        localStorage.removeItem(KEY);
      });
    }
  } catch (error) {
    // Storage refused (a private window's settings): Django's default, the menu open, as before.
  }
})();
