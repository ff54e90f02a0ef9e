/* modeltrack line charts on <canvas>: no dependencies.
 *
 * const c = new MTChart.LineChart(parentElement, {title: "loss", height: 260});
 * c.setData([{label: "train_loss", color: "#4269d0", xs: [0, 1], ys: [0.9, 0.5]}], "epoch");
 *
 * Labels are set with textContent only. Null y values break the line (NaN/inf in the store).
 * The canvas carries data-points (points drawn) and data-series (lines drawn) for tests.
 */
"use strict";

const MTChart = (() => {
  const PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"];
  const charts = new Set();
  let resizeTimer = 0;

  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const c of [...charts]) {
        if (!document.body.contains(c.root)) charts.delete(c);
        else c.draw();
      }
    }, 120);
  });

  function niceStep(span, target) {
    const raw = span / Math.max(1, target);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    return nice * mag;
  }

  function ticks(lo, hi, target) {
    if (!(hi > lo)) return [lo];
    const step = niceStep(hi - lo, target);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
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

  class LineChart {
    /**
     * @param {HTMLElement} parent where the chart is appended
     * @param {{title?: string, height?: number, id?: string}} opts
     */
    constructor(parent, opts = {}) {
      this.opts = opts;
      this.series = [];
      this.hidden = new Set();
      this.xLabel = "step";
      this.root = document.createElement("figure");
      this.root.className = "chart";
      if (opts.id) this.root.dataset.chart = opts.id;
      if (opts.title) {
        const cap = document.createElement("figcaption");
        cap.textContent = opts.title;
        this.root.append(cap);
      }
      this.box = document.createElement("div");
      this.box.className = "chart-box";
      this.canvas = document.createElement("canvas");
      this.overlay = document.createElement("canvas");
      this.overlay.className = "chart-overlay";
      this.tip = document.createElement("div");
      this.tip.className = "chart-tip";
      this.tip.hidden = true;
      this.box.append(this.canvas, this.overlay, this.tip);
      this.legend = document.createElement("div");
      this.legend.className = "chart-legend";
      this.root.append(this.box, this.legend);
      parent.append(this.root);
      this.overlay.addEventListener("mousemove", (e) => this.hover(e));
      this.overlay.addEventListener("mouseleave", () => this.clearHover());
      charts.add(this);
    }

    /**
     * @param {{label: string, color: string, xs: number[], ys: (number|null)[], dash?: boolean}[]} series
     * @param {string} xLabel
     */
    setData(series, xLabel) {
      this.series = series.map((s) => {
        let sorted = true;
        for (let i = 1; i < s.xs.length; i++) if (s.xs[i] < s.xs[i - 1]) { sorted = false; break; }
        return { ...s, sorted };
      });
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
        item.title = "show or hide";
        item.addEventListener("click", () => {
          if (this.hidden.has(s.label)) this.hidden.delete(s.label);
          else this.hidden.add(s.label);
          item.classList.toggle("off");
          this.draw();
        });
        item.dataset.index = String(i);
        return item;
      });
      this.legend.replaceChildren(...items);
    }

    bounds() {
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (const s of this.series) {
        if (this.hidden.has(s.label)) continue;
        const xs = s.xs, ys = s.ys;
        for (let i = 0; i < xs.length; i++) {
          const y = ys[i];
          if (y === null || !Number.isFinite(y)) continue;
          const x = xs[i];
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
      if (x0 === Infinity) return null;
      if (x1 === x0) { x0 -= 1; x1 += 1; }
      if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
      const pad = (y1 - y0) * 0.05;
      return { x0, x1, y0: y0 - pad, y1: y1 + pad };
    }

    draw() {
      const t0 = performance.now();
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(200, this.box.clientWidth || 600);
      const h = this.opts.height || 240;
      for (const c of [this.canvas, this.overlay]) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
        c.style.width = w + "px";
        c.style.height = h + "px";
      }
      const ctx = this.canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const m = { l: 58, r: 14, t: 10, b: 34 };
      this.frame = { w, h, m, dpr };
      const b = this.bounds();
      this.b = b;
      const style = getComputedStyle(document.documentElement);
      const ink = style.getPropertyValue("--ink-2").trim() || "#555";
      const grid = style.getPropertyValue("--grid").trim() || "#e5e5e5";
      ctx.font = "11px system-ui, sans-serif";
      if (!b) {
        ctx.fillStyle = ink;
        ctx.textAlign = "center";
        ctx.fillText("no points yet", w / 2, h / 2);
        this.canvas.dataset.points = "0";
        this.canvas.dataset.series = "0";
        return;
      }
      const pw = w - m.l - m.r, ph = h - m.t - m.b;
      const sx = pw / (b.x1 - b.x0), sy = ph / (b.y1 - b.y0);
      const X = (x) => m.l + (x - b.x0) * sx;
      const Y = (y) => m.t + ph - (y - b.y0) * sy;
      this.X = X; this.Y = Y;
      this.invX = (px) => b.x0 + (px - m.l) / sx;

      ctx.strokeStyle = grid;
      ctx.lineWidth = 1;
      ctx.fillStyle = ink;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const v of ticks(b.y0, b.y1, Math.max(2, Math.floor(ph / 40)))) {
        const y = Math.round(Y(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); ctx.stroke();
        ctx.fillText(fmt(v), m.l - 6, y);
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const integerX = this.series.every((s) => s.xs.every(Number.isInteger));
      for (const v of ticks(b.x0, b.x1, Math.max(2, Math.floor(pw / 80)))) {
        if (integerX && !Number.isInteger(v)) continue;
        const x = Math.round(X(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(x, m.t); ctx.lineTo(x, m.t + ph); ctx.stroke();
        ctx.fillText(fmt(v), x, m.t + ph + 5);
      }
      ctx.fillText(this.xLabel, m.l + pw / 2, h - 13);

      ctx.save();
      ctx.beginPath();
      ctx.rect(m.l, m.t, pw, ph);
      ctx.clip();
      let points = 0, lines = 0;
      for (const s of this.series) {
        if (this.hidden.has(s.label)) continue;
        const xs = s.xs, ys = s.ys, n = xs.length;
        ctx.strokeStyle = s.color;
        ctx.lineWidth = s.width || 1.6;
        ctx.setLineDash(s.dash ? [5, 4] : []);
        ctx.beginPath();
        let pen = false;
        for (let i = 0; i < n; i++) {
          const y = ys[i];
          if (y === null || !Number.isFinite(y)) { pen = false; continue; }
          const px = X(xs[i]), py = Y(y);
          if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
          points++;
        }
        ctx.stroke();
        if (n <= 60) {
          ctx.setLineDash([]);
          ctx.fillStyle = s.color;
          for (let i = 0; i < n; i++) {
            const y = ys[i];
            if (y === null || !Number.isFinite(y)) continue;
            ctx.beginPath();
            ctx.arc(X(xs[i]), Y(y), 2.2, 0, Math.PI * 2);
            ctx.fill();
          }
        }
        lines++;
      }
      ctx.restore();
      ctx.setLineDash([]);
      ctx.strokeStyle = ink;
      ctx.strokeRect(m.l + 0.5, m.t + 0.5, pw, ph);
      this.canvas.dataset.points = String(points);
      this.canvas.dataset.series = String(lines);
      this.canvas.dataset.drawMs = (performance.now() - t0).toFixed(1);
    }

    nearest(s, x) {
      const xs = s.xs;
      if (!xs.length) return -1;
      if (!s.sorted) {
        let best = -1, bd = Infinity;
        for (let i = 0; i < xs.length; i++) { const d = Math.abs(xs[i] - x); if (d < bd) { bd = d; best = i; } }
        return best;
      }
      let lo = 0, hi = xs.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid; else hi = mid; }
      return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
    }

    hover(e) {
      if (!this.b) return;
      const rect = this.overlay.getBoundingClientRect();
      const px = e.clientX - rect.left;
      const { w, h, m, dpr } = this.frame;
      if (px < m.l || px > w - m.r) { this.clearHover(); return; }
      const x = this.invX(px);
      const ctx = this.overlay.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.strokeStyle = "rgba(0,0,0,0.35)";
      ctx.beginPath(); ctx.moveTo(px + 0.5, m.t); ctx.lineTo(px + 0.5, h - m.b); ctx.stroke();
      const rows = [];
      let shownX = null;
      for (const s of this.series) {
        if (this.hidden.has(s.label)) continue;
        const i = this.nearest(s, x);
        if (i < 0) continue;
        const y = s.ys[i];
        if (shownX === null) shownX = s.xs[i];
        rows.push([s.color, s.label, y]);
        if (y !== null && Number.isFinite(y)) {
          ctx.fillStyle = s.color;
          ctx.beginPath(); ctx.arc(this.X(s.xs[i]), this.Y(y), 3.5, 0, Math.PI * 2); ctx.fill();
        }
      }
      const head = document.createElement("div");
      head.className = "tip-head";
      head.textContent = `${this.xLabel} ${fmt(shownX)}`;
      const lines = rows.map(([color, label, y]) => {
        const row = document.createElement("div");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.borderColor = color;
        const t = document.createElement("span");
        t.textContent = `${label}: ${fmt(y)}`;
        row.append(sw, t);
        return row;
      });
      this.tip.replaceChildren(head, ...lines);
      this.tip.hidden = false;
      const left = px + 14 + 220 > w ? px - 14 - this.tip.offsetWidth : px + 14;
      this.tip.style.left = Math.max(0, left) + "px";
      this.tip.style.top = m.t + 4 + "px";
    }

    clearHover() {
      this.tip.hidden = true;
      if (this.frame) this.overlay.getContext("2d").clearRect(0, 0, this.overlay.width, this.overlay.height);
    }
  }

  return { LineChart, PALETTE, fmt };
})();
