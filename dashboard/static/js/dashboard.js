// Runner dashboard: live status, relative times and uPlot charts. Loaded after htmx, the SSE
// extension and uPlot (all deferred, in order); no inline script anywhere (CSP).
(function () {
  "use strict";

  var PALETTE = ["#0b57d0", "#d9480f", "#1a7f37", "#8250df", "#bf3989", "#0f766e", "#9a6700", "#57606a"];

  // Same text as views.py: seconds only under a minute.
  function duration(seconds) {
    if (seconds < 60) return Math.floor(seconds) + " s";
    seconds -= seconds % 60;
    var units = [[86400, "d", 3600, "h"], [3600, "h", 60, "min"], [60, "min", 1, "s"]];
    for (var i = 0; i < units.length; i++) {
      var u = units[i];
      if (seconds >= u[0]) {
        var rest = Math.floor((seconds % u[0]) / u[2]);
        return Math.floor(seconds / u[0]) + " " + u[1] + (rest ? " " + rest + " " + u[3] : "");
      }
    }
    return "";
  }

  // "3 min ago" texts drift while a page stays open: recompute them from their datetime.
  function refreshAges(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var seconds = Math.max(0, (now - at) / 1000);
      el.textContent = seconds < 5 ? "just now" : duration(seconds) + " ago";
    });
  }

  function setLive(state, text) {
    var live = document.getElementById("live");
    var label = document.getElementById("live-status");
    if (live) live.setAttribute("data-live-state", state);
    if (label) label.textContent = text;
  }

  // --- charts -----------------------------------------------------------------------------
  var charts = [];

  function chartNote(figure, text, stale) {
    var note = figure.querySelector(".chart-note");
    note.textContent = text || "";
    note.hidden = !text;
    note.classList.toggle("is-stale", !!stale);
  }

  function sourceText(source) {
    var name = source.name.charAt(0).toUpperCase() + source.name.slice(1);
    if (!source.configured) return name + " is not configured (DASHBOARD_PROMETHEUS_URL is not set).";
    if (source.stale) return "Stale: " + name + " is failing (" + (source.last_error || "error") + "); showing its last good data.";
    if (!source.ok && source.last_error) return name + " is failing: " + source.last_error;
    if (!source.ok) return "Waiting for the first answer from " + name + ".";
    return "";
  }

  // "docker running" and "docker capacity" share docker's colour; limits are dashed.
  var LIMITS = ["capacity", "max"];

  function seriesStyle(labels) {
    var groups = [];
    return labels.map(function (label) {
      var words = label.split(" ");
      var last = words.length > 1 ? words.pop() : "";
      var group = words.join(" ");
      if (groups.indexOf(group) < 0) groups.push(group);
      var style = { label: label, stroke: PALETTE[groups.indexOf(group) % PALETTE.length], width: 1.5, spanGaps: true };
      if (LIMITS.indexOf(last) >= 0) { style.dash = [5, 4]; style.width = 1; style.points = { show: false }; }
      return style;
    });
  }

  function draw(chart, payload) {
    var figure = chart.figure;
    var canvas = figure.querySelector(".chart-canvas");
    var data = payload.data;
    var hasPoints = data.length > 1 && data[0].length > 0;
    var note = sourceText(payload.source);
    chartNote(figure, hasPoints ? note : (note || "No data in the window."), payload.source.stale);
    if (chart.plot) { chart.plot.destroy(); chart.plot = null; }
    if (!hasPoints) return;
    var series = [{}].concat(seriesStyle(payload.labels));
    if (payload.threshold !== null && payload.threshold !== undefined) {
      data = data.concat([data[0].map(function () { return payload.threshold; })]);
      series.push({ label: "SLO", stroke: "#b42318", width: 1, dash: [6, 4], points: { show: false } });
    }
    chart.plot = new uPlot({
      width: Math.max(canvas.clientWidth, 200),
      height: 240,
      series: series,
      axes: [{}, { size: 56 }],
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } }
    }, data, canvas);
  }

  function load(chart) {
    var url = chart.figure.getAttribute("data-chart");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (payload) { draw(chart, payload); })
      .catch(function (error) { chartNote(chart.figure, "Chart data unavailable: " + error.message, true); });
  }

  function refreshCharts(eventName) {
    charts.forEach(function (chart) {
      if (chart.refreshOn.indexOf(eventName) < 0) return;
      window.clearTimeout(chart.timer);
      chart.timer = window.setTimeout(function () { load(chart); }, 300);
    });
  }

  function setUpCharts() {
    document.querySelectorAll("figure.chart[data-chart]").forEach(function (figure) {
      var chart = {
        figure: figure,
        plot: null,
        timer: 0,
        refreshOn: (figure.getAttribute("data-refresh-on") || "").split(/\s+/)
      };
      charts.push(chart);
      load(chart);
    });
    if (window.ResizeObserver && charts.length) {
      var observer = new ResizeObserver(function () {
        charts.forEach(function (chart) {
          var canvas = chart.figure.querySelector(".chart-canvas");
          if (chart.plot) chart.plot.setSize({ width: Math.max(canvas.clientWidth, 200), height: 240 });
        });
      });
      charts.forEach(function (chart) { observer.observe(chart.figure); });
    }
  }

  // --- wiring -----------------------------------------------------------------------------
  document.addEventListener("htmx:sseOpen", function () { setLive("live", "live"); });
  document.addEventListener("htmx:sseError", function () { setLive("down", "reconnecting…"); });
  document.addEventListener("htmx:sseMessage", function (event) {
    var message = event.detail;
    if (message && message.type) refreshCharts(message.type);
  });
  document.addEventListener("htmx:afterSwap", function (event) { refreshAges(event.target); });

  document.addEventListener("DOMContentLoaded", function () {
    refreshAges(document);
    window.setInterval(function () { refreshAges(document); }, 10000);
    if (window.uPlot) setUpCharts();
  });
})();
