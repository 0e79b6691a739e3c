// curvebench report: builds the page from the JSON in #report-data.
// Every text from a results file is inserted with textContent (never innerHTML).
// Conventions: orientation in degrees, counter-clockwise on screen (0 = opens toward +x);
// curvature in 1/px; heatmap colour = post-ReLU sigma on 0..vmax (turbo), <= 0 black, NaN grey.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const VMAX = DATA.vmax;
  const CMAP = DATA.colormap;
  const GREY = [56, 56, 56];
  const SVGNS = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- small helpers
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);
    return e;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || (typeof x === "number" && !isFinite(x))) return "\u2013";
    if (typeof x !== "number") return String(x);
    return x.toFixed(digits === undefined ? 2 : digits);
  }
  function gnum(x) { return typeof x === "number" ? Number(x.toPrecision(6)) : x; }
  function shortLayer(l) { return l.startsWith("mixed") ? l.slice(5) : l; }
  // the article's unit label ("3b:379"); long layer names (blocks.3.2.depthwise) give just the channel
  function unitLabel(l, ch) { const s = shortLayer(l); return s.length > 8 ? "#" + ch : s + ":" + ch; }
  function decode(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }
  function hueColour(deg) { return "hsl(" + ((deg % 360) + 360) % 360 + ",85%,40%)"; }

  // ---------------------------------------------------------------- stimulus drawing
  // The page knows no stimulus geometry: suites.report_stimuli computed each shape with
  // stimuli in Python (path, ticks, fill region in the path's frame: u along the tangent at
  // the midpoint, v toward the centre of curvature; colours; width; window) and embedded it
  // in spec.shapes. Here a shape is only turned by the cell's orientation (degrees,
  // counter-clockwise on screen) and its midpoint put on the stimulus position (x, y) px.
  function css(rgb) { return "rgb(" + rgb.map(c => Math.round(255 * Math.min(1, Math.max(0, c)))).join(",") + ")"; }
  function drawStimulus(canvas, spec, cell) {
    const size = spec.size;
    canvas.width = size; canvas.height = size;
    const ctx = canvas.getContext("2d");
    const sh = (spec.shapes || {})[cell.shape];
    if (!sh) { ctx.fillStyle = "#777"; ctx.fillRect(0, 0, size, size); return; }  // no stimuli computed
    ctx.fillStyle = css(sh.bg); ctx.fillRect(0, 0, size, size);
    const th = Number(cell.orientation || 0) * Math.PI / 180;
    const [px, py] = cell.position || spec.position;
    const su = Math.sin(th), cu = Math.cos(th);
    const trace = (flat) => {
      ctx.beginPath();
      for (let i = 0; i < flat.length; i += 2) {
        const x = px + flat[i] * su + flat[i + 1] * cu, y = py + flat[i] * cu - flat[i + 1] * su;
        if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      }
    };
    ctx.save();
    if (sh.window !== null) {  // outside the stimulus window only background is drawn
      ctx.beginPath(); ctx.rect(px - sh.window / 2, py - sh.window / 2, sh.window, sh.window); ctx.clip();
    }
    ctx.fillStyle = css(sh.fg); ctx.strokeStyle = css(sh.fg);
    if (sh.fill_region) {
      ctx.globalAlpha = sh.fill; trace(sh.fill_region); ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
    }
    if (sh.width > 0) {
      ctx.lineWidth = sh.width; ctx.lineCap = "butt"; ctx.lineJoin = "round";
      trace(sh.path); ctx.stroke();
      sh.ticks.forEach(t => { trace(t); ctx.stroke(); });
    }
    ctx.restore();
  }

  // ---------------------------------------------------------------- inspector
  const inspector = {
    row: document.getElementById("stim-row"),
    body: document.querySelector("#insp-fields tbody"),
    note: document.getElementById("insp-note"),
    show(run, cells, fields, note) {
      this.row.textContent = "";
      cells.forEach(c => {
        const cv = el("canvas", { class: "stim" });
        drawStimulus(cv, run.stimulus, c.params);
        if (c.label) cv.title = c.label;
        this.row.appendChild(cv);
      });
      this.body.textContent = "";
      fields.forEach(([name, value]) => {
        const tr = el("tr", { "data-field": name });
        tr.appendChild(el("td", {}, name));
        tr.appendChild(el("td", { class: "value" }, value));
        this.body.appendChild(tr);
      });
      this.note.textContent = note || "";
    },
  };

  // the hovered heatmap cell, outlined
  const cursor = el("div", { id: "cell-cursor" });
  cursor.hidden = true;
  document.body.appendChild(cursor);

  // ---------------------------------------------------------------- per-layer data
  function layerView(run, layer) {
    // Lazily decoded grids: key "" = all stimuli, "param=value" = one series value.
    const cache = {};
    const O = run.orientation.length, K = run.curvature.length;
    return {
      O, K,
      grid(key) {
        if (!(key in cache)) cache[key] = decode(layer.grids[key in layer.grids ? key : ""]);
        return cache[key];
      },
      // post-ReLU activation and sigma of shown channel index ci at (row ik, column io)
      value(key, ci, ik, io) {
        const a = this.grid(key)[(ci * K + ik) * O + io];
        const byKey = (layer.mean_by_series || {})[key];  // a reference level per series value (discover: the blank)
        const m = byKey ? byKey[ci] : layer.mean[ci], s = layer.std[ci];
        const sig = (s && s > 0 && m !== null) ? (a - m) / s : NaN;
        return [a, sig];
      },
      // radial tuning curve: sigma at the unit's best curvature (skipping k = 0), clipped at 0
      radial(key, ci) {
        let best = -1, bestVal = -Infinity;
        const allowed = run.curvature.some(k => Math.abs(k) > 1e-12);
        for (let ik = 0; ik < K; ik++) {
          if (allowed && Math.abs(run.curvature[ik]) <= 1e-12) continue;
          for (let io = 0; io < O; io++) {
            const v = this.value(key, ci, ik, io)[1];
            if (v > bestVal) { bestVal = v; best = ik; }
          }
        }
        const out = new Array(O).fill(0);
        if (best < 0) return out;
        for (let io = 0; io < O; io++) { const v = this.value(key, ci, best, io)[1]; out[io] = isFinite(v) ? Math.max(0, v) : 0; }
        return out;
      },
    };
  }

  function paintHeatmap(canvas, view, key, ci) {
    const O = view.O, K = view.K;
    canvas.width = O; canvas.height = K;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(O, K);
    for (let ik = 0; ik < K; ik++) {
      for (let io = 0; io < O; io++) {
        const s = view.value(key, ci, ik, io)[1];
        let c;
        if (!isFinite(s)) c = GREY;
        else if (s <= 0) c = [0, 0, 0];
        else c = CMAP[Math.min(CMAP.length - 1, Math.floor(s / VMAX * CMAP.length))];
        const j = 4 * (ik * O + io);
        img.data[j] = c[0]; img.data[j + 1] = c[1]; img.data[j + 2] = c[2]; img.data[j + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  // ---------------------------------------------------------------- radial plot
  function radialPlot(run, layer, view, key, tuningById, size, onSelect) {
    const root = svg("svg", { class: "radial", viewBox: "0 0 " + size + " " + size, "data-layer": layer.name });
    const c = size / 2, R = size / 2 - 26;
    const curves = layer.shown.map((ch, ci) => view.radial(key, ci));
    let top = 0;
    curves.forEach(v => v.forEach(x => { if (x > top) top = x; }));
    top = top > 0 ? top : 1;
    for (let f = 1; f <= 4; f++) root.appendChild(svg("circle", { class: "grid", cx: c, cy: c, r: R * f / 4 }));
    for (let a = 0; a < 360; a += 45) {
      const x = c + (R + 12) * Math.cos(a * Math.PI / 180), y = c - (R + 12) * Math.sin(a * Math.PI / 180);
      root.appendChild(svg("line", { class: "grid", x1: c, y1: c, x2: c + R * Math.cos(a * Math.PI / 180), y2: c - R * Math.sin(a * Math.PI / 180) }));
      const t = svg("text", { x: x, y: y + 3, "text-anchor": "middle" }); t.textContent = a + "\u00b0"; root.appendChild(t);
    }
    const lbl = svg("text", { x: c + 3, y: c - R - 2 }); lbl.textContent = fmt(top, 1) + " \u03c3"; root.appendChild(lbl);
    const paths = [];
    layer.shown.forEach((ch, ci) => {
      const v = curves[ci];
      let d = "";
      run.orientation.forEach((o, io) => {
        const r = R * v[io] / top, a = o * Math.PI / 180;
        d += (io ? "L" : "M") + (c + r * Math.cos(a)).toFixed(2) + "," + (c - r * Math.sin(a)).toFixed(2);
      });
      const pref = (tuningById[ch] || {}).preferred_orientation;
      const col = pref === null || pref === undefined ? "#888" : hueColour(pref);
      const path = svg("path", { class: "curve", d: d + "Z", stroke: col, fill: col, "data-channel": ch });
      const title = svg("title"); title.textContent = layer.name + ":" + ch + "  preferred " + fmt(pref, 1) + "\u00b0";
      path.appendChild(title);
      path.addEventListener("mouseenter", () => { root.classList.add("isolating"); path.classList.add("active"); });
      path.addEventListener("mouseleave", () => { root.classList.remove("isolating"); path.classList.remove("active"); });
      path.addEventListener("click", () => onSelect(ch));
      paths.push(path);
      root.appendChild(path);
    });
    return { root, paths };
  }

  // ---------------------------------------------------------------- sortable tables
  function sortableTable(columns, rows, rowClass) {
    // columns: [{key, label, digits, text}], rows: arrays of raw values
    const wrap = el("div", { class: "tablewrap" });
    const table = el("table", { class: "sortable" });
    const thead = el("thead"), hr = el("tr");
    const tbody = el("tbody");
    columns.forEach((col, j) => {
      const th = el("th", { class: col.text ? "text" : "", "data-col": col.key }, col.label);
      th.addEventListener("click", () => {
        const asc = !th.classList.contains("asc");
        hr.querySelectorAll("th").forEach(t => t.classList.remove("asc", "desc"));
        th.classList.add(asc ? "asc" : "desc");
        const trs = Array.from(tbody.rows);
        trs.sort((a, b) => {
          const x = a._raw[j], y = b._raw[j];
          const nx = typeof x === "number" && isFinite(x), ny = typeof y === "number" && isFinite(y);
          let r;
          if (nx && ny) r = x - y;
          else if (nx !== ny) return nx ? -1 : 1; // missing values last either way
          else r = String(x).localeCompare(String(y));
          return asc ? r : -r;
        });
        trs.forEach(t => tbody.appendChild(t));
      });
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    rows.forEach((r, i) => {
      const tr = el("tr", rowClass ? { class: rowClass(i) } : {});
      tr._raw = r;
      r.forEach((v, j) => tr.appendChild(el("td", { class: columns[j].text ? "text" : "" },
        columns[j].text ? (v === null ? "" : v) : fmt(v, columns[j].digits))));
      tbody.appendChild(tr);
    });
    table.appendChild(thead); table.appendChild(tbody);
    wrap.appendChild(table);
    return wrap;
  }

  const TUNING_COLUMNS = [
    { key: "channel", label: "channel", digits: 0 },
    { key: "preferred_orientation", label: "preferred (deg)", digits: 1 },
    { key: "circular_mean_orientation", label: "circular mean (deg)", digits: 1 },
    { key: "best_curvature", label: "best curvature (1/px)", digits: 4 },
    { key: "peak_sigma", label: "peak \u03c3", digits: 2 },
    { key: "peak_activation", label: "peak activation", digits: 3 },
    { key: "fwhm_deg", label: "FWHM (deg)", digits: 1 },
    { key: "echo_index", label: "echo index", digits: 2 },
  ];

  // ---------------------------------------------------------------- one run
  function seriesKeys(run) {
    const keys = [["", "all stimuli (mean over " + (Object.keys(run.series).join(", ") || "nothing") + ")"]];
    for (const p in run.series) run.series[p].forEach(v => keys.push([p + "=" + gnum(v), p + " = " + gnum(v)]));
    if (run.default_series) keys.sort((a, b) => (b[0] === run.default_series) - (a[0] === run.default_series));
    return keys;
  }

  function cellParams(run, key, io, ik) {
    // the stimuli a cell stands for: one per value of the series it averages over; each is a
    // shape of run.stimulus.shapes ("<curvature index>|<series value indices>") at the cell's orientation
    const names = Object.keys(run.series);
    const shape = idx => ({ orientation: run.orientation[io], shape: ik + "|" + idx.join(",") });
    if (key) {
      const i = key.indexOf("="), p = key.slice(0, i);
      const vi = run.series[p].findIndex(x => String(gnum(x)) === key.slice(i + 1));
      return [{ params: shape(names.map(n => (n === p ? vi : 0))), label: "" }];
    }
    if (!names.length) return [{ params: shape([]), label: "" }];
    return run.series[names[0]].map((v, vi) => ({
      params: shape(names.map((n, j) => (j === 0 ? vi : 0))), label: names[0] + " = " + gnum(v),
    }));
  }

  function buildRun(run, ri, container) {
    const sec = el("section", { class: "run", id: "run-" + ri, "data-run": ri });
    sec.appendChild(el("h2", {}, run.name + " \u2014 " + run.title));
    if (run.description) sec.appendChild(el("p", { class: "meta" }, run.description));
    const incomplete = run.rows < run.rows_total ? " (incomplete run: " + run.rows + " of " + run.rows_total + " stimuli)" : "";
    sec.appendChild(el("p", { class: "meta" }, "model " + (run.model || "?") + (run.weights_sha256 ? ", weights sha256 " + run.weights_sha256.slice(0, 12) : "") +
      " \u00b7 " + run.rows + " stimuli" + incomplete + " \u00b7 sigma from " + run.statistics));
    const controls = el("div", { class: "controls" });
    const layerSel = el("select", { class: "layer-select" });
    run.layers.forEach((l, i) => layerSel.appendChild(el("option", { value: i }, l.name)));
    const lab1 = el("label", {}, "layer "); lab1.appendChild(layerSel); controls.appendChild(lab1);
    const seriesSel = el("select", { class: "series-select" });
    seriesKeys(run).forEach(([k, t]) => seriesSel.appendChild(el("option", { value: k }, t)));
    if (Object.keys(run.series).length) { const lab2 = el("label", {}, "show "); lab2.appendChild(seriesSel); controls.appendChild(lab2); }
    const av = Object.keys(run.averaged);
    if (av.length) controls.appendChild(el("span", { class: "note" }, "averaged within each cell over " + av.join(", ")));
    sec.appendChild(controls);
    const body = el("div", { class: "run-body" });
    sec.appendChild(body);
    container.appendChild(sec);
    const draw = () => drawLayer(run, ri, run.layers[Number(layerSel.value)], seriesSel.value, body);
    layerSel.addEventListener("change", draw);
    seriesSel.addEventListener("change", draw);
    draw();
  }

  function selectHeatmap(ri, layerName, ch) {
    const hm = document.querySelector('#run-' + ri + ' .hm[data-layer="' + CSS.escape(layerName) + '"][data-channel="' + ch + '"]');
    document.querySelectorAll(".hm.selected").forEach(e => e.classList.remove("selected"));
    if (hm) { hm.classList.add("selected"); hm.scrollIntoView({ block: "center" }); }
    return hm;
  }

  function drawLayer(run, ri, layer, key, body) {
    body.textContent = "";
    const view = layerView(run, layer);
    const tuningById = {};
    layer.tuning.forEach(t => { tuningById[t.channel] = t; });
    const fig = el("div", { class: "figure" });
    const maps = el("div", { class: "heatmaps" });
    const kTop = run.curvature[0], kBot = run.curvature[run.curvature.length - 1];
    layer.shown.forEach((ch, ci) => {
      const row = el("div", { class: "hm", "data-layer": layer.name, "data-channel": ch, "data-index": ci });
      const label = el("div", { class: "label", title: layer.name + " channel " + ch }, unitLabel(layer.name, ch));
      label.appendChild(el("small", {}, "k " + Number(kTop.toPrecision(3)) + "\u2013" + Number(kBot.toPrecision(3))));
      row.appendChild(label);
      const cv = el("canvas", { class: "heatmap" });
      paintHeatmap(cv, view, key, ci);
      cv.addEventListener("mousemove", ev => {
        const r = cv.getBoundingClientRect();
        const io = Math.min(view.O - 1, Math.max(0, Math.floor((ev.clientX - r.left) / r.width * view.O)));
        const ik = Math.min(view.K - 1, Math.max(0, Math.floor((ev.clientY - r.top) / r.height * view.K)));
        const [a, s] = view.value(key, ci, ik, io);
        cursor.hidden = false;
        cursor.style.left = (window.scrollX + r.left + io * r.width / view.O - 1) + "px";
        cursor.style.top = (window.scrollY + r.top + ik * r.height / view.K - 1) + "px";
        cursor.style.width = Math.max(3, r.width / view.O) + "px";
        cursor.style.height = Math.max(3, r.height / view.K) + "px";
        const cells = cellParams(run, key, io, ik);
        const fields = [["layer", layer.name], ["channel", String(ch)],
          ["orientation", gnum(run.orientation[io]) + "\u00b0"], ["curvature", gnum(run.curvature[ik]) + " 1/px"]];
        if (key) fields.push([key.split("=")[0], key.split("=")[1]]);
        fields.push(["sigma", fmt(s, 3)], ["activation", fmt(a, 5)]);
        const note = (cells.length > 1 ? "the cell is the mean over these " + cells.length + " stimuli; " : "") +
          "post-ReLU activation; sigma from " + run.statistics;
        inspector.show(run, cells, fields, note);
      });
      cv.addEventListener("mouseleave", () => { cursor.hidden = true; });
      row.appendChild(cv);
      maps.appendChild(row);
    });
    const axis = el("div", { class: "axis" });
    axis.appendChild(el("div", {}, ""));
    const ticks = el("div", { class: "ticks" });
    const o0 = run.orientation[0], o1 = run.orientation[run.orientation.length - 1];
    const step = run.orientation.length > 1 ? (o1 - o0) / (run.orientation.length - 1) : 1;
    for (let t = 0; t <= 360; t += 45) {
      const f = (t - (o0 - step / 2)) / (o1 - o0 + step);
      if (f < 0 || f > 1) continue;
      const s = el("span", {}, t + "\u00b0"); s.style.left = (100 * f) + "%"; ticks.appendChild(s);
    }
    axis.appendChild(ticks);
    maps.appendChild(axis);
    maps.appendChild(el("div", { class: "note", style: "margin-left:70px" },
      "orientation (degrees, counter-clockwise); each row: curvature from " + gnum(kTop) + " (top) to " + gnum(kBot) + " 1/px (bottom)"));
    const bar = el("div", { class: "colorbar" });
    const bc = el("canvas", { width: 256, height: 1 });
    const bctx = bc.getContext("2d"), bimg = bctx.createImageData(256, 1);
    CMAP.forEach((c, i) => { bimg.data.set([c[0], c[1], c[2], 255], 4 * i); });
    bctx.putImageData(bimg, 0, 0);
    bar.appendChild(el("span", {}, "0"));
    bar.appendChild(bc);
    bar.appendChild(el("span", {}, VMAX + " \u03c3 (post-ReLU; black \u2264 0, grey no value)"));
    maps.appendChild(bar);
    fig.appendChild(maps);

    const rbox = el("div", { class: "radial-box" });
    rbox.appendChild(el("h3", {}, "radial tuning: " + layer.name));
    const rp = radialPlot(run, layer, view, key, tuningById, 360, ch => selectHeatmap(ri, layer.name, ch));
    rbox.appendChild(rp.root);
    const legend = el("div", { class: "legend" });
    layer.shown.forEach((ch, ci) => {
      const t = tuningById[ch] || {};
      const item = el("span", { "data-channel": ch });
      const sw = el("i"); sw.style.background = t.preferred_orientation === null ? "#888" : hueColour(t.preferred_orientation);
      item.appendChild(sw); item.appendChild(document.createTextNode(unitLabel(layer.name, ch)));
      item.addEventListener("mouseenter", () => rp.paths[ci].dispatchEvent(new MouseEvent("mouseenter")));
      item.addEventListener("mouseleave", () => rp.paths[ci].dispatchEvent(new MouseEvent("mouseleave")));
      item.addEventListener("click", () => selectHeatmap(ri, layer.name, ch));
      legend.appendChild(item);
    });
    rbox.appendChild(legend);
    rbox.appendChild(el("p", { class: "note" }, "radius: post-ReLU sigma at each unit's best curvature"));
    fig.appendChild(rbox);
    body.appendChild(fig);

    body.appendChild(el("h3", {}, "tuning: " + layer.name + " (" + layer.tuning.length + " channels; bold = shown above)"));
    body.appendChild(el("p", { class: "note" }, "preferred orientation: " + DATA.preferred_method + ". sigma from " + layer.statistics + "."));
    if (layer.chosen) body.appendChild(el("p", { class: "note chosen" }, "channels shown: " + layer.chosen + "."));
    layer.families.forEach(f => body.appendChild(el("p", { class: "note family-summary" },
      f.name + ": coverage " + fmt(100 * f.coverage, 0) + "% of the " + f.orientations_swept + " orientations swept, largest gap between preferred orientations " +
      fmt(f.largest_gap_deg, 1) + " deg, longest uncovered run " + fmt(f.largest_uncovered_deg, 1) + " deg")));
    const shown = new Set(layer.shown);
    const columns = TUNING_COLUMNS.concat(layer.extra_columns || []);
    const rows = layer.tuning.map(t => columns.map(c => t[c.key] === undefined ? null : t[c.key]));
    const tt = sortableTable(columns, rows, i => (shown.has(layer.tuning[i].channel) ? "family" : ""));
    tt.querySelector("table").classList.add("tuning");
    body.appendChild(tt);

    body.appendChild(el("h3", {}, "provenance"));
    const pt = sortableTable([{ key: "key", label: "attribute", text: true }, { key: "value", label: "value", text: true }], run.provenance);
    pt.querySelector("table").classList.add("provenance");
    body.appendChild(pt);
    if (run.suite_text) {
      const det = el("details");
      det.appendChild(el("summary", {}, "suite text"));
      det.appendChild(el("pre", { class: "suite" }, run.suite_text));
      body.appendChild(det);
    }
  }

  // ---------------------------------------------------------------- optimize results
  const OPTIMUM_COLUMNS = [
    { key: "channel", label: "channel", digits: 0 },
    { key: "orientation", label: "orientation (deg)", digits: 1 },
    { key: "curvature", label: "curvature (1/px)", digits: 4 },
    { key: "length", label: "length (px)", digits: 1 },
    { key: "width", label: "width (px)", digits: 2 },
    { key: "dx", label: "dx (px)", digits: 2 },
    { key: "dy", label: "dy (px)", digits: 2 },
    { key: "rounding", label: "rounding", digits: 2 },
    { key: "fill", label: "fill", digits: 2 },
    { key: "activation", label: "activation", digits: 4 },
    { key: "activation_sigma", label: "\u03c3", digits: 2 },
    { key: "sweep_max", label: "sweep max", digits: 4 },
    { key: "steps", label: "steps", digits: 0 },
    { key: "converged", label: "converged", digits: 0 },
  ];
  function optimumCell(c) {
    return { orientation: c.orientation, shape: "c" + c.channel, position: c.position };
  }
  function buildOptimum(run, ri, container) {
    const sec = el("section", { class: "run optimum", id: "run-" + ri, "data-run": ri });
    sec.appendChild(el("h2", {}, run.name + " \u2014 " + run.title));
    sec.appendChild(el("p", { class: "meta" }, "model " + (run.model || "?") + (run.weights_sha256 ? ", weights sha256 " + run.weights_sha256.slice(0, 12) : "") +
      " \u00b7 " + run.channels.length + " channels \u00b7 sigma from " + (run.statistics || "?")));
    sec.appendChild(el("p", { class: "note" }, "each channel's optimal stimulus, drawn from its parameters on the " + run.stimulus.size +
      " px receptive-field crop the unit saw; sorted by orientation; hover one for its numbers"));
    const grid = el("div", { class: "optima" });
    const byId = {};
    run.channels.forEach(c => { byId[c.channel] = c; });
    const shown = run.shown.map(ch => byId[ch]).filter(Boolean);
    shown.sort((a, b) => (a.orientation === null ? 1e9 : a.orientation) - (b.orientation === null ? 1e9 : b.orientation));
    shown.forEach(c => {
      const spec = run.stimulus;
      const card = el("div", { class: "optimum-card", "data-channel": c.channel });
      const cv = el("canvas", { class: "stim" });
      drawStimulus(cv, spec, optimumCell(c));
      card.appendChild(cv);
      card.appendChild(el("div", { class: "label" }, unitLabel(run.layer, c.channel) + " \u00b7 " + fmt(c.activation_sigma, 1) + " \u03c3"));
      card.addEventListener("mouseenter", () => {
        const fields = [["layer", run.layer], ["channel", String(c.channel)]];
        OPTIMUM_COLUMNS.slice(1).forEach(col => fields.push([col.key, fmt(c[col.key], col.digits)]));
        if (c.fg) fields.push(["fg", c.fg.map(v => v.toFixed(2)).join(", ")]);
        if (c.bg) fields.push(["bg", c.bg.map(v => v.toFixed(2)).join(", ")]);
        inspector.show({ stimulus: spec }, [{ params: optimumCell(c), label: "" }], fields,
          "activation: the objective (pre-ReLU where the layer has it); sigma from " + (run.statistics || "?"));
      });
      grid.appendChild(card);
    });
    sec.appendChild(grid);
    sec.appendChild(el("h3", {}, "optima: " + run.layer + " (" + run.channels.length + " channels)"));
    const rows = run.channels.map(c => OPTIMUM_COLUMNS.map(col => (c[col.key] === undefined ? null : c[col.key])));
    const t = sortableTable(OPTIMUM_COLUMNS, rows);
    t.querySelector("table").classList.add("tuning");
    sec.appendChild(t);
    sec.appendChild(el("h3", {}, "provenance"));
    const pt = sortableTable([{ key: "key", label: "attribute", text: true }, { key: "value", label: "value", text: true }], run.provenance);
    pt.querySelector("table").classList.add("provenance");
    sec.appendChild(pt);
    container.appendChild(sec);
  }

  // ---------------------------------------------------------------- several files
  function largestGap(prefs) {
    const p = prefs.filter(x => x !== null && isFinite(x)).map(x => ((x % 360) + 360) % 360).sort((a, b) => a - b);
    if (!p.length) return null;
    if (p.length === 1) return 360;
    let g = p[0] + 360 - p[p.length - 1];
    for (let i = 1; i < p.length; i++) g = Math.max(g, p[i] - p[i - 1]);
    return g;
  }
  function buildCompare(runs) {
    const sec = document.getElementById("compare");
    sec.hidden = false;
    sec.appendChild(el("h2", {}, "families side by side"));
    sec.appendChild(el("p", { class: "note" }, "shown channels of each file and layer; radius: post-ReLU sigma at each unit's best curvature (each plot on its own scale)"));
    const cards = el("div", { class: "cards" });
    const rows = [];
    runs.forEach((run, ri) => (run.kind === "sweep" ? run.layers : []).forEach(layer => {
      const card = el("div", { class: "card", "data-run": ri, "data-layer": layer.name });
      card.appendChild(el("h3", {}, run.name + " \u00b7 " + layer.name));
      card.appendChild(el("p", { class: "meta" }, (run.model || "?") + " \u00b7 " + run.title +
        (run.default_series ? " \u00b7 " + run.default_series.replace("=", " = ") : "")));
      const tuningById = {};
      layer.tuning.forEach(t => { tuningById[t.channel] = t; });
      const rp = radialPlot(run, layer, layerView(run, layer), run.default_series || "", tuningById, 300, ch => selectHeatmap(ri, layer.name, ch));
      card.appendChild(rp.root);
      cards.appendChild(card);
      const ts = layer.shown.map(c => tuningById[c] || {});
      const mean = key => { const v = ts.map(t => t[key]).filter(x => x !== null && x !== undefined && isFinite(x)); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
      rows.push([run.name, layer.name, run.model, layer.shown.length, largestGap(ts.map(t => t.preferred_orientation)),
        mean("fwhm_deg"), mean("best_curvature"), mean("peak_sigma")]);
    }));
    sec.appendChild(cards);
    const cols = [{ key: "file", label: "file", text: true }, { key: "layer", label: "layer", text: true }, { key: "model", label: "model", text: true },
      { key: "units", label: "units", digits: 0 }, { key: "gap", label: "largest gap (deg)", digits: 1 },
      { key: "fwhm", label: "mean FWHM (deg)", digits: 1 }, { key: "k", label: "mean best curvature (1/px)", digits: 4 },
      { key: "peak", label: "mean peak \u03c3", digits: 2 }];
    const t = sortableTable(cols, rows);
    t.querySelector("table").classList.add("comparison");
    sec.appendChild(t);
  }

  // ---------------------------------------------------------------- page
  document.getElementById("page-title").textContent = document.title;
  const container = document.getElementById("runs");
  // one builder per kind of section (suites.analysis.report.KINDS)
  const BUILDERS = { sweep: buildRun, optimum: buildOptimum };
  if (DATA.runs.filter(r => r.kind === "sweep").length > 1) buildCompare(DATA.runs);
  DATA.runs.forEach((run, ri) => BUILDERS[run.kind](run, ri, container));
  window.__report = { ready: performance.now(), data: DATA, drawStimulus: drawStimulus };
})();
