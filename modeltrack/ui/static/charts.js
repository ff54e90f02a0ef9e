/* modeltrack line charts, drawn by uPlot (bundled in static/vendor/uplot, MIT; see its LICENSE).
 *
 * const c = new MTChart.LineChart(parentElement, {title: "loss", height: 300, id: "loss"});
 * c.setData([{label: "v1", color: info.palette[0], xs: [0, 1], ys: [0.9, 0.5], epochs: [0, 1]}], "epoch");
 *
 * Drag across a chart to zoom into that range of x (the y axis follows what is shown);
 * double-click resets. Hovering shows the x value (and the epoch, on a step axis) and each
 * line's value at that point. MTChart.controls() builds the page's smoothing slider (an
 * exponential moving average, debiased like TensorBoard's; the raw line stays, faded) and
 * log-scale switch; they apply to every chart and are remembered (localStorage).
 *
 * Colours are given by the caller (the server's palette, the same as `modeltrack plot`).
 * Labels are set with textContent only. Null y values break the line (NaN/inf in the store).
 * Each <figure> carries, for tests: data-points (points drawn), data-series (lines shown),
 * data-draw-ms, data-x-min / data-x-max (the x range shown), data-log and data-smoothing.
 */
"use strict";

const MTChart = (() => {
  const charts = new Set();
  const STORAGE_KEY = "modeltrack-charts";
  const settings = { smoothing: 0, log: false };
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    const s = Number(saved.smoothing);
    if (Number.isFinite(s) && s >= 0 && s < 1) settings.smoothing = s;
    settings.log = saved.log === true;
  } catch (_) { /* unreadable settings: keep the defaults */ }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { for (const c of live()) c.resize(); }, 100);
  });

  /** Charts still on the page; the others are destroyed (uPlot listens on window). */
  function live() {
    const out = [];
    for (const c of [...charts]) {
      if (document.body.contains(c.root)) out.push(c);
      else { c.destroy(); charts.delete(c); }
    }
    return out;
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(4)));
  }

  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);

  /**
   * Exponential moving average debiased as in TensorBoard: s_i = w·s_{i-1} + (1-w)·v_i,
   * divided by 1-w^n so the start is not pulled towards 0. Gaps (null) and alignment holes
   * (undefined) are kept as they are and skipped.
   */
  function ema(ys, w) {
    if (!(w > 0)) return ys;
    const out = new Array(ys.length);
    let last = 0, wn = 1;
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (!finite(v)) { out[i] = v; continue; }
      last = last * w + (1 - w) * v;
      wn *= w;
      out[i] = last / (1 - wn);
    }
    return out;
  }

  /** The y range of a linear axis: what is shown plus 5 % (a flat line gets ±10 % of its value). */
  function padRange(u, min, max) {
    if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
    if (max === min) { const d = Math.abs(min) * 0.1 || 1; return [min - d, max + d]; }
    const pad = (max - min) * 0.05;
    return [min - pad, max + pad];
  }

  const INT_INCRS = [];
  for (let m = 1; m <= 1e15; m *= 10) INT_INCRS.push(m, 2 * m, 5 * m);

  function cssVar(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  class LineChart {
    /**
     * @param {HTMLElement} parent where the chart is appended
     * @param {{title?: string, height?: number, id?: string}} opts
     */
    constructor(parent, opts = {}) {
      live();
      this.opts = opts;
      this.series = [];
      this.hidden = new Set();
      this.xLabel = "step";
      this.u = null;
      this.shape = "";
      this.zoomed = false;
      this.root = document.createElement("figure");
      this.root.className = "chart";
      if (opts.id) this.root.dataset.chart = opts.id;
      if (opts.title) {
        const cap = document.createElement("figcaption");
        cap.textContent = opts.title;
        cap.title = opts.title;
        this.root.append(cap);
      }
      this.box = document.createElement("div");
      this.box.className = "chart-box";
      this.plot = document.createElement("div");
      this.plot.className = "chart-plot";
      this.empty = document.createElement("div");
      this.empty.className = "chart-empty muted";
      this.empty.hidden = true;
      this.tip = document.createElement("div");
      this.tip.className = "chart-tip";
      this.tip.hidden = true;
      this.box.append(this.plot, this.empty, this.tip);
      this.legend = document.createElement("div");
      this.legend.className = "chart-legend";
      this.root.append(this.box, this.legend);
      parent.append(this.root);
      charts.add(this);
    }

    /**
     * @param {{label: string, color: string, xs: number[], ys: (number|null)[], epochs?: (number|null)[], dash?: boolean}[]} series
     * @param {string} xLabel
     */
    setData(series, xLabel) {
      this.series = series;
      if (xLabel) this.xLabel = xLabel;
      this.renderLegend();
      this.draw();
    }

    renderLegend() {
      const items = this.series.map((s, i) => {
        const item = document.createElement("button");
        item.type = "button";
        item.className = "legend-item" + (this.hidden.has(s.label) ? " off" : "");
        const sw = document.createElement("span");
        sw.className = "swatch" + (s.dash ? " dashed" : "");
        sw.style.borderColor = s.color;
        const text = document.createElement("span");
        text.textContent = s.label;
        item.append(sw, text);
        item.title = `show or hide ${s.label}`;
        item.addEventListener("click", () => {
          if (this.hidden.has(s.label)) this.hidden.delete(s.label);
          else this.hidden.add(s.label);
          item.classList.toggle("off", this.hidden.has(s.label));
          this.applyHidden();
        });
        item.dataset.index = String(i);
        return item;
      });
      this.legend.replaceChildren(...items);
    }

    width() { return Math.max(200, Math.floor(this.box.clientWidth || 600)); }
    height() { return this.opts.height || 300; }

    resize() {
      if (this.u) this.u.setSize({ width: this.width(), height: this.height() });
    }

    destroy() {
      if (this.u) { this.u.destroy(); this.u = null; }
    }

    /** Align every series on one x axis (uPlot's data shape), then apply log and smoothing. */
    prepare() {
      const n = this.series.length;
      const tables = this.series.map((s) => [s.xs, s.ys, s.epochs || new Array(s.xs.length).fill(null)]);
      const joined = n ? uPlot.join(tables) : [[]];
      const X = joined[0];
      let ys = [], epochs = [];
      for (let i = 0; i < n; i++) { ys.push(joined[1 + 2 * i]); epochs.push(joined[2 + 2 * i]); }
      let log = settings.log;
      if (log) {
        const positive = ys.some((a) => a.some((v) => finite(v) && v > 0));
        if (positive) ys = ys.map((a) => a.map((v) => (v === undefined ? undefined : finite(v) && v > 0 ? v : null)));
        else log = false; // nothing a log axis could show
      }
      const w = settings.smoothing;
      const smooth = w > 0 ? ys.map((a) => ema(a, w)) : null;
      return { X, ys, epochs, smooth, log, w };
    }

    draw() {
      const t0 = performance.now();
      const d = this.prepare();
      this.d = d;
      const n = this.series.length;
      let points = 0;
      for (const a of d.ys) for (const v of a) if (finite(v)) points++;
      this.root.dataset.log = d.log ? "1" : "0";
      this.root.dataset.smoothing = String(d.w);
      if (!points) {
        this.destroy();
        this.shape = "";
        this.empty.textContent = "no points yet";
        this.empty.hidden = false;
        this.plot.hidden = true;
        this.root.dataset.points = "0";
        this.root.dataset.series = "0";
        this.root.dataset.drawMs = (performance.now() - t0).toFixed(1);
        return;
      }
      this.empty.hidden = true;
      this.plot.hidden = false;
      const data = [d.X, ...d.ys, ...(d.smooth || [])];
      const shape = JSON.stringify([this.series.map((s) => [s.label, s.color, !!s.dash]), this.xLabel, d.log, !!d.smooth, this.height()]);
      if (this.u && shape === this.shape) {
        this.u.setData(data, !this.zoomed); // a live update keeps the user's zoom
      } else {
        this.destroy();
        this.zoomed = false;
        this.shape = shape;
        this.u = new uPlot(this.options(d), data, this.plot);
      }
      this.applyHidden(false);
      let shown = 0;
      for (let i = 0; i < n; i++) if (!this.hidden.has(this.series[i].label)) shown++;
      this.root.dataset.points = String(this.countPoints());
      this.root.dataset.series = String(shown);
      this.root.dataset.drawMs = (performance.now() - t0).toFixed(1);
      this.noteScale();
    }

    countPoints() {
      let points = 0;
      this.series.forEach((s, i) => {
        if (this.hidden.has(s.label)) return;
        for (const v of this.d.ys[i]) if (finite(v)) points++;
      });
      return points;
    }

    options(d) {
      const ink = cssVar("--ink-2", "#5b6474");
      const grid = cssVar("--grid", "#eceef2");
      const font = "11px system-ui, sans-serif";
      const integerX = this.series.every((s) => s.xs.every(Number.isInteger));
      const many = d.X.length > 60;
      const line = (s, faded) => ({
        label: s.label,
        stroke: faded ? s.color + "55" : s.color,
        width: faded ? 1 : 1.6,
        dash: s.dash ? [5, 4] : undefined,
        spanGaps: false,
        points: { show: !many && !faded, size: 5, fill: s.color, stroke: s.color },
      });
      const series = [{ label: this.xLabel }];
      for (const s of this.series) series.push(line(s, !!d.smooth));
      if (d.smooth) for (const s of this.series) series.push({ ...line(s, false), label: s.label + " (smoothed)" });
      const axis = (extra) => ({
        stroke: ink, font, labelFont: font,
        grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1, size: 4 },
        values: (u, splits) => splits.map(fmt),
        ...extra,
      });
      return {
        width: this.width(),
        height: this.height(),
        legend: { show: false },
        scales: { x: { time: false }, y: d.log ? { distr: 3, log: 10 } : { distr: 1, range: padRange } },
        axes: [
          axis({ label: this.xLabel, labelSize: 18, size: 36, ...(integerX ? { incrs: INT_INCRS } : {}) }),
          axis({ size: 62 }),
        ],
        series,
        cursor: {
          drag: { x: true, y: false, setScale: true },
          points: { size: 7 },
          focus: { prox: -1 },
        },
        hooks: {
          setCursor: [(u) => this.hover(u)],
          setScale: [(u, key) => { if (key === "x") this.noteScale(); }],
        },
      };
    }

    applyHidden(count = true) {
      if (!this.u) return;
      const n = this.series.length;
      this.series.forEach((s, i) => {
        const show = !this.hidden.has(s.label);
        if (this.u.series[1 + i].show !== show) this.u.setSeries(1 + i, { show });
        if (this.d.smooth && this.u.series[1 + n + i].show !== show) this.u.setSeries(1 + n + i, { show });
      });
      if (count) {
        this.root.dataset.points = String(this.countPoints());
        this.root.dataset.series = String(this.series.filter((s) => !this.hidden.has(s.label)).length);
      }
    }

    noteScale() {
      if (!this.u || !this.d) return;
      const { min, max } = this.u.scales.x;
      const X = this.d.X;
      if (min === null || min === undefined) return;
      this.zoomed = X.length > 0 && (min > X[0] || max < X[X.length - 1]);
      this.root.dataset.xMin = String(min);
      this.root.dataset.xMax = String(max);
      this.root.dataset.zoomed = this.zoomed ? "1" : "0";
    }

    hover(u) {
      const idx = u.cursor.idx;
      if (idx === null || idx === undefined || !this.d) { this.tip.hidden = true; return; }
      const d = this.d, n = this.series.length;
      const idxs = u.cursor.idxs || [];
      const rows = [];
      let epoch = null;
      this.series.forEach((s, i) => {
        if (this.hidden.has(s.label)) return;
        const si = d.smooth ? 1 + n + i : 1 + i;
        const j = idxs[si] ?? idxs[1 + i] ?? idx;
        if (j === null || j === undefined) return;
        const raw = d.ys[i][j];
        const value = d.smooth ? d.smooth[i][j] : raw;
        if (value === undefined) return;
        if (epoch === null && finite(d.epochs[i][j])) epoch = d.epochs[i][j];
        rows.push({ color: s.color, label: s.label, value, raw, x: d.X[j] });
      });
      if (!rows.length) { this.tip.hidden = true; return; }
      const x = d.X[idx];
      const head = document.createElement("div");
      head.className = "tip-head";
      head.textContent = `${this.xLabel} ${fmt(x)}` + (this.xLabel !== "epoch" && epoch !== null ? ` · epoch ${fmt(epoch)}` : "");
      const lines = rows.map((r) => {
        const row = document.createElement("div");
        row.className = "tip-row";
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.borderColor = r.color;
        const t = document.createElement("span");
        let text = `${r.label}: ${fmt(r.value)}`;
        if (d.smooth) text += ` (raw ${fmt(r.raw)})`;
        if (r.x !== x) text += ` at ${this.xLabel} ${fmt(r.x)}`;
        t.textContent = text;
        row.append(sw, t);
        return row;
      });
      this.tip.replaceChildren(head, ...lines);
      this.tip.hidden = false;
      const ox = u.over.offsetLeft, oy = u.over.offsetTop;
      const px = ox + u.cursor.left;
      const boxW = this.box.clientWidth;
      const tw = this.tip.offsetWidth;
      const left = px + 14 + tw > boxW ? px - 14 - tw : px + 14;
      this.tip.style.left = Math.max(0, left) + "px";
      this.tip.style.top = oy + 4 + "px";
    }
  }

  let redrawQueued = false;
  function redrawAll() {
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(() => {
      redrawQueued = false;
      for (const c of live()) c.draw();
    });
  }

  function save() {
    try { localStorage.setItem(STORAGE_KEY, JSON.stringify(settings)); } catch (_) { /* private mode */ }
  }

  /** The smoothing slider, log-scale switch and zoom hint for the charts of one page. */
  function controls() {
    const box = document.createElement("div");
    box.className = "chart-controls";
    box.id = "chart-controls";

    const sLabel = document.createElement("label");
    sLabel.title = "exponential moving average of each line (as in TensorBoard); the raw line stays, faded";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.id = "smoothing";
    slider.min = "0";
    slider.max = "0.99";
    slider.step = "0.01";
    slider.value = String(settings.smoothing);
    slider.setAttribute("aria-label", "smoothing");
    const out = document.createElement("output");
    out.id = "smoothing-value";
    out.textContent = settings.smoothing.toFixed(2);
    slider.addEventListener("input", () => {
      settings.smoothing = Math.min(0.99, Math.max(0, Number(slider.value) || 0));
      out.textContent = settings.smoothing.toFixed(2);
      save();
      redrawAll();
    });
    sLabel.append("Smoothing ", slider, " ", out);

    const lLabel = document.createElement("label");
    const log = document.createElement("input");
    log.type = "checkbox";
    log.id = "log-scale";
    log.checked = settings.log;
    log.addEventListener("change", () => { settings.log = log.checked; save(); redrawAll(); });
    lLabel.title = "logarithmic y axis (values ≤ 0 are left out)";
    lLabel.append(log, " log scale");

    const hint = document.createElement("span");
    hint.className = "muted hint";
    hint.textContent = "drag to zoom · double-click to reset";
    box.append(sLabel, lLabel, hint);
    return box;
  }

  return { LineChart, fmt, ema, controls, settings };
})();
