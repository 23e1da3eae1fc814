// The placement search of the generation page (generator/_placement_search.html) and of the job page's cards
// (generator/_candidate.html), for a team with more placements than a select should carry. The pages work without
// this file: the slug or "Campaign / Placement" typed is found on the server. With it, the text box is a combobox
// (the ARIA 1.2 pattern, focus staying in the box): as one types it asks placements.json for the team's first 20
// matches, lists them with their campaign, says how many in the status line, and a choice (click, or the arrow keys
// and Enter) fills in the hidden placement id. generate.js hears the hidden field's "change" and fills in the short
// link, from the chosen match's data-link and data-team. A box whose form has no team field (a job's card) searches
// the team in its data-placement-team.
(function () {
  "use strict";

  var DELAY_MS = 150;  // a pause in typing before asking: one request per word, not per letter

  function setup(box) {
    var form = box.closest("form");
    var input = box.querySelector('input[name="placement_name"]');
    var hidden = form.elements.placement, team = form.elements.team, fixedTeam = box.dataset.placementTeam || "";
    var list = box.querySelector("[data-placement-matches]"), status = box.querySelector("[data-placement-status]");
    if (!input || !hidden || !list || input.disabled) return;
    var matches = [], active = -1, timer = null, asked = 0;

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function open() {
      if (!matches.length) return;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      active = index;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", String(i === index)); });
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function setChosen(match) {
      hidden.value = match ? match.id : "";
      hidden.dataset.link = match ? match.link : "";
      hidden.dataset.team = match ? match.team : "";
      hidden.dispatchEvent(new Event("change"));
    }

    function choose(index) {
      var match = matches[index];
      input.value = match.campaign + " / " + match.name;
      setChosen(match);
      close();
      status.textContent = "Chosen: " + match.name + ", of " + match.campaign + ".";
    }

    function show(found, more, query) {
      matches = found;
      list.textContent = "";
      found.forEach(function (match, index) {
        var option = document.createElement("li");
        option.id = list.dataset.placementMatches + match.id;  // one search per card: ids of their own
        option.className = "placement-match";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var name = document.createElement("span"), where = document.createElement("span");
        name.textContent = match.name;
        where.className = "placement-match-campaign";
        where.textContent = match.campaign + " · " + match.slug;
        option.append(name, " ", where);
        option.addEventListener("click", function () { choose(index); });
        list.appendChild(option);
      });
      active = -1;
      if (!found.length) {
        close();
        status.textContent = "No placement of this team matches “" + query + "”.";
        return;
      }
      // Focus gone on (Tab) while the answer came: the list stayed open over the next fields until a blur.
      if (document.activeElement === input) open();
      status.textContent = (more ? "The first " + found.length + " matches are shown; type more to narrow them."
        : found.length + (found.length === 1 ? " placement matches." : " placements match.")) +
        " Up and down arrows to move, Enter to choose.";
    }

    // An answer still on its way is for what the box held then: typing on, or another team, makes it stale (it
    // listed the old team's placements, and choosing one switched the form back to that team).
    function forget() {
      asked += 1;
      window.clearTimeout(timer);
    }

    function search() {
      var query = input.value.trim(), ticket = ++asked;
      if (!query) { matches = []; close(); status.textContent = ""; return; }
      var params = new URLSearchParams({ q: query, team: team ? team.value : fixedTeam });
      fetch(box.dataset.placementSearch + "?" + params, { headers: { Accept: "application/json" },
                                                          credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (answer) {
          if (ticket === asked) show(answer.placements, answer.more, query);  // a later answer wins
        })
        .catch(function () {
          if (ticket !== asked) return;
          matches = [];
          close();
          status.textContent = "The search did not answer: type the placement's slug or “Campaign / Placement” " +
            "whole, and it is found when the form is sent.";
        });
    }

    input.addEventListener("input", function () {
      if (hidden.value) setChosen(null);  // the text no longer names the chosen one: found again on the server
      forget();
      timer = window.setTimeout(search, DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      var count = matches.length;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (!count) return;
        event.preventDefault();
        if (list.hidden) { open(); }
        var step = event.key === "ArrowDown" ? 1 : -1;
        highlight(active < 0 ? (step > 0 ? 0 : count - 1) : (active + step + count) % count);
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();  // chooses; it does not send the form
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", close);
    // The focus stays in the box: a press on the list (a match, its scrollbar, its edge) that took it would close the
    // list before choosing or scrolling.
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });
    // The form's team changed (generate.js clears a choice of another team): the next search asks for the new one's.
    if (team) team.addEventListener("change", function () { forget(); matches = []; close(); });
  }

  document.querySelectorAll("[data-placement-search]").forEach(setup);
})();
