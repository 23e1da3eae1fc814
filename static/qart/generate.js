// The generation pages' small behaviours. Everything works without this file; it only saves typing and reloads:
// - the form: show the chosen engine's fields, reuse an earlier prompt, show what the presets mean, fill in a
//   placement's short link (chosen in the select, or in the search: placement-search.js), preview and crop the
//   uploaded picture;
// - a running job: poll its status.json every second and reload the page once it has finished.
(function () {
  "use strict";

  function readJSON(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  // A size in words, by the rule of generator/core/codes/amounts.py (the server's messages): "640 KB", "10 MB",
  // "2.5 MB"; `extraDigits` more decimals than usual. toFixed alone read a cap under 1 MB as "0 MB".
  function amount(size, extraDigits) {
    var unit = 1024, name = "KB", digits = 0;
    if (size >= 1073741824) {
      unit = 1073741824; name = "GB"; digits = 1;
    } else if (size >= 1048576) {
      unit = 1048576; name = "MB"; digits = 1;
    }
    var text = (size / unit).toFixed(digits + (extraDigits || 0));
    if (text.indexOf(".") >= 0) text = text.replace(/0+$/, "").replace(/\.$/, "");
    return text + " " + name;
  }

  // A size over a cap and the cap, in words that never read the same (amounts.over_cap): a 10.04 MB file read
  // "10.0 MB; pictures up to 10 MB".
  function overCap(size, cap) {
    for (var extra = 0; extra <= 2; extra++) {
      var sent = amount(size, extra), accepted = amount(cap, extra);
      if (sent !== accepted) return [sent, accepted];
    }
    return ["over " + amount(cap), amount(cap)];
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
      // The whole page: the subtitle and the prompt gallery are outside the form.
      document.querySelectorAll("[data-engine-part]").forEach(function (part) {
        part.hidden = part.dataset.enginePart !== checked.value;
      });
    }
    engines.forEach(function (radio) { radio.addEventListener("change", showEngine); });
    showEngine();

    document.querySelectorAll("[data-reuse-prompt]").forEach(function (button) {
      button.addEventListener("click", function () {
        fields.prompt.value = button.dataset.prompt;
        fields.negative_prompt.value = button.dataset.negative;
        // As if typed: char-count.js counts again.
        [fields.prompt, fields.negative_prompt].forEach(function (box) {
          box.dispatchEvent(new Event("input", { bubbles: true }));
        });
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

    // Files over the upload cap would be sent to be refused (qartsite.limits' 413 page), and what was typed would be
    // gone unless the browser's Back button keeps it: say so here, before they are sent. The cap is on the picture
    // and the logo together, as the server counts a request's files (UploadLimitHandler): a check of the picture
    // alone let a 6 MB picture and a 6 MB logo go to be refused.
    var picture = fields.picture, logo = fields.logo;
    if (picture && picture.dataset.maxBytes) {
      var limit = Number(picture.dataset.maxBytes), holder = null;  // holder: the input showing the size message
      var sizeCheck = function (changed) {
        var chosen = [[picture, "picture"], [logo, "logo"]].filter(function (pair) {
          return pair[0] && pair[0].files[0];
        });
        var total = chosen.reduce(function (sum, pair) { return sum + pair[0].files[0].size; }, 0);
        var alone = chosen.filter(function (pair) { return pair[0].files[0].size > limit; })[0], message = "", words;
        if (alone) {
          words = overCap(alone[0].files[0].size, limit);
          message = "This " + alone[1] + " is " + words[0] + "; " + alone[1] + "s up to " + words[1] +
            " are accepted. Save it smaller first.";
        } else if (total > limit) {
          words = overCap(total, limit);
          message = "The picture and the logo are " + words[0] + " together; up to " + words[1] + " is accepted, " +
            "the two counted together. Choose a smaller picture or logo.";
        }
        // One message, on the file too large alone or else the one just chosen. A new file clears what was said of
        // the last one (the pixel check runs again once its preview decodes), and the other input's size message goes.
        var target = alone ? alone[0] : changed;
        changed.setCustomValidity("");
        if (holder) holder.setCustomValidity("");
        target.setCustomValidity(message);
        holder = message ? target : null;
        if (message) target.reportValidity();
        // The picture's pixel message, held back while a size message showed on it (setupCrop), is said once none
        // is left: removing the logo made the sizes fit, and the picture went on to be refused when sent. A new
        // picture's own check comes when its preview decodes.
        var pixels = picture.dataset.pixelProblem;
        if (changed !== picture && pixels && !picture.validationMessage) {
          picture.setCustomValidity(pixels);
          if (!message) picture.reportValidity();
        }
      };
      [picture, logo].forEach(function (input) {
        if (input) input.addEventListener("change", function () { sizeCheck(input); });
      });
    }

    if (picture) setupCrop(form, picture);

    // An earlier code can be drawn into only for its own link (uploads.refuse_other_code): the others are offered
    // disabled while the content is another link.
    var earlier = form.querySelectorAll("input[name=earlier_candidate][data-content]");
    var earlierNote = form.querySelector("[data-earlier-note]");
    // A short link in other case is the same link (campaigns.links.same_link): scheme and host in any case, /R/ as /r/.
    function linkKey(text) {
      var parts = /^(https?):\/\/([^\/?#]+)\/r\/([^\/?#]+)$/i.exec(text);
      return parts ? parts[1].toLowerCase() + "://" + parts[2].toLowerCase() + "/r/" + parts[3] : text;
    }
    function limitEarlier() {
      var wanted = fields.content ? fields.content.value.trim() : "", greyed = 0;
      Array.prototype.forEach.call(earlier, function (radio) {
        radio.disabled = Boolean(wanted) && linkKey(radio.dataset.content) !== linkKey(wanted);
        if (radio.disabled) { radio.checked = false; greyed += 1; }
      });
      if (earlierNote) earlierNote.hidden = greyed === 0;  // why some are greyed, said where they are
    }
    if (fields.content && earlier.length) {  // a viewer is offered none
      fields.content.addEventListener("input", limitEarlier);
      fields.content.addEventListener("change", limitEarlier);
      limitEarlier();
    }

    // A placement's short link becomes the content unless someone typed their own; its team is the job's team.
    var placement = fields.placement, content = fields.content, team = fields.team;
    if (!placement || !content) return;
    // The placement search (placement-search.js) puts its choice's link and team on the hidden field.
    function chosenPlacement() {
      if (links[placement.value]) return links[placement.value];
      return placement.value && placement.dataset.link ? { link: placement.dataset.link, team: placement.dataset.team }
        : null;
    }
    var autoLink = chosenPlacement() ? chosenPlacement().link : null;
    placement.addEventListener("change", function () {
      var chosen = chosenPlacement();
      if (!content.value || content.value === autoLink) content.value = chosen ? chosen.link : "";
      limitEarlier();
      autoLink = chosen ? chosen.link : null;
      if (chosen && team && String(team.value) !== String(chosen.team)) {
        team.value = chosen.team;
        limitPlacements();
      }
    });
    function limitPlacements() {
      if (!team || team.type === "hidden") return;
      if (!placement.options) {  // the search: a choice of another team is undone, its text too
        var chosen = chosenPlacement();
        if (chosen && String(chosen.team) !== String(team.value)) {
          placement.value = "";
          if (fields.placement_name) fields.placement_name.value = "";
          placement.dispatchEvent(new Event("change"));
        }
        return;
      }
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

  // The crop: the picture behind a square frame, dragged (or moved with the arrow keys) and zoomed with the slider.
  // What is sent is the square's centre as fractions of the picture and the zoom (uploads.crop cuts the same square
  // on the server).
  function setupCrop(form, picture) {
    var box = form.querySelector("[data-crop]");
    if (!box) return;
    var frame = box.querySelector("[data-crop-frame]"), image = box.querySelector("[data-crop-image]");
    var slider = box.querySelector("[data-crop-zoom]");
    var fields = form.elements, url = null;
    var state = { x: 0.5, y: 0.5, zoom: 1 };

    function draw() {
      var w = image.naturalWidth, h = image.naturalHeight, frameSide = frame.clientWidth;
      if (!w || !h || !frameSide) return;
      var side = Math.min(w, h) / state.zoom;  // the square, in picture pixels
      // Keep the square inside the picture, as the server does.
      var cx = Math.min(Math.max(state.x * w, side / 2), w - side / 2);
      var cy = Math.min(Math.max(state.y * h, side / 2), h - side / 2);
      state.x = cx / w; state.y = cy / h;
      var scale = frameSide / side;
      image.style.width = w * scale + "px";
      image.style.height = h * scale + "px";
      image.style.transform = "translate(" + (-(cx - side / 2) * scale) + "px," + (-(cy - side / 2) * scale) + "px)";
      fields.crop_x.value = state.x.toFixed(4);
      fields.crop_y.value = state.y.toFixed(4);
      fields.crop_zoom.value = state.zoom.toFixed(3);
    }

    function clear() {
      box.hidden = true;
      fields.crop_x.value = fields.crop_y.value = fields.crop_zoom.value = "";
    }

    // A new picture chosen: what the server said of the last one, the picture kept from the last try and an earlier
    // code ticked no longer apply (the upload wins on the server), so the page stops showing them.
    function replaceEarlierChoices() {
      var field = picture.closest(".field");
      if (field) {
        field.classList.remove("error");
        field.querySelectorAll(".errorlist").forEach(function (list) { list.remove(); });
      }
      picture.removeAttribute("aria-invalid");
      var kept = form.querySelector("[data-kept-picture]");
      if (kept) kept.hidden = true;
      var keptInput = form.querySelector('input[name="kept_picture"]');
      if (keptInput) keptInput.disabled = true;
      form.querySelectorAll('input[name="earlier_candidate"]:checked').forEach(function (radio) {
        radio.checked = false;
      });
    }

    picture.addEventListener("change", function () {
      var file = picture.files[0];
      delete picture.dataset.pixelProblem;  // the last picture's
      if (file) replaceEarlierChoices();
      if (url) URL.revokeObjectURL(url);
      if (!file || !/^image\//.test(file.type)) { clear(); return; }
      url = URL.createObjectURL(file);
      state = { x: 0.5, y: 0.5, zoom: 1 };
      slider.value = 1;
      image.onload = function () {
        box.hidden = false;
        draw();
        // Past the pixel limit the server refuses it after the upload: say so now (the preview has decoded it
        // anyway), or, while a size message shows on it, once that goes (the size check reads `pixelProblem`).
        var limit = Number(picture.dataset.maxPixels || 0), pixels = image.naturalWidth * image.naturalHeight;
        if (limit && pixels > limit) {
          picture.dataset.pixelProblem = "This picture is " + image.naturalWidth + "×" + image.naturalHeight +
            " (" + (pixels / 1e6).toFixed(1) + " megapixels); pictures up to " + (limit / 1e6).toFixed(0) +
            " megapixels are accepted. Resize it first.";
          if (!picture.validationMessage) {
            picture.setCustomValidity(picture.dataset.pixelProblem);
            picture.reportValidity();
          }
        }
      };
      image.onerror = clear;  // the server says what is wrong with it
      image.src = url;
    });
    slider.addEventListener("input", function () { state.zoom = Number(slider.value); draw(); });

    var drag = null;
    image.draggable = false;  // the browser's own image drag would take the pointer (pointercancel)
    frame.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drag = { x: event.clientX, y: event.clientY, start: { x: state.x, y: state.y } };
      frame.setPointerCapture(event.pointerId);
    });
    frame.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var w = image.naturalWidth, h = image.naturalHeight;
      var perPixel = Math.min(w, h) / state.zoom / frame.clientWidth;  // picture pixels per screen pixel
      state.x = drag.start.x - (event.clientX - drag.x) * perPixel / w;
      state.y = drag.start.y - (event.clientY - drag.y) * perPixel / h;
      draw();
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      frame.addEventListener(name, function () { drag = null; });
    });
    // The keyboard's drag: an arrow moves the square a twentieth of its side over the picture, Shift a quarter.
    var arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    frame.addEventListener("keydown", function (event) {
      var move = arrows[event.key];
      if (!move || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();  // the page would scroll
      var w = image.naturalWidth, h = image.naturalHeight;
      if (!w || !h) return;
      var step = Math.min(w, h) / state.zoom * (event.shiftKey ? 0.25 : 0.05);  // picture pixels
      state.x += move[0] * step / w;
      state.y += move[1] * step / h;
      draw();
    });
    // An earlier candidate chosen instead: the crop belongs to the upload only, and what the page said of the
    // picture goes with it (a size or pixel message left behind kept the form from being sent).
    form.querySelectorAll('input[name="earlier_candidate"]').forEach(function (radio) {
      radio.addEventListener("change", function () { picture.value = ""; picture.dispatchEvent(new Event("change")); });
    });
  }

  function seconds(value) {
    value = Math.round(value);
    return value < 90 ? value + " s" : Math.floor(value / 60) + " min " + String(value % 60).padStart(2, "0") + " s";
  }

  function setupLive(box) {
    var url = box.dataset.statusUrl;
    var bar = box.querySelector("[data-bar]");
    var meter = box.querySelector("[role=progressbar]");
    var stage = box.querySelector("[data-stage]");
    var percent = box.querySelector("[data-percent]");
    var queue = box.querySelector("[data-queue]");
    var note = box.querySelector("[data-note]");
    var elapsed = box.querySelector("[data-elapsed]"), eta = box.querySelector("[data-eta]");
    var pill = document.querySelector("[data-status]");
    var delay = 1000;

    function render(state) {
      var value = Math.round(state.progress * 100);
      bar.style.width = value + "%";
      meter.setAttribute("aria-valuenow", value);
      percent.textContent = value + "%";
      // The stage is the live region: written only when it changes, so it is announced once per stage.
      if (stage.textContent !== state.stage_label) stage.textContent = state.stage_label;
      pill.textContent = state.status_label;
      pill.className = "pill pill-" + state.status;
      queue.textContent = state.queue_words;  // its place, and how long the job running now has left
      elapsed.textContent = state.elapsed === null ? "" : "· " + seconds(state.elapsed) + " elapsed";
      eta.textContent = state.eta === null ? "" : "· about " + seconds(state.eta) + " left";
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
