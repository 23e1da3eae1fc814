// The generation pages' small behaviours. Everything works without this file; it only saves typing and reloads:
// - the form: show the chosen engine's fields, reuse an earlier prompt, show what the presets mean, fill in a
//   placement's short link;
// - a running job: poll its status.json every second and reload the page once it has finished.
(function () {
  "use strict";

  function readJSON(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function setupForm(form) {
    var presets = readJSON("presets") || { look: {}, speed: {} };
    var links = readJSON("placement-links") || {};
    var fields = form.elements;

    // Show the parts of the form that the chosen engine uses (the picture for halftone, the prompt for diffusion).
    var engines = form.querySelectorAll('input[name="engine"]');
    function showEngine() {
      var checked = form.querySelector('input[name="engine"]:checked');
      if (!checked) return;
      form.querySelectorAll("[data-engine-part]").forEach(function (part) {
        part.hidden = part.dataset.enginePart !== checked.value;
      });
    }
    engines.forEach(function (radio) { radio.addEventListener("change", showEngine); });
    showEngine();

    document.querySelectorAll("[data-reuse-prompt]").forEach(function (button) {
      button.addEventListener("click", function () {
        fields.prompt.value = button.dataset.prompt;
        fields.negative_prompt.value = button.dataset.negative;
        fields.prompt.focus();
        fields.prompt.scrollIntoView({ block: "center", behavior: "smooth" });
      });
    });

    // A blank advanced field takes its preset's value, so the placeholder shows it. Picking a preset clears the
    // fields it governs: the click says "use these".
    function showPreset(group, clear) {
      var checked = form.querySelector('input[name="' + group + '"]:checked');
      var values = (checked && presets[group][checked.value]) || {};
      Object.keys(values).forEach(function (name) {
        var input = fields[name];
        if (!input) return;
        input.placeholder = values[name];
        if (clear) input.value = "";
      });
    }
    ["look", "speed"].forEach(function (group) {
      showPreset(group, false);
      form.querySelectorAll('input[name="' + group + '"]').forEach(function (radio) {
        radio.addEventListener("change", function () { showPreset(group, true); });
      });
    });

    // A picture over the upload cap would get a bare 413 page, and what was typed would be lost: say so here.
    var picture = fields.picture;
    if (picture && picture.dataset.maxBytes) {
      picture.addEventListener("change", function () {
        var file = picture.files[0], limit = Number(picture.dataset.maxBytes);
        picture.setCustomValidity(file && file.size > limit
          ? "This picture is " + (file.size / 1048576).toFixed(1) + " MB; pictures up to " +
            (limit / 1048576).toFixed(0) + " MB are accepted. Save it smaller first."
          : "");
        picture.reportValidity();
      });
    }

    // A placement's short link becomes the content unless someone typed their own; its team is the job's team.
    var placement = fields.placement, content = fields.content, team = fields.team;
    if (!placement || !content) return;
    var autoLink = links[placement.value] ? links[placement.value].link : null;
    placement.addEventListener("change", function () {
      var chosen = links[placement.value];
      if (!content.value || content.value === autoLink) content.value = chosen ? chosen.link : "";
      autoLink = chosen ? chosen.link : null;
      if (chosen && team && String(team.value) !== String(chosen.team)) {
        team.value = chosen.team;
        limitPlacements();
      }
    });
    function limitPlacements() {
      if (!team || team.type === "hidden") return;
      Array.prototype.forEach.call(placement.options, function (option) {
        var entry = links[option.value];
        option.disabled = Boolean(entry) && String(entry.team) !== String(team.value);
      });
      if (placement.selectedOptions[0] && placement.selectedOptions[0].disabled) {
        placement.value = "";
        placement.dispatchEvent(new Event("change"));
      }
    }
    if (team) {
      team.addEventListener("change", limitPlacements);
      limitPlacements();
    }
  }

  function setupLive(box) {
    var url = box.dataset.statusUrl;
    var bar = box.querySelector("[data-bar]");
    var meter = box.querySelector("[role=progressbar]");
    var stage = box.querySelector("[data-stage]");
    var percent = box.querySelector("[data-percent]");
    var queue = box.querySelector("[data-queue]");
    var note = box.querySelector("[data-note]");
    var pill = document.querySelector("[data-status]");
    var delay = 1000;

    function render(state) {
      var value = Math.round(state.progress * 100);
      bar.style.width = value + "%";
      meter.setAttribute("aria-valuenow", value);
      percent.textContent = value + "%";
      stage.textContent = state.stage_label;
      pill.textContent = state.status_label;
      pill.className = "pill pill-" + state.status;
      if (state.queue_position === 1) queue.textContent = "· next in line";
      else if (state.queue_position) queue.textContent = "· " + state.queue_position + " in the queue";
      else queue.textContent = "";
      note.textContent = "This page updates by itself.";
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (state) {
          render(state);
          if (state.finished) {
            window.location.reload(); // the finished page shows the candidates, rendered by the server
            return;
          }
          delay = 1000;
          schedule();
        })
        .catch(function () {
          note.textContent = "Lost touch with the server; trying again…";
          delay = Math.min(delay * 2, 15000);
          schedule();
        });
    }

    function schedule() {
      // A hidden tab needs no second-by-second updates.
      window.setTimeout(poll, document.hidden ? Math.max(delay, 5000) : delay);
    }
    schedule();
  }

  var form = document.querySelector("[data-generate-form]");
  if (form) setupForm(form);
  var live = document.querySelector("[data-job-live]");
  if (live) setupLive(live);
})();
