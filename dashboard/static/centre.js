/* A centre's statistics: Chart.js charts drawn from the figures the page was rendered with,
   each followed by the same numbers in a table (shown or tucked away visually; always read
   by screen readers). */
(function () {
  "use strict";

  var source = document.getElementById("centre-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var S = data.strings;

  // Tables: the button only hides them visually.
  Array.prototype.forEach.call(document.querySelectorAll("[data-toggle-table]"), function (button) {
    var box = document.getElementById(button.getAttribute("aria-controls"));
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.textContent = open ? S.hide_table : S.show_table;
      box.classList.toggle("is-collapsed", !open);
    });
  });

  if (!window.Chart) return;
  var Chart = window.Chart;
  var css = getComputedStyle(document.documentElement);
  Chart.defaults.font.family = css.fontFamily;
  Chart.defaults.font.size = 13;
  Chart.defaults.color = "#16202a";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;

  var BLUE = "#0b4f8a", GREEN = "#2e8b57", RED = "#c62828", AMBER = "#b36b00";

  function bars(label, values, color) {
    return { type: "bar", label: label, data: values, backgroundColor: color, yAxisID: "y", order: 2 };
  }

  function line(label, values, color) {
    return {
      type: "line", label: label, data: values, borderColor: color, backgroundColor: color,
      yAxisID: "minutes", borderWidth: 2, pointRadius: 3, spanGaps: true, order: 1,
    };
  }

  function draw(id, labels, datasets) {
    var canvas = document.getElementById(id + "-chart");
    if (!canvas) return;
    var usesMinutes = datasets.some(function (d) { return d.yAxisID === "minutes"; });
    var scales = {
      x: { grid: { display: false } },
      y: { beginAtZero: true, grace: "8%", title: { display: true, text: S.count }, ticks: { precision: 0 } },
    };
    if (usesMinutes) {
      scales.minutes = {
        position: "right", beginAtZero: true, grace: "8%", title: { display: true, text: S.minutes },
        grid: { drawOnChartArea: false },
      };
    }
    canvas.chart = new Chart(canvas, {
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: scales,
      },
    });
  }

  function pick(rows, key) {
    return rows.map(function (row) { return row[key]; });
  }

  var days = data.days;
  draw("days", days.map(function (d) { return data.labels[d.date]; }), [
    bars(S.issued, pick(days, "issued"), BLUE),
    bars(S.served, pick(days, "served"), GREEN),
    bars(S.no_show, pick(days, "no_show"), RED),
    line(S.wait_p90, pick(days, "wait_p90"), AMBER),
  ]);

  var keys = Object.keys(data.sources);
  var bySource = keys.map(function (k) { return data.by_source[k]; });
  draw("sources", keys.map(function (k) { return data.sources[k]; }), [
    bars(S.issued, pick(bySource, "issued"), BLUE),
    bars(S.served, pick(bySource, "served"), GREEN),
    bars(S.no_show, pick(bySource, "no_show"), RED),
  ]);

  var lines = data.by_service;
  draw("services", lines.map(function (s) { return s.service + " · " + s.name; }), [
    bars(S.issued, pick(lines, "issued"), BLUE),
    bars(S.served, pick(lines, "served"), GREEN),
    line(S.wait_p90, pick(lines, "wait_p90"), AMBER),
  ]);

  var byField = data.by_field;
  draw("fields", byField.map(function (f) { return f.field === null ? S.unknown_field : f.field; }), [
    bars(S.issued, pick(byField, "issued"), BLUE),
    bars(S.served, pick(byField, "served"), GREEN),
    line(S.wait_p90, pick(byField, "wait_p90"), AMBER),
  ]);

  var hours = data.by_hour;
  draw("hours", hours.map(function (h) { return (h.hour < 10 ? "0" : "") + h.hour + ":00"; }), [
    bars(S.issued, pick(hours, "issued"), BLUE),
    line(S.wait_p90, pick(hours, "wait_p90"), AMBER),
  ]);
})();
