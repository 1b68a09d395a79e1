/* benchkit projection explorer: shows the figures `benchkit site` computed with the
   projection for every chip, model, quantization, context and flash-attention setting.
   Nothing is computed here: each model's views are a data file (data/<model>.js, the
   same data as ../data/projection/<model>.json) loaded by a <script> element, which works
   from a folder (file://) as from a web server. Needs site.js (sorting, the URL). */
(function () {
  "use strict";

  var bk = window.benchkit;
  var setup = JSON.parse(document.getElementById("explorer-setup").textContent);
  var chips = setup.chips, models = setup.models, blocks = {}, requested = {};
  var $ = function (id) { return document.getElementById(id); };
  var ui = { model: $("x-model"), quant: $("x-quant"), depth: $("x-depth"), fa: $("x-fa"),
             vendor: $("x-vendor"), q: $("x-q") };
  var table = $("x-table");

  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = label;
    select.appendChild(o);
    return o;
  }

  function fill(select, values, label, keep, preferred) {
    select.textContent = "";
    values.forEach(function (v) { option(select, v, label(v)); });
    var want = [keep, preferred, values[0]].map(String);
    select.value = want.filter(function (v) { return values.map(String).indexOf(v) >= 0; })[0];
  }

  function modelOf(key) {
    return models.filter(function (m) { return m.key === key; })[0] || models[0];
  }

  function depthLabel(d) {
    return Number(d) === 0 ? "0 (short prompt)" : Number(d).toLocaleString("en-US") + " tokens";
  }

  /* The axes of the chosen model; a value kept when the new model offers it too. */
  function axes(state) {
    var m = modelOf(state.model || ui.model.value);
    ui.model.value = m.key;
    fill(ui.quant, m.quants, String, state.quant || ui.quant.value, "Q4_K_M");
    fill(ui.depth, m.depths, depthLabel, state.depth || ui.depth.value, 0);
    fill(ui.fa, m.flash_attn, String, state.fa || ui.fa.value, "on");
    return m;
  }

  function state() {
    var s = { model: ui.model.value, quant: ui.quant.value, depth: ui.depth.value,
              fa: ui.fa.value, vendor: ui.vendor.value, q: ui.q.value };
    var order = bk.sortState(table);
    Object.keys(order).forEach(function (k) { s[k] = order[k]; });
    return s;
  }

  function load(key) {
    if (blocks[key] || requested[key]) { return; }
    requested[key] = true;
    var script = document.createElement("script");
    script.src = "data/" + encodeURIComponent(key) + ".js";
    script.onerror = function () { message("The data of this model could not be loaded."); };
    document.body.appendChild(script);
  }

  /* Called by each data file. */
  window.benchkitView = function (block) {
    blocks[block.key] = block;
    render();
  };

  function message(text) {
    $("x-about").textContent = text;
  }

  function cell(tr, text, className, value) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (value !== undefined) { td.setAttribute("data-v", value); }
    if (text !== null) { td.textContent = text; }
    tr.appendChild(td);
    return td;
  }

  function figure(td, text, outside) {
    var span = document.createElement("span");
    span.className = "fig";
    span.textContent = text;
    td.appendChild(span);
    if (outside) {
      var mark = document.createElement("span");
      mark.className = "mark outside";
      mark.title = "outside the range the projection was fitted and checked on (notes below)";
      mark.textContent = "outside range";
      td.appendChild(document.createTextNode(" "));
      td.appendChild(mark);
    }
  }

  /* The status code of a row: null not tested, "x" does not fit, "m<tok/s>" measured. */
  function status(td, code, chip) {
    var kind = code === null ? "untested" : (code === "x" ? "nofit" : "measured");
    var mark = document.createElement("span");
    mark.className = "mark " + kind;
    mark.textContent = { measured: "measured", nofit: "does not fit", untested: "not tested" }[kind];
    td.appendChild(mark);
    var rest = kind === "measured" && code.length > 1 ? code.slice(1) + " tok/s"
      : (kind === "nofit" ? "(" + chip.memory_max + " max)" : "");
    if (rest) { td.appendChild(document.createTextNode(" " + rest)); }
    return kind;
  }

  function about(block, view) {
    var box = $("x-about");
    box.textContent = "";
    var p = document.createElement("p");
    if (!view || view.note) {
      p.textContent = view ? "No figures for this view: " + view.note + "." : "No such view.";
      box.appendChild(p);
      return;
    }
    var parts = [block.label + (block.kind === "preset" ? ", " + ui.quant.value : "")];
    if (view.model_gb !== null) { parts.push("file ~" + view.model_gb + " GB"); }
    if (view.memory_needed_gb !== null) {
      parts.push("memory needed at this context ~" + view.memory_needed_gb + " GB (weights, KV cache " +
                 view.kv_gb + " GB, compute buffer, driver room)");
    }
    parts.push("calibrated on " + block.anchor + "'s measurement of " + view.anchor_model +
               " and the other accepted results of that model");
    p.textContent = parts.join(" · ") + ".";
    box.appendChild(p);
  }

  function render() {
    var s = state(), block = blocks[s.model];
    if (!block) {                 /* nothing of the previous view stays on screen */
      message("Loading…");
      table.tBodies[0].textContent = "";
      $("x-command").textContent = "";
      $("x-notes").textContent = "";
      $("x-count").textContent = "";
      load(s.model);
      return;
    }
    var view = block.views[[s.quant, s.depth, s.fa].join("|")];
    about(block, view);
    var body = table.tBodies[0], words = s.q.toLowerCase().split(/\s+/).filter(Boolean);
    body.textContent = "";
    var shown = 0, rows = view ? view.rows : [];
    rows.forEach(function (r) {
      var chip = chips[r[0]];
      if (s.vendor && chip.vendor !== s.vendor) { return; }
      var text = (chip.label + " " + chip.id + " " + chip.vendor + " " + chip.backend).toLowerCase();
      if (!words.every(function (w) { return text.indexOf(w) >= 0; })) { return; }
      var tr = document.createElement("tr");
      tr.setAttribute("data-chip", chip.id);
      tr.setAttribute("data-cores", chip.cores === null ? "" : String(chip.cores));
      cell(tr, chip.label, "", chip.label.toLowerCase()).title = chip.memory + ", " + chip.backend;
      cell(tr, chip.vendor, "");
      cell(tr, chip.cores_label, "num", chip.cores === null ? "" : String(chip.cores));
      cell(tr, chip.bandwidth, "num");
      figure(cell(tr, null, "num decode"), r[1], r[4].indexOf("tg") >= 0);
      figure(cell(tr, null, "num prompt"), r[2], r[4].indexOf("pp") >= 0);
      var kind = status(cell(tr, null, "status"), r[3], chip);
      tr.className = kind;
      body.appendChild(tr);
      shown += 1;
    });
    $("x-count").textContent = shown + " of " + rows.length + " chips";
    document.querySelector("[data-empty]").hidden = shown > 0 || !view || !!view.note;
    $("x-command").textContent = view && view.command ? view.command : "";
    var notes = $("x-notes");
    notes.textContent = "";
    ((view && view.notes) || []).forEach(function (n) {
      var p = document.createElement("p");
      p.textContent = "Outside range: " + block.notes[n] + ".";
      notes.appendChild(p);
    });
    if (s.sort) { bk.restoreSort(table, s); }
    $("x-permalink").href = "#" + bk.writeHash(state());
  }

  function start() {
    var vendors = {};
    chips.forEach(function (c) { vendors[c.vendor] = true; });
    Object.keys(vendors).sort().forEach(function (v) { option(ui.vendor, v, v); });
    var groups = {};
    models.forEach(function (m) {
      var name = m.kind === "measured" ? "Measured models" : "Presets";
      if (!groups[name]) {
        groups[name] = document.createElement("optgroup");
        groups[name].label = name;
        ui.model.appendChild(groups[name]);
      }
      option(groups[name], m.key, m.label);
    });
    var s = bk.readHash();
    ui.vendor.value = s.vendor || "";
    ui.q.value = s.q || "";
    axes(s);
    if (s.sort) { table.setAttribute("data-sort", s.sort); table.setAttribute("data-dir", s.dir || "desc"); }
    ui.model.addEventListener("change", function () { axes({}); render(); });
    [ui.quant, ui.depth, ui.fa, ui.vendor].forEach(function (el) {
      el.addEventListener("change", render);
    });
    ui.q.addEventListener("input", render);
    $("explorer").addEventListener("submit", function (e) { e.preventDefault(); });
    bk.initSortable(table, function () { $("x-permalink").href = "#" + bk.writeHash(state()); });
    window.addEventListener("hashchange", function () {
      var h = bk.readHash();
      if (bk.encode(state()) === window.location.hash.replace(/^#/, "")) { return; }
      ui.vendor.value = h.vendor || "";
      ui.q.value = h.q || "";
      axes(h);
      render();
    });
    if (!models.length) { message("No model to project yet."); return; }
    render();
  }

  start();
}());
