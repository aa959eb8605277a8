/* labbook journal pages: run tables, compare, search and chart wiring.
   Data comes from generated scripts (window.LB_EXP, LB_RUNS, LB_SEARCH) or
   <script type="application/json"> blocks; user text only ever goes through textContent. */
(function () {
  "use strict";
  var SAFE_ID = /^[A-Za-z0-9_-]{1,80}$/;
  var PAGE_ROWS = 100;

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  function show(v) { return v === null || v === undefined ? "" : (typeof v === "number" ? LBC.fmt(v) : String(v)); }
  function shortName(col) { return col.replace(/^(params|metrics|tags)\./, ""); }
  function option(select, value, label) { select.appendChild(h("option", {value: value, text: label || value})); }

  /* -- loading run data scripts (works from file://, no fetch) -- */
  function loadRuns(items, done) {
    window.LB_RUNS = window.LB_RUNS || {};
    var pending = 0, missing = [];
    items.forEach(function (item) {
      if (window.LB_RUNS[item.id]) return;
      pending += 1;
      var s = document.createElement("script");
      s.src = item.src;
      s.onload = s.onerror = function (ev) {
        if (ev.type === "error") missing.push(item.id);
        pending -= 1;
        if (!pending) done(missing);
      };
      document.body.appendChild(s);
    });
    if (!pending) done(missing);
  }

  function historyCharts(container, runs, metrics) {
    container.textContent = "";
    metrics.forEach(function (key) {
      var series = [];
      runs.forEach(function (r, i) {
        if (r.history && r.history[key]) series.push({name: r.name, points: r.history[key], color: i});
      });
      if (!series.some(function (s) { return s.points.length > 1; })) return;
      var box = h("div", {class: "chart-box"}, [h("h3", {text: key})]);
      var chart = h("div", {class: "chart"});
      box.appendChild(chart);
      container.appendChild(box);
      LBC.line(chart, series, {ylabel: key});
    });
  }

  /* -- run page -- */
  function runPage() {
    var block = byId("run-history");
    if (!block) return;
    var history = JSON.parse(block.textContent);
    historyCharts(byId("run-charts"), [{name: "", history: history}], Object.keys(history).sort());
  }

  /* -- experiment page: the runs table -- */
  function parseFilter(text) {
    var m = /^\s*(>=|<=|>|<|=)\s*(.+)$/.exec(text);
    if (m && !isNaN(parseFloat(m[2]))) {
      var n = parseFloat(m[2]), op = m[1];
      return function (v) {
        if (typeof v !== "number") return false;
        return op === ">" ? v > n : op === "<" ? v < n : op === ">=" ? v >= n : op === "<=" ? v <= n : v === n;
      };
    }
    var needle = text.trim().toLowerCase();
    return function (v) { return show(v).toLowerCase().indexOf(needle) >= 0; };
  }

  function ExperimentTable(data) {
    this.data = data;
    this.cols = data.columns;
    this.sortCol = this.cols.indexOf("start_time");
    this.sortDir = -1;
    this.filters = {};
    this.text = "";
    this.page = 0;
    this.selected = [];
    var metrics = this.cols.filter(function (c) { return c.indexOf("metrics.") === 0; });
    var params = this.cols.filter(function (c) { return c.indexOf("params.") === 0; });
    this.visible = ["run_name", "status", "start_time", "verdict"].concat(metrics, varying(data, params).slice(0, 6));
    this.best = bestValues(data);
  }

  /* columns whose value differs between runs, those most runs have first */
  function varying(data, cols) {
    var cover = {};
    return cols.filter(function (c) {
      var i = data.columns.indexOf(c), seen = {}, n = 0;
      data.rows.forEach(function (r) {
        var v = r.values[i];
        if (v !== null && v !== undefined) { seen[JSON.stringify(v)] = 1; n += 1; }
      });
      cover[c] = n;
      return Object.keys(seen).length > 1 && n * 2 >= data.rows.length;
    }).sort(function (a, b) { return cover[b] - cover[a]; });
  }

  function bestValues(data) {
    var best = {};
    Object.keys(data.goals).forEach(function (col) {
      var i = data.columns.indexOf(col), goal = data.goals[col], b = null;
      data.rows.forEach(function (r) {
        var v = r.values[i];
        if (typeof v === "number" && (b === null || (goal === "max" ? v > b : v < b))) b = v;
      });
      best[col] = b;
    });
    return best;
  }

  ExperimentTable.prototype.matches = function (row) {
    var self = this;
    if (this.text) {
      var hay = row.values.map(show).join(" ").toLowerCase();
      if (this.text.split(/\s+/).some(function (w) { return w && hay.indexOf(w) < 0; })) return false;
    }
    return Object.keys(this.filters).every(function (col) {
      return self.filters[col](row.values[self.cols.indexOf(col)]);
    });
  };

  ExperimentTable.prototype.ordered = function () {
    var self = this, i = this.sortCol, dir = this.sortDir;
    var cmp = function (a, b) {
      var x = a.values[i], y = b.values[i];
      if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
      if (y === null || y === undefined) return -1;
      if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
      return String(x).localeCompare(String(y), undefined, {numeric: true}) * dir;
    };
    if (this.flat) {  /* every run on its own: a sweep's best trial can reach the top */
      return this.data.rows.filter(function (r) { return self.matches(r); }).sort(cmp)
        .map(function (r) { return {row: r, children: []}; });
    }
    var kids = {}, ids = {};
    this.data.rows.forEach(function (r) { ids[r.id] = 1; });
    this.data.rows.forEach(function (r) { if (r.parent && ids[r.parent]) (kids[r.parent] = kids[r.parent] || []).push(r); });
    var groups = [];
    this.data.rows.filter(function (r) { return !(r.parent && ids[r.parent]); }).sort(cmp).forEach(function (r) {
      var children = (kids[r.id] || []).filter(function (c) { return self.matches(c); }).sort(cmp);
      if (self.matches(r) || children.length) groups.push({row: r, children: children});
    });
    return groups;
  };

  ExperimentTable.prototype.filteredRows = function () {
    var out = [];
    this.ordered().forEach(function (g) { out.push(g.row); out.push.apply(out, g.children); });
    return out;
  };

  ExperimentTable.prototype.renderHead = function () {
    var self = this, thead = byId("runs").tHead;
    thead.textContent = "";
    var names = h("tr", {}, [h("th", {class: "pick", text: "✓"})]);
    var filters = h("tr", {class: "filters"}, [h("th")]);
    this.visible.forEach(function (col) {
      var i = self.cols.indexOf(col);
      var arrow = i === self.sortCol ? (self.sortDir > 0 ? " ▲" : " ▼") : "";
      var button = h("button", {type: "button", class: "sort", "data-col": col, title: col, text: shortName(col) + arrow});
      button.addEventListener("click", function () {
        /* a first click on a metric with a goal puts its best value first */
        var first = self.data.goals[col] === "max" ? -1 : 1;
        self.sortDir = i === self.sortCol ? -self.sortDir : first;
        self.sortCol = i;
        self.render();
      });
      names.appendChild(h("th", {class: col.split(".")[0]}, [button]));
      var input = h("input", {type: "search", "data-col": col, "aria-label": "filter " + col, placeholder: "filter"});
      input.value = self.filterText && self.filterText[col] || "";
      input.addEventListener("input", function () {
        self.filterText = self.filterText || {};
        self.filterText[col] = input.value;
        if (input.value.trim()) self.filters[col] = parseFilter(input.value); else delete self.filters[col];
        self.page = 0;
        self.renderBody();
      });
      filters.appendChild(h("th", {}, [input]));
    });
    thead.appendChild(names);
    thead.appendChild(filters);
  };

  ExperimentTable.prototype.cell = function (row, col) {
    var v = row.values[this.cols.indexOf(col)];
    if (col === "run_name") {
      return h("td", {class: "name"}, [h("a", {href: row.page, text: show(v)})]);
    }
    var cls = col.split(".")[0];
    if (col === "verdict" && v) return h("td", {}, [h("span", {class: "badge verdict-" + v.replace(/[^a-z]/g, ""), text: v})]);
    if (col === "start_time" && v) v = String(v).slice(0, 16).replace("T", " ");
    if (typeof v === "number") cls += " num";
    if (this.best[col] !== undefined && v === this.best[col]) cls += " best";
    return h("td", {class: cls, text: show(v)});
  };

  ExperimentTable.prototype.renderBody = function () {
    var self = this, tbody = byId("runs").tBodies[0];
    var groups = this.ordered();
    var pages = Math.max(1, Math.ceil(groups.length / PAGE_ROWS));
    this.page = Math.min(this.page, pages - 1);
    tbody.textContent = "";
    groups.slice(this.page * PAGE_ROWS, (this.page + 1) * PAGE_ROWS).forEach(function (g) {
      [g.row].concat(g.children).forEach(function (row) {
        var box = h("input", {type: "checkbox", "aria-label": "select " + row.values[0], "data-id": row.id});
        box.checked = self.selected.indexOf(row.id) >= 0;
        box.addEventListener("change", function () { self.toggle(row.id, box.checked); });
        var tr = h("tr", {class: row.parent && g.row !== row ? "child" : "", "data-id": row.id},
                   [h("td", {class: "pick"}, [box])]);
        self.visible.forEach(function (col) { tr.appendChild(self.cell(row, col)); });
        tbody.appendChild(tr);
      });
    });
    var count = groups.reduce(function (n, g) { return n + 1 + g.children.length; }, 0);
    byId("row-count").textContent = count + " of " + this.data.rows.length + " runs";
    this.renderPager(pages);
    drawExperimentCharts(this);
  };

  ExperimentTable.prototype.renderPager = function (pages) {
    var self = this, nav = byId("table-pager");
    nav.textContent = "";
    if (pages < 2) return;
    var go = function (delta) {
      return function () { self.page = Math.max(0, Math.min(pages - 1, self.page + delta)); self.renderBody(); };
    };
    var prev = h("button", {type: "button", text: "← previous"}), next = h("button", {type: "button", text: "next →"});
    prev.addEventListener("click", go(-1));
    next.addEventListener("click", go(1));
    nav.appendChild(prev);
    nav.appendChild(h("span", {text: " page " + (this.page + 1) + " of " + pages + " "}));
    nav.appendChild(next);
  };

  ExperimentTable.prototype.toggle = function (id, on) {
    var at = this.selected.indexOf(id);
    if (on && at < 0) this.selected.push(id);
    if (!on && at >= 0) this.selected.splice(at, 1);
    byId("compare-selected").disabled = this.selected.length < 1;
    drawSelectedHistory(this);
  };

  ExperimentTable.prototype.render = function () { this.renderHead(); this.renderBody(); };

  function columnChooser(table) {
    var box = byId("column-choices");
    table.cols.forEach(function (col) {
      var input = h("input", {type: "checkbox", value: col});
      input.checked = table.visible.indexOf(col) >= 0;
      input.addEventListener("change", function () {
        table.visible = table.cols.filter(function (c) {
          return c === col ? input.checked : table.visible.indexOf(c) >= 0;
        });
        table.render();
      });
      box.appendChild(h("label", {}, [input, document.createTextNode(" " + col)]));
    });
  }

  function fillSelect(select, cols, preferred) {
    cols.forEach(function (c) { option(select, c, shortName(c)); });
    if (preferred && cols.indexOf(preferred) >= 0) select.value = preferred;
  }

  function drawSelectedHistory(table) {
    var metric = byId("history-metric").value, chart = byId("history-chart");
    var rows = table.data.rows.filter(function (r) { return table.selected.indexOf(r.id) >= 0; });
    if (!rows.length || !metric) { chart.textContent = "Tick runs in the table to overlay their histories."; return; }
    loadRuns(rows.map(function (r) { return {id: r.id, src: r.data}; }), function () {
      var key = metric.replace(/^metrics\./, "");
      var series = rows.map(function (r) { return window.LB_RUNS[r.id]; })
        .filter(function (r) { return r && r.history && r.history[key]; })
        .map(function (r, i) { return {name: r.name, points: r.history[key], color: i}; });
      if (series.length) LBC.line(chart, series, {ylabel: key});
      else chart.textContent = "The selected runs logged no history of " + key + ".";
    });
  }

  function drawExperimentCharts(table) {
    var rows = table.filteredRows().slice(0, 2000);
    var metric = byId("parallel-metric").value;
    var params = varying(table.data, table.cols.filter(function (c) { return c.indexOf("params.") === 0; })).slice(0, 8);
    var col = function (name) {
      var i = table.cols.indexOf(name);
      return {name: name, values: rows.map(function (r) { var v = r.values[i]; return v === undefined ? null : v; })};
    };
    var pc = byId("parallel-chart");
    if (metric && params.length && rows.length) {
      LBC.parallel(pc, params.map(col).concat([col(metric)]), rows.map(function (r) { return r.values[0]; }));
    } else pc.textContent = "Needs runs with varying params and a metric.";
    var x = byId("scatter-x").value, y = byId("scatter-y").value, sc = byId("scatter-chart");
    var xi = table.cols.indexOf(x), yi = table.cols.indexOf(y);
    var points = rows.filter(function (r) { return xi >= 0 && r.values[xi] !== null && typeof r.values[yi] === "number"; })
      .map(function (r) { return {x: r.values[xi], y: r.values[yi], label: r.values[0]}; });
    if (points.length) LBC.scatter(sc, points, {xlabel: shortName(x), ylabel: shortName(y)});
    else sc.textContent = "No run has both values.";
  }

  function experimentPage() {
    var data = window.LB_EXP;
    if (!data) return;
    var table = new ExperimentTable(data);
    var metrics = data.columns.filter(function (c) { return c.indexOf("metrics.") === 0; });
    var params = data.columns.filter(function (c) { return c.indexOf("params.") === 0; });
    fillSelect(byId("history-metric"), metrics, data.history_metric || data.default_metric);
    fillSelect(byId("parallel-metric"), metrics, data.default_metric);
    fillSelect(byId("scatter-x"), params, varying(data, params)[0]);
    fillSelect(byId("scatter-y"), metrics, data.default_metric);
    columnChooser(table);
    byId("filter").addEventListener("input", function (ev) {
      table.text = ev.target.value.trim().toLowerCase();
      table.page = 0;
      table.renderBody();
    });
    byId("flat").addEventListener("change", function (ev) {
      table.flat = ev.target.checked;
      table.page = 0;
      table.renderBody();
    });
    byId("compare-selected").addEventListener("click", function () {
      window.location.href = "compare.html#ids=" + table.selected.join(",");
    });
    ["parallel-metric", "scatter-x", "scatter-y"].forEach(function (id) {
      byId(id).addEventListener("change", function () { drawExperimentCharts(table); });
    });
    byId("history-metric").addEventListener("change", function () { drawSelectedHistory(table); });
    table.render();
    window.LB_TABLE = table;
  }

  /* -- compare page -- */
  function selection() {
    var found = /[#&]ids=([^&]*)/.exec(window.location.hash) || /[?&]runs=([^&]*)/.exec(window.location.search);
    if (!found) return [];
    var text;
    try { text = decodeURIComponent(found[1]); } catch (e) { return []; }
    return text.split(",").filter(function (t) { return t.length > 0 && t.length <= 500; });
  }

  var FULL_ID = /^[0-9a-f]{32}$/;

  /* Names (NAME, NAME@latest, NAME~N) and id prefixes (4+ hex) become ids through data/handles.js,
     loaded only when a link uses them; tokens are only ever lookup keys and textContent. */
  function resolveHandles(tokens, done) {
    if (tokens.every(function (t) { return FULL_ID.test(t); })) { done(tokens, []); return; }
    function resolve() {
      var handles = window.LB_HANDLES || {ids: [], names: {}}, ids = [], unknown = [];
      tokens.forEach(function (t) {
        var id = null, m = /^(.+?)(?:@latest|~(\d{1,6}))$/.exec(t);
        var named = Object.prototype.hasOwnProperty.call(handles.names, t) ? handles.names[t] : null;
        if (FULL_ID.test(t) && handles.ids.indexOf(t) >= 0) id = t;
        else if (named && named.length === 1) id = named[0];
        else if (!named && m && Object.prototype.hasOwnProperty.call(handles.names, m[1])) {
          id = handles.names[m[1]][m[2] ? Number(m[2]) : 0] || null;
        } else if (!named && /^[0-9a-f]{4,31}$/.test(t)) {
          var hits = handles.ids.filter(function (x) { return x.indexOf(t) === 0; });
          if (hits.length === 1) id = hits[0];
        }
        if (id && SAFE_ID.test(id)) ids.push(id); else unknown.push(named && named.length > 1 ? t + " (" + named.length + " runs: use " + t + "@latest or " + t + "~1)" : t);
      });
      done(ids, unknown);
    }
    if (window.LB_HANDLES) { resolve(); return; }
    var s = document.createElement("script");
    s.src = "data/handles.js";
    s.onload = s.onerror = resolve;
    document.body.appendChild(s);
  }

  function comparePage() {
    var tokens = selection();
    var status = byId("compare-status");
    if (!tokens.length) return;
    status.textContent = "Loading " + tokens.length + " runs…";
    resolveHandles(tokens, function (ids, unknown) { compareRuns(ids, unknown, status); });
  }

  function compareRuns(ids, unknown, status) {
    loadRuns(ids.map(function (id) { return {id: id, src: "data/run-" + id + ".js"}; }), function (missing) {
      var runs = ids.map(function (id) { return window.LB_RUNS[id]; }).filter(Boolean);
      var lost = unknown.concat(missing);
      status.textContent = runs.length + " runs" + (lost.length ? " (not found: " + lost.join(", ") + ")" : "");
      if (!runs.length) return;
      paramTable(runs);
      metricTable(runs);
      var metrics = {};
      runs.forEach(function (r) { Object.keys(r.history || {}).forEach(function (k) { metrics[k] = 1; }); });
      historyCharts(byId("compare-history"), runs, Object.keys(metrics).sort());
      ["compare-params", "compare-metrics", "compare-charts"].forEach(function (id) { byId(id).hidden = false; });
    });
  }

  function headerRow(runs) {
    return h("tr", {}, [h("th")].concat(runs.map(function (r) {
      return h("th", {}, [h("a", {href: r.page, text: r.name}), h("div", {class: "meta", text: r.experiment})]);
    })));
  }

  function paramTable(runs) {
    var table = byId("param-table"), keys = {};
    runs.forEach(function (r) { Object.keys(r.params).forEach(function (k) { keys[k] = 1; }); });
    table.textContent = "";
    table.appendChild(headerRow(runs));
    Object.keys(keys).sort().forEach(function (k) {
      var values = runs.map(function (r) { return k in r.params ? JSON.stringify(r.params[k]) : "(unset)"; });
      var differs = values.some(function (v) { return v !== values[0]; });
      var tr = h("tr", {class: differs ? "differs" : "same"}, [h("th", {text: k})]);
      runs.forEach(function (r) { tr.appendChild(h("td", {text: k in r.params ? show(r.params[k]) : "—"})); });
      table.appendChild(tr);
    });
    byId("only-diff").addEventListener("change", function (ev) { table.classList.toggle("only-diff", ev.target.checked); });
  }

  function metricTable(runs) {
    var table = byId("metric-table"), keys = {};
    runs.forEach(function (r) { Object.keys(r.metrics).forEach(function (k) { keys[k] = r.metrics[k].goal; }); });
    table.textContent = "";
    table.appendChild(headerRow(runs));
    Object.keys(keys).sort().forEach(function (k) {
      var goal = keys[k], best = null;
      runs.forEach(function (r) {
        var v = r.metrics[k] && r.metrics[k].last;
        if (goal && typeof v === "number" && (best === null || (goal === "max" ? v > best : v < best))) best = v;
      });
      var tr = h("tr", {}, [h("th", {text: k + (goal === "max" ? " ↑" : goal === "min" ? " ↓" : "")})]);
      runs.forEach(function (r) {
        var m = r.metrics[k];
        var td = h("td", {class: "num" + (m && m.last === best && runs.length > 1 ? " best" : ""), text: m ? show(m.last) : "—"});
        if (m) td.title = "min " + show(m.min) + " · max " + show(m.max);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
  }

  /* -- search page -- */
  function searchPage() {
    var q = new URLSearchParams(window.location.search).get("q") || "";
    var input = byId("q");
    input.value = q;
    var run = function (text) {
      var words = text.toLowerCase().split(/\s+/).filter(Boolean);
      var list = byId("search-results");
      list.textContent = "";
      if (!words.length) { byId("search-count").textContent = ""; return; }
      var hits = (window.LB_SEARCH || []).filter(function (item) {
        var hay = (item[1] + " " + item[2] + " " + item[3]).toLowerCase();
        return words.every(function (w) { return hay.indexOf(w) >= 0; });
      });
      byId("search-count").textContent = hits.length + " run" + (hits.length === 1 ? "" : "s") + " match";
      hits.slice(0, 200).forEach(function (item) {
        var lower = item[3].toLowerCase(), at = Math.max(0, lower.indexOf(words[0]) - 60);
        list.appendChild(h("li", {}, [h("a", {href: item[0], text: item[1]}),
          h("span", {class: "meta", text: " · " + item[2]}),
          h("p", {class: "snippet", text: (at ? "…" : "") + item[3].slice(at, at + 200).replace(/\s+/g, " ")})]));
      });
    };
    input.addEventListener("input", function () { run(input.value); });
    run(q);
  }

  var pages = {run: runPage, experiment: experimentPage, compare: comparePage, search: searchPage};
  var page = pages[document.body.getAttribute("data-page")];
  if (page) page();
  if (document.body.getAttribute("data-page") === "compare") {
    window.addEventListener("hashchange", function () { window.location.reload(); });
  }
})();
