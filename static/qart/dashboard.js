// Dashboard behaviour: scan charts (Chart.js, served from /static/vendor/) and copy-to-clipboard buttons.
// Pages work without it: daily totals are also in a table, links are also in a text field.
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
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = label; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(button.dataset.copy).then(done);
        } else {
          // Plain-HTTP development: select the text field next to the button instead.
          var field = button.parentElement.querySelector("input");
          if (field) { field.select(); document.execCommand("copy"); done(); }
        }
      });
    });
  }

  drawCharts();
  wireCopyButtons();
})();
