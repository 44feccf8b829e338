// rtrelay console: copy buttons, confirmations, charts. No inline script anywhere
// (the pages' Content-Security-Policy allows only files served by the relay).
"use strict";

(function () {
  // --- "End", "Revoke", "Rotate": ask first -------------------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // --- Copy buttons (the key's secret) -------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copied");
    var done = function () { if (status) status.textContent = "Copied."; };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        document.execCommand("copy"); done();
      });
    } else {
      document.execCommand("copy"); done();
    }
  });

  // --- Usage bars: widths from data-share (style attributes are not allowed inline) ----
  function sizeBars(root) {
    root.querySelectorAll(".bar[data-share]").forEach(function (bar) {
      bar.style.width = (parseFloat(bar.getAttribute("data-share")) * 8) + "rem";
    });
  }

  // --- Charts (uPlot) ------------------------------------------------------------------
  var charts = {};
  var COLORS = {succeeded: "#1e6b34", refused: "#b3261e", active: "#3b5bdb",
                cost: "#3b5bdb", tokens_in: "#1e6b34", tokens_out: "#7a4f01"};

  function width(el) { return Math.max(280, el.clientWidth - 8); }

  function series(label, key, scale) {
    return {label: label, stroke: COLORS[key], width: 2, scale: scale || "y"};
  }

  // A fixed window, not the data's extent: one sample must not stretch the axis to years.
  var latest = 0;
  function lastHour() { return [latest - 3600, latest]; }
  function counts(u, min, max) { return [0, Math.max(2, Math.ceil((max || 0) * 1.2))]; }
  function days(u, min, max) { return [Math.min(min, max - 13 * 86400) - 43200, max + 43200]; }
  function usd(u, values) { return values.map(function (v) { return "$" + v.toPrecision(2); }); }

  function build(el, data) {
    var kind = el.getAttribute("data-chart"), opts, rows;
    latest = data.t.length ? data.t[data.t.length - 1] : Date.now() / 1000;
    if (kind === "handshakes") {
      opts = {series: [{}, series("Succeeded", "succeeded"), series("Refused", "refused")]};
      rows = [data.t, data.succeeded, data.refused];
    } else if (kind === "active") {
      opts = {series: [{}, series("Sessions open", "active")]};
      rows = [data.t, data.active];
    } else {
      opts = {series: [{}, series("Cost (USD)", "cost", "usd"), series("Tokens in", "tokens_in"),
                       series("Tokens out", "tokens_out")],
              axes: [{}, {scale: "usd", label: "USD", values: usd, size: 60},
                     {scale: "y", side: 1, label: "tokens", grid: {show: false}}]};
      rows = [data.t, data.cost, data.tokens_in, data.tokens_out];
    }
    opts.width = width(el);
    opts.height = 200;
    if (!opts.axes) opts.axes = [{}, {}];
    opts.scales = {x: {time: true, range: kind === "usage" ? days : lastHour}};
    if (kind !== "usage") opts.scales.y = {range: counts};
    if (kind === "usage") opts.series.forEach(function (s, i) { if (i) s.points = {size: 7}; });
    if (charts[kind]) { charts[kind].setData(rows); return; }
    charts[kind] = new uPlot(opts, rows, el);
  }

  function refresh() {
    var wanted = {};
    document.querySelectorAll(".chart[data-src]").forEach(function (el) {
      (wanted[el.getAttribute("data-src")] = wanted[el.getAttribute("data-src")] || []).push(el);
    });
    Object.keys(wanted).forEach(function (src) {
      fetch(src, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) wanted[src].forEach(function (el) { build(el, data); }); });
    });
  }

  function start() {
    sizeBars(document);
    var usage = document.getElementById("usage-data");
    document.querySelectorAll(".chart[data-chart=usage]").forEach(function (el) {
      if (usage && window.uPlot) build(el, JSON.parse(usage.textContent));
    });
    if (document.querySelector(".chart[data-src]") && window.uPlot) {
      refresh();
      setInterval(refresh, 5000);
    }
  }

  document.addEventListener("htmx:afterSwap", function (event) { sizeBars(event.target); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
