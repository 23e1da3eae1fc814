// Dashboard behaviour: scan charts (Chart.js, served from /static/vendor/), country names, copy-to-clipboard
// buttons, a question before an action that cannot be undone, and waiting for a large print file. Pages work without
// it: daily totals are also in a table, countries show their codes, links are also in a text field, and the print
// file's page refreshes itself.
(function () {
  "use strict";
  var PALETTE = ["#5b3df5", "#e8590c", "#0ca678", "#d6336c", "#1c7ed6", "#f59f00", "#868e96"];

  // Bars for counts per day, hour or weekday (a line made one busy day look like a spike out of nothing); a dataset
  // may ask to be a line (unique visitors over the bars). A range ending today marks today's bar as the day so far.
  function drawCharts() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var datasets = data.datasets.map(function (series, i) {
        var colour = PALETTE[i % PALETTE.length];
        var type = series.type || "bar";
        var fill = colour;
        if (type === "bar" && data.partial_last && series.data.length) {
          fill = series.data.map(function (_, day) { return day === series.data.length - 1 ? colour + "66" : colour; });
        }
        return {
          type: type, label: series.label, data: series.data, borderColor: colour, backgroundColor: fill,
          borderWidth: type === "line" ? 2 : 0, pointRadius: 0, pointHitRadius: 8, order: type === "line" ? 0 : 1,
        };
      });
      new window.Chart(canvas, {
        type: "bar",
        data: { labels: data.labels, datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { grid: { display: false }, ticks: { maxTicksLimit: 12, maxRotation: 0, autoSkip: true } },
            y: { beginAtZero: true, ticks: { precision: 0 } },
          },
          plugins: { legend: { display: datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } } },
        },
      });
    });
  }

  function wireCopyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var say = function (text) {
          var label = button.dataset.label || button.textContent;
          button.dataset.label = label;
          button.textContent = text;
          setTimeout(function () { button.textContent = label; }, 2000);
        };
        var done = function () { say("Copied"); };
        // Plain-HTTP development, or a browser that refuses the clipboard: select the text field next to the button
        // instead (the button said nothing at all when the clipboard refused).
        var select = function () {
          var field = button.parentElement.querySelector("input");
          if (!field) return;
          field.focus();
          field.select();
          var copied = false;
          try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
          say(copied ? "Copied" : "Selected: copy it");
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(button.dataset.copy).then(done, select);
        } else {
          select();
        }
      });
    });
  }

  // A form marked data-confirm (revoking a token or share link, deleting a webhook, a new webhook secret) is sent
  // only once the person says yes: those actions break whatever relies on the thing, and cannot be undone.
  function askBeforeUndoable() {
    document.addEventListener("submit", function (event) {
      var question = event.target.dataset && event.target.dataset.confirm;
      if (question && !window.confirm(question)) event.preventDefault();
    });
  }

  // A <select data-autosubmit> sends its form when a choice is made with the pointer. From the keyboard the arrows
  // only move the choice and Enter (or the form's button) sends it: each arrow sent the form, the page came back with
  // focus on nothing, and only the option next to the shown one could be reached.
  function wireAutosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var shown = select.value;
      var key = null; // the last key pressed on it since the pointer last was; null: a pointer's choice
      select.addEventListener("pointerdown", function () { key = null; });
      select.addEventListener("keydown", function (event) {
        key = event.key;
        // After the default action: Enter in an open list changes the value first.
        if (key === "Enter") setTimeout(function () { if (select.value !== shown) select.form.submit(); }, 0);
      });
      select.addEventListener("change", function () { if (key === null) select.form.submit(); });
    });
  }

  // A large print file a worker is making: ask with HEAD (which never queues a build) until it is ready, then
  // start the download and say so; any other answer reloads the page, which shows why. Without script the page's
  // <noscript> refresh asks again the same way, by GET.
  function waitForPrintFile() {
    var notice = document.querySelector("[data-print-url]");
    if (!notice || !window.fetch) return;
    var url = notice.dataset.printUrl;
    var every = (parseInt(notice.dataset.every, 10) || 5) * 1000;
    var ask = function () {
      fetch(url, { method: "HEAD", credentials: "same-origin" }).then(function (answer) {
        if (answer.status === 202) {
          setTimeout(ask, every);
        } else if (answer.ok) {
          notice.textContent = answer.headers.get("X-Qart-Print-Cautions")
            ? "Your print file is ready: read what to know before printing it."
            : "Your print file is ready: its download has started.";
          window.location.assign(url);
        } else {
          window.location.reload();
        }
      }, function () { setTimeout(ask, every); });
    };
    setTimeout(ask, every);
  }

  // The print form's answer (what to know before printing, why not, or that a large file is being made) is the page
  // reloaded at its top: the box sat a screen and a half down (2,000 px on a desktop), and nothing seemed to happen.
  function showPrintAnswer() {
    var box = document.querySelector("#print-cautions, #print-error, #print-making");
    if (box && box.scrollIntoView) box.scrollIntoView({ block: "center" });
  }

  // A country card's rows hold ISO 3166 codes ("DE"): name them with the browser's own list (CLDR, in English like
  // the rest of the site), keeping the code in the title. No country-name list ships with the server's packages, and
  // a browser without Intl.DisplayNames, or a code it does not know, keeps showing the code.
  function nameCountries() {
    if (!window.Intl || !Intl.DisplayNames) return;
    var names = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
    document.querySelectorAll("[data-region]").forEach(function (label) {
      var code = label.dataset.region;
      var name;
      try { name = names.of(code); } catch (e) { return; } // not a well-formed code
      if (!name || name === code) return;
      label.textContent = name;
      label.title = name + " (" + code + ")";
    });
  }

  drawCharts();
  nameCountries();
  showPrintAnswer();
  wireCopyButtons();
  askBeforeUndoable();
  wireAutosubmit();
  waitForPrintFile();
})();
