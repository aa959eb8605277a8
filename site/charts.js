/* labbook charts: small SVG line, scatter and parallel-coordinates charts. No dependencies.
   Every label is set with textContent, never parsed as HTML. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#7f7f7f"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, label, attrs) {
    var t = el("text", Object.assign({x: x, y: y}, attrs || {}), parent);
    t.textContent = label;
    return t;
  }
  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
    return String(Math.round(v * 1000) / 1000);
  }
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v < lo) lo = v; if (v > hi) hi = v; });
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= Math.abs(lo) * 0.05 || 0.5; hi += Math.abs(hi) * 0.05 || 0.5; }
    return [lo, hi];
  }
  function scale(domain, range) {
    return function (v) {
      return range[0] + (v - domain[0]) / (domain[1] - domain[0]) * (range[1] - range[0]);
    };
  }
  function svgFor(container, width, height) {
    container.textContent = "";
    return el("svg", {viewBox: "0 0 " + width + " " + height, class: "chart-svg", role: "img",
                      preserveAspectRatio: "xMidYMid meet"}, container);
  }
  function axes(svg, xs, ys, box, xlabel, ylabel) {
    var g = el("g", {class: "axis"}, svg);
    el("line", {x1: box.l, y1: box.b, x2: box.r, y2: box.b}, g);
    el("line", {x1: box.l, y1: box.t, x2: box.l, y2: box.b}, g);
    [0, 0.5, 1].forEach(function (f) {
      var xv = xs.domain[0] + f * (xs.domain[1] - xs.domain[0]);
      var yv = ys.domain[0] + f * (ys.domain[1] - ys.domain[0]);
      text(g, xs(xv), box.b + 14, fmt(xv), {"text-anchor": "middle"});
      text(g, box.l - 4, ys(yv) + 4, fmt(yv), {"text-anchor": "end"});
      el("line", {x1: box.l, y1: ys(yv), x2: box.r, y2: ys(yv), class: "grid"}, g);
    });
    if (xlabel) text(g, (box.l + box.r) / 2, box.b + 28, xlabel, {"text-anchor": "middle", class: "axis-label"});
    if (ylabel) text(g, box.l, box.t - 6, ylabel, {"text-anchor": "start", class: "axis-label"});
  }
  function withDomain(domain, range) { var s = scale(domain, range); s.domain = domain; return s; }
  function tooltip(node, label) { var t = el("title", {}, node); t.textContent = label; }

  /* series: [{name, points: [[x, y], ...]}] */
  function line(container, series, opts) {
    opts = opts || {};
    var W = 480, H = 260, box = {l: 58, r: 468, t: 22, b: 222};
    var svg = svgFor(container, W, H);
    var all = [];
    series.forEach(function (s) { all = all.concat(s.points); });
    var xs = withDomain(extent(all.map(function (p) { return p[0]; })), [box.l, box.r]);
    var ys = withDomain(extent(all.map(function (p) { return p[1]; })), [box.b, box.t]);
    axes(svg, xs, ys, box, opts.xlabel || "step", opts.ylabel || "");
    var dots = all.length <= 3000;
    series.forEach(function (s, i) {
      var color = PALETTE[(s.color === undefined ? i : s.color) % PALETTE.length];
      var d = s.points.map(function (p, j) {
        return (j ? "L" : "M") + xs(p[0]).toFixed(1) + " " + ys(p[1]).toFixed(1);
      }).join("");
      var path = el("path", {d: d, fill: "none", stroke: color, "stroke-width": 1.6, class: "series"}, svg);
      tooltip(path, s.name);
      if (dots) s.points.forEach(function (p) {
        var c = el("circle", {cx: xs(p[0]).toFixed(1), cy: ys(p[1]).toFixed(1), r: 2.2, fill: color,
                              class: "point"}, svg);
        tooltip(c, s.name + " · step " + p[0] + ": " + fmt(p[1]));
      });
    });
    legend(container, series);
    return svg;
  }

  function legend(container, series) {
    if (series.length < 2) return;
    var list = document.createElement("ul");
    list.className = "legend";
    series.forEach(function (s, i) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch c" + ((s.color === undefined ? i : s.color) % PALETTE.length);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name));
      list.appendChild(item);
    });
    container.appendChild(list);
  }

  /* points: [{x, y, label}] with numeric x or categorical x (strings) */
  function scatter(container, points, opts) {
    opts = opts || {};
    var W = 480, H = 260, box = {l: 58, r: 468, t: 22, b: 222};
    var svg = svgFor(container, W, H);
    var categorical = points.some(function (p) { return typeof p.x !== "number"; });
    var cats = categorical ? Array.from(new Set(points.map(function (p) { return String(p.x); }))).sort() : [];
    var xval = function (p) { return categorical ? cats.indexOf(String(p.x)) : p.x; };
    var xs = withDomain(categorical ? [-0.5, Math.max(cats.length - 0.5, 0.5)] :
                        extent(points.map(xval)), [box.l, box.r]);
    var ys = withDomain(extent(points.map(function (p) { return p.y; })), [box.b, box.t]);
    axes(svg, xs, ys, box, categorical ? "" : opts.xlabel, opts.ylabel);
    if (categorical) {
      text(svg, (box.l + box.r) / 2, box.b + 28, opts.xlabel || "", {"text-anchor": "middle", class: "axis-label"});
      cats.slice(0, 30).forEach(function (c, i) {
        text(svg, xs(i), box.b - 4, c.slice(0, 14), {"text-anchor": "middle", class: "cat"});
      });
    }
    points.forEach(function (p) {
      var c = el("circle", {cx: xs(xval(p)).toFixed(1), cy: ys(p.y).toFixed(1), r: 3.5, class: "point dot"}, svg);
      tooltip(c, p.label + ": " + fmt(p.x) + ", " + fmt(p.y));
    });
    return svg;
  }

  /* axes: [{name, values: [...]}] one value per row (null = missing); the last axis colours the lines */
  function parallel(container, columns, labels) {
    var W = Math.max(600, columns.length * 110), H = 280, top = 30, bottom = 250;
    var svg = svgFor(container, W, H);
    var step = (W - 80) / Math.max(columns.length - 1, 1);
    var scales = columns.map(function (col, i) {
      var x = 40 + i * step;
      var nums = col.values.every(function (v) { return v === null || typeof v === "number"; });
      var cats = nums ? [] : Array.from(new Set(col.values.filter(function (v) { return v !== null; })
                                                    .map(String))).sort();
      var dom = nums ? extent(col.values.filter(function (v) { return v !== null; }))
                     : [-0.5, Math.max(cats.length - 0.5, 0.5)];
      var s = scale(dom, [bottom, top]);
      var g = el("g", {class: "axis"}, svg);
      el("line", {x1: x, y1: top, x2: x, y2: bottom}, g);
      text(g, x, top - 10, col.name.replace(/^(params|metrics)\./, "").slice(-16), {"text-anchor": "middle", class: "axis-label"});
      if (nums) {
        text(g, x + 3, top + 4, fmt(dom[1]), {class: "tick"});
        text(g, x + 3, bottom + 12, fmt(dom[0]), {class: "tick"});
      } else {
        cats.slice(0, 12).forEach(function (c, j) { text(g, x + 3, s(j) + 3, c.slice(0, 12), {class: "tick"}); });
      }
      return {x: x, y: function (v) { return v === null ? null : s(nums ? v : cats.indexOf(String(v))); }};
    });
    var last = columns[columns.length - 1];
    var colourDom = extent(last.values.filter(function (v) { return typeof v === "number"; }));
    labels.forEach(function (label, row) {
      var d = "", pen = "M";
      scales.forEach(function (s, i) {
        var y = s.y(columns[i].values[row]);
        if (y === null || isNaN(y)) { pen = "M"; return; }
        d += pen + s.x.toFixed(1) + " " + y.toFixed(1);
        pen = "L";
      });
      var v = last.values[row];
      var f = typeof v === "number" ? (v - colourDom[0]) / (colourDom[1] - colourDom[0]) : 0.5;
      var hue = Math.round(220 - 200 * f);
      var path = el("path", {d: d, fill: "none", stroke: "hsl(" + hue + ",70%,45%)", "stroke-width": 1.3,
                             "stroke-opacity": 0.75, class: "series"}, svg);
      tooltip(path, label);
    });
    return svg;
  }

  window.LBC = {line: line, scatter: scatter, parallel: parallel, fmt: fmt, palette: PALETTE};
})();
