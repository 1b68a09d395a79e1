/* benchkit community site: sorting, filtering, search and permalinks for its tables.
   Plain JavaScript, no library, nothing fetched: the pages read without it, and with it a
   table sorts by any column (a button in each header), the leaderboard filters and
   searches, and the view is kept in the URL's #fragment, so a link reopens it. */
(function () {
  "use strict";

  var NUMBER = /-?[0-9][0-9,]*(\.[0-9]+)?([eE][-+]?[0-9]+)?/;

  /* A cell's sort value: its data-v when it has one, else its text; a number for
     numeric columns (the first number in the text: "~43 (38-49)" sorts as 43). */
  function cellValue(row, index, type) {
    var cell = row.cells[index];
    if (!cell) { return null; }
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    raw = String(raw).trim();
    if (type !== "num") { return raw === "" ? null : raw.toLowerCase(); }
    var match = raw.match(NUMBER);
    return match ? parseFloat(match[0].replace(/,/g, "")) : null;
  }

  /* Sort `table` by the column whose header has data-key `key`; missing values last. */
  function sortTable(table, key, dir) {
    var heads = table.tHead.rows[0].cells, index = -1, type = "text", i;
    for (i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-key") === key) {
        index = i;
        type = heads[i].getAttribute("data-type") || "text";
        heads[i].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
      } else if (heads[i].hasAttribute("aria-sort")) {
        heads[i].setAttribute("aria-sort", "none");
      }
    }
    if (index < 0) { return; }
    table.setAttribute("data-sort", key);
    table.setAttribute("data-dir", dir);
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, n) {
      return { row: row, n: n, v: cellValue(row, index, type) };
    });
    keyed.sort(function (a, b) {
      if (a.v === null || b.v === null) {
        return a.v === b.v ? a.n - b.n : (a.v === null ? 1 : -1);
      }
      var c = a.v < b.v ? -1 : (a.v > b.v ? 1 : 0);
      return (dir === "asc" ? c : -c) || a.n - b.n;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  /* Header buttons sort; a second press on the same column reverses it. Numbers start
     with the largest, text from A. `changed` runs after each sort (to update the URL). */
  function initSortable(table, changed) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var button = th.querySelector("button");
      if (!button || !th.getAttribute("data-key")) { return; }
      button.addEventListener("click", function () {
        var key = th.getAttribute("data-key");
        var first = th.getAttribute("data-type") === "num" ? "desc" : "asc";
        var dir = table.getAttribute("data-sort") === key
          ? (table.getAttribute("data-dir") === "asc" ? "desc" : "asc") : first;
        sortTable(table, key, dir);
        if (changed) { changed(); }
      });
    });
  }

  function readHash() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, "")), out = {};
    params.forEach(function (value, key) { out[key] = value; });
    return out;
  }

  function encode(state) {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (key) {
      if (state[key] !== "" && state[key] !== undefined && state[key] !== null) {
        params.set(key, state[key]);
      }
    });
    return params.toString();
  }

  /* Put the view in the URL without a new history entry (a file:// page included). */
  function writeHash(state) {
    var hash = encode(state);
    if (window.location.hash.replace(/^#/, "") === hash) { return hash; }
    try {
      window.history.replaceState(null, "", hash ? "#" + hash : window.location.pathname);
    } catch (e) {
      window.location.replace("#" + hash);
    }
    return hash;
  }

  function sortState(table) {
    return table.getAttribute("data-sort")
      ? { sort: table.getAttribute("data-sort"), dir: table.getAttribute("data-dir") } : {};
  }

  function restoreSort(table, state) {
    if (state.sort) { sortTable(table, state.sort, state.dir === "asc" ? "asc" : "desc"); }
  }

  /* The leaderboard: every control with data-filter narrows the rows (q: every word of
     the search must appear in the row), the count and the permalink follow. */
  function initBoard(form) {
    var table = document.getElementById(form.getAttribute("data-board"));
    var controls = Array.prototype.slice.call(form.querySelectorAll("[data-filter]"));
    var count = document.querySelector("[data-count]");
    var link = document.querySelector("[data-permalink]");
    var empty = document.querySelector("[data-empty]");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);

    function state() {
      var s = {};
      controls.forEach(function (c) { if (c.value) { s[c.getAttribute("data-filter")] = c.value; } });
      var order = sortState(table);
      Object.keys(order).forEach(function (k) { s[k] = order[k]; });
      return s;
    }

    function apply() {
      var s = state(), shown = 0;
      var words = (s.q || "").toLowerCase().split(/\s+/).filter(Boolean);
      rows.forEach(function (row) {
        var ok = controls.every(function (c) {
          var key = c.getAttribute("data-filter");
          return key === "q" || !c.value || row.getAttribute("data-" + key) === c.value;
        });
        if (ok && words.length) {
          var text = (row.textContent + " " + row.getAttribute("data-vendor")).toLowerCase();
          ok = words.every(function (w) { return text.indexOf(w) >= 0; });
        }
        row.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = String(shown);
      empty.hidden = shown > 0;
      link.href = "#" + writeHash(s);
    }

    function load() {
      var s = readHash();
      controls.forEach(function (c) { c.value = s[c.getAttribute("data-filter")] || ""; });
      restoreSort(table, s);
      apply();
    }

    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.querySelector("[data-clear]").addEventListener("click", function () {
      controls.forEach(function (c) { c.value = ""; });
      apply();
    });
    initSortable(table, apply);
    window.addEventListener("hashchange", load);
    load();
  }

  window.benchkit = { sortTable: sortTable, initSortable: initSortable, readHash: readHash,
                      encode: encode, writeHash: writeHash, sortState: sortState, restoreSort: restoreSort };

  document.addEventListener("DOMContentLoaded", function () {
    var boards = document.querySelectorAll("form[data-board]");
    Array.prototype.forEach.call(boards, initBoard);
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (t) {
      if (!t.hasAttribute("data-managed") && !document.querySelector('form[data-board="' + t.id + '"]')) {
        initSortable(t, null);
      }
    });
  });
}());
