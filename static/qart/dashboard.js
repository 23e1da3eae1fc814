// Dashboard behaviour: scan charts (Chart.js, served from /static/vendor/) and copy-to-clipboard buttons.
// Pages work without it: daily totals are also in a table, links are also in a text field.
(function () {
  "use strict";
  var PALETTE = ["#5b3df5", "#e8590c", "#0ca678", "#d6336c", "#1c7ed6", "#f59f00", "#868e96"];

  function drawCharts() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      var datasets = data.datasets.map(function (series, i) {
        var colour = PALETTE[i % PALETTE.length];
        return {
          label: series.label, data: series.data, borderColor: colour, backgroundColor: colour,
          borderWidth: 2, cubicInterpolationMode: "monotone", pointRadius: 0, pointHitRadius: 8,
        };
      });
      new window.Chart(canvas, {
        type: "line",
        data: { labels: data.labels, datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { grid: { display: false }, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
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
