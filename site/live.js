/* labbook journal: runs training now, when the pages are served by `labbook site serve`.
   Polls the server's read-only /_live/runs.json every few seconds and shows each running
   run (values so far, sparkline, last update) in a panel at the top of the page. On a static
   host (Pages, file://) there is no endpoint: the first miss stops the polling.
   Server text only ever goes through textContent. */
(function () {
  "use strict";
  if (!/^https?:$/.test(window.location.protocol)) return;
  var EVERY_MS = 3000;
  var PAGE = /^run-[A-Za-z0-9_-]{1,80}\.html$/;

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function fmt(v) { return v === null || v === undefined ? "NaN" : (window.LBC ? LBC.fmt(v) : String(v)); }
  function ago(iso) {
    if (!iso) return "";
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return "updated " + s + "s ago";
  }

  function panel() {
    var node = document.getElementById("lb-live");
    if (!node) {
      node = h("section", {id: "lb-live", class: "live", "aria-live": "polite"});
      var main = document.querySelector("main");
      main.insertBefore(node, main.firstChild);
    }
    return node;
  }

  function render(runs) {
    var node = panel();
    node.textContent = "";
    if (!runs.length) { node.hidden = true; return; }
    node.hidden = false;
    node.appendChild(h("h2", {text: "Running now"}));
    runs.forEach(function (run) {
      var name = PAGE.test(run.page) ? h("a", {href: run.page, text: String(run.name)})
                                     : h("span", {text: String(run.name)});
      var item = h("div", {class: "live-run", "data-run": String(run.id)}, [
        h("p", {}, [name, h("span", {class: "meta", text: " · " + run.status + " · " + ago(run.updated)})])]);
      var rows = (run.metrics || []).map(function (m) {
        return h("tr", {"data-metric": String(m.key)}, [h("td", {text: String(m.key)}),
          h("td", {class: "num", text: fmt(m.last)}), h("td", {class: "meta", text: "step " + m.step}),
          h("td", {class: "spark", text: String(m.spark || "")})]);
      });
      if (rows.length) item.appendChild(h("table", {class: "kv"}, rows));
      node.appendChild(item);
    });
  }

  function poll() {
    fetch("_live/runs.json", {cache: "no-store"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (data) {
      if (!data || !Array.isArray(data.runs)) return;  // no endpoint here: stop
      render(data.runs);
      window.setTimeout(poll, EVERY_MS);
    }).catch(function () { /* the server went away: stop */ });
  }
  poll();
})();
