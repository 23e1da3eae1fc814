// A live count under each text box that has a limit (`data-max-chars`, set by the form: generator.forms.PromptField).
// The boxes carry no maxlength, which would cut a long paste without a word: the count says how far over it is, and
// the form refuses it with the same figures. Near the limit the count becomes a polite live region, so a screen
// reader hears it then and not at every key before. Without this file the form still says so when it is sent.
(function () {
  "use strict";

  var NEAR = 0.9; // from this share of the limit on, the count is announced

  // Characters as the server counts them: without the spaces and line breaks at either end (the form strips
  // them), code points (an emoji is one, not two), and a line break as the two characters a form sends for it.
  function length(text) {
    return Array.from(text.trim().replace(/\r?\n/g, "\r\n")).length;
  }

  function words(count, limit) {
    if (count > limit) {
      return (count - limit).toLocaleString("en") + " characters too many: at most " + limit.toLocaleString("en") + ".";
    }
    if (count >= limit * NEAR) return (limit - count).toLocaleString("en") + " characters left.";
    return count.toLocaleString("en") + " of " + limit.toLocaleString("en") + " characters.";
  }

  function wire(box) {
    var limit = Number(box.dataset.maxChars);
    var counter = document.createElement("p");
    counter.className = "char-count";
    counter.id = box.id + "_count";
    counter.setAttribute("data-char-count", "");
    box.insertAdjacentElement("afterend", counter);
    box.setAttribute("aria-describedby", ((box.getAttribute("aria-describedby") || "") + " " + counter.id).trim());

    function update() {
      var count = length(box.value);
      counter.textContent = words(count, limit);
      counter.setAttribute("aria-live", count >= limit * NEAR ? "polite" : "off");
      counter.classList.toggle("over", count > limit);
    }
    // "input" covers typing and pasting; generate.js sends one when it fills the box with an earlier prompt.
    box.addEventListener("input", update);
    update();
  }

  document.querySelectorAll("textarea[data-max-chars], input[data-max-chars]").forEach(wire);
})();
