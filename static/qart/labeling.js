// The full-screen labeling page: starts the item's clock, polls for the phone's hit and moves on by itself;
// the buttons record what a phone that only previews the link cannot. Every change is a POST with the CSRF token.
(function () {
  "use strict";
  const root = document.getElementById("labeling");
  if (!root) return;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const state = document.getElementById("state");
  const error = document.getElementById("error");
  const elapsed = document.getElementById("elapsed");
  const notes = document.getElementById("notes");
  // The phone being used, for the buttons' answers (a phone's own hit names itself): remembered in this browser, so
  // a sitting's failures count under that phone in the alignment's breakdown rather than "unknown device".
  const phone = document.getElementById("phone");
  const PHONE_KEY = "qart-labeling-phone";
  if (phone) {
    try { phone.value = window.localStorage.getItem(PHONE_KEY) || ""; } catch (e) { /* storage off: type it */ }
    phone.addEventListener("change", function () {
      try { window.localStorage.setItem(PHONE_KEY, phone.value.trim()); } catch (e) { /* kept for this page */ }
    });
  }
  const POLL_MS = 1000;
  const ADVANCE_MS = 1200; // long enough to read "Scanned on …", short enough to keep the rhythm
  let shownAt = performance.now();
  let vote = "";
  let leaving = false;
  let pollTimer = null;

  function seconds() {
    return Math.round((performance.now() - shownAt) / 100) / 10;
  }

  async function post(url, fields) {
    const body = new URLSearchParams(fields || {});
    const response = await fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"},
    });
    if (!response.ok) throw new Error((await response.text()).slice(0, 300) || response.statusText);
    return response.json();
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function describe(s) {
    if (!s.done) return "Waiting for a phone…";
    let text = s.scanned ? "Scanned" : "Could not scan";
    if (s.by_phone && s.device) text += " on " + s.device + (s.app ? " (" + s.app + ")" : "");
    if (s.seconds !== null && s.seconds !== undefined) text += " after " + s.seconds + " s";
    return text + ".";
  }

  // Leave for the next item, first sending a vote or notes typed before the phone's hit arrived.
  async function advance(s) {
    if (leaving) return;
    leaving = true;
    clearInterval(pollTimer);
    state.textContent = describe(s) + " Next…";
    root.classList.add("recorded");
    try {
      if (vote || notes.value.trim()) await post(root.dataset.labelUrl, {vote: vote, notes: notes.value});
    } catch (e) {
      showError("The vote or notes were not saved: " + e.message);
      leaving = false;
      return;
    }
    setTimeout(function () { window.location.assign(s.next || root.dataset.nextUrl); }, ADVANCE_MS);
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.statusUrl, {credentials: "same-origin", cache: "no-store"});
      if (!response.ok) return;
      const s = await response.json();
      if (s.done) advance(s);
    } catch (e) { /* a missed poll is retried a second later */ }
  }

  async function record(outcome) {
    if (leaving) return;
    try {
      const s = await post(root.dataset.labelUrl, {outcome: outcome, seconds: seconds(), vote: vote, notes: notes.value,
                                                   device: phone ? phone.value.trim() : ""});
      vote = "";
      notes.value = "";
      advance(s);
    } catch (e) {
      showError("Not recorded: " + e.message);
    }
  }

  function toggleVote(which) {
    vote = vote === which ? "" : which;
    for (const button of root.querySelectorAll("[data-vote]")) {
      button.setAttribute("aria-pressed", String(button.dataset.vote === vote));
    }
  }

  document.getElementById("scanned").addEventListener("click", function () { record("scanned"); });
  document.getElementById("failed").addEventListener("click", function () { record("failed"); });
  for (const button of root.querySelectorAll("[data-vote]")) {
    button.addEventListener("click", function () { toggleVote(button.dataset.vote); });
  }
  // Single-key shortcuts, unless turned off (WCAG 2.1.4: speech input types letters, and a stray key would record a
  // label): the choice is kept in this browser, on until turned off. Off, the buttons stop showing their keys.
  const shortcuts = document.getElementById("shortcuts");
  const SHORTCUTS_KEY = "qart-labeling-shortcuts";
  const hinted = root.querySelectorAll(".controls [title]");
  for (const element of hinted) element.dataset.hint = element.title;
  function showShortcuts(on) {
    root.dataset.shortcuts = on ? "on" : "off";
    for (const element of hinted) {
      if (on) element.title = element.dataset.hint;
      else element.removeAttribute("title");
    }
  }
  if (shortcuts) {
    try { shortcuts.checked = window.localStorage.getItem(SHORTCUTS_KEY) !== "off"; } catch (e) { /* storage off */ }
    showShortcuts(shortcuts.checked);
    shortcuts.addEventListener("change", function () {
      showShortcuts(shortcuts.checked);
      try { window.localStorage.setItem(SHORTCUTS_KEY, shortcuts.checked ? "on" : "off"); } catch (e) { /* this page */ }
    });
  }
  // While a form control has focus, keys are its own, not shortcuts: letters typed into the notes, arrows in a
  // select, and any key on the shortcuts switch, which one reaches to turn them off. Buttons and links keep the
  // shortcuts (their own keys, Enter and Space, are none): a labeler who tabbed to "Looks good", or clicked it, goes
  // on with S.
  function keepsKeys(element) {
    if (element.isContentEditable || element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
    return element.tagName === "INPUT" && !["button", "submit", "reset", "image"].includes(element.type);
  }
  document.addEventListener("keydown", function (event) {
    if (shortcuts && !shortcuts.checked) return;
    if (keepsKeys(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = {s: "scanned", f: "failed", u: "vote-up", d: "vote-down", ArrowLeft: "back", ArrowRight: "skip"};
    const target = document.getElementById(keys[event.key] || "");
    if (target) {
      event.preventDefault();
      target.click();
    }
  });
  setInterval(function () { if (!leaving) elapsed.textContent = String(Math.floor(seconds())); }, 250);

  if (root.dataset.done === "true") return; // already labelled (came back to it): buttons amend, no clock
  if (root.dataset.scannable === "false") return; // no code on screen: nothing to time, nothing to record
  post(root.dataset.shownUrl).then(function () {
    shownAt = performance.now();
    pollTimer = setInterval(poll, POLL_MS);
  }, function (e) { showError("Could not start this code's clock: " + e.message); });
})();
