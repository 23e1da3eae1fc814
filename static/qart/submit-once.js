// A form that changes something is sent once per press, on every page of the site and of the admin: a double click
// (or Enter pressed twice) on "Create campaign", "Generate" or "Invite" sent it twice, which made two jobs or
// invitations, or showed the second answer ("this name is taken") for a campaign that had just been made. The second
// submit while the first is on its way is dropped, and the form says it is busy (aria-busy, site.css dims its
// buttons). Buttons are not disabled: a disabled submitter is left out of what the form sends (archived=0 on "Bring
// back").
// The form is sendable again after a few seconds (a download that leaves the page where it is) or when the page is
// shown again from the back/forward cache. A form marked data-repeatable is left alone.
(function () {
  "use strict";
  var PATIENCE_MS = 5000;

  function release(form) {
    delete form.dataset.sending;
    form.removeAttribute("aria-busy");
  }

  // On the window, so it runs after every page script's own listener on the document (dashboard.js's "are you
  // sure?" among them): a submit one of them stopped is not counted as sent.
  window.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.method !== "post" || "repeatable" in form.dataset) return;
    if (form.dataset.sending) {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    form.setAttribute("aria-busy", "true");
    window.setTimeout(function () { release(form); }, PATIENCE_MS);
  });

  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sending]").forEach(release);
  });
})();
