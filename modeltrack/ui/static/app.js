/* modeltrack web UI: a hash-routed single-page app over the JSON API in server.py.
 *
 * Pages: #/ (models), #/m/MODEL (versions), #/v/MODEL/N (one version),
 * #/m/MODEL?metrics=a,b (the metric columns shown, in that order; default all, up to 10),
 * #/compare?refs=A,B,… (2–10 versions; &points=0 draws every point).
 *
 * Every piece of store data reaches the page through textContent or setAttribute (never
 * innerHTML), so notes, tags, params and names cannot inject markup.
 * After each page is drawn, <body> gets data-page, data-ready="1" and data-render-ms.
 */
"use strict";

(() => {
  const main = document.getElementById("main");
  const crumbs = document.getElementById("crumbs");
  const banner = document.getElementById("banner");
  const modal = document.getElementById("modal");
  const { LineChart, fmt } = MTChart;
  /** The line colours: the server's palette, the one `modeltrack plot` uses. */
  const color = (i) => { const p = state.info.palette; return p[i % p.length]; };
  const state = { info: null, timers: [], routeId: 0, token: sessionStorage.getItem("modeltrack-token") };

  // ------------------------------------------------------------------ DOM helpers
  // A dataset's shape; an (x, y) pair of arrays shows each one's: "48 × 4 + 48 × 1".
  function fmtShape(d) {
    const parts = Array.isArray(d.parts) && d.parts.length > 1 ? d.parts : (d.shape ? [d.shape] : []);
    return parts.filter(Boolean).map((s) => s.length ? s.join(" × ") : "scalar").join(" + ");
  }

function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (k === "dataset") Object.assign(el.dataset, v);
        else if (k === "checked" || k === "disabled" || k === "value" || k === "hidden") el[k] = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    add(el, kids);
    return el;
  }
  function add(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const enc = encodeURIComponent;
  const versionHref = (model, n) => `#/v/${enc(model)}/${n}`;
  const modelHref = (model) => `#/m/${enc(model)}`;

  function chip(text, cls, title) { return h("span", { class: "chip " + (cls || ""), title }, text); }
  function statusBadge(status) { return h("span", { class: `status status-${String(status).replace(/[^a-z]/g, "")}` }, status); }
  function tagText(k, v) { return v === null || v === undefined ? k : `${k}=${v}`; }
  function section(title, ...body) { return h("section", { class: "card" }, h("h2", null, title), ...body); }
  function kv(rows) {
    return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
  }
  function empty(text) { return h("p", { class: "muted" }, text); }

  function fmtNum(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    return fmt(v);
  }
  function fmtValue(v) {
    if (v === null || v === undefined) return "null";
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }
  function fmtTime(iso) { return iso ? String(iso).replace("T", " ").slice(0, 19) : "–"; }
  function fmtDuration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60), sec = Math.round(s % 60);
    if (m < 60) return `${m} min ${sec} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }
  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${i ? v.toFixed(1) : v} ${units[i]}`;
  }
  /** Width in px of a header label (600 weight), so a column can be made wide enough for it. */
  let measureCtx = null;
  function labelWidth(text) {
    if (!measureCtx) {
      measureCtx = document.createElement("canvas").getContext("2d");
      const cs = getComputedStyle(document.body);
      measureCtx.font = `600 ${cs.fontSize} ${cs.fontFamily}`;
    }
    return Math.ceil(measureCtx.measureText(String(text)).width);
  }
  /** How many characters of a value are shown before it is clipped behind "show all". */
  const CLIP_CHARS = 160;
  /**
   * A value that wraps anywhere; a long one is clipped to a few lines, with its full text on
   * hover (title) and a button that expands it in place.
   */
  function longValue(text, cls) {
    const full = String(text);
    const el = h("span", { class: "value" + (cls ? " " + cls : "") }, full);
    if (full.length <= CLIP_CHARS) return el;
    el.classList.add("clipped");
    el.title = full.length > 20000 ? full.slice(0, 20000) + "…" : full;
    const btn = h("button", { type: "button", class: "btn subtle expand", "aria-expanded": "false" }, `show all ${full.length.toLocaleString("en")} characters`);
    btn.addEventListener("click", () => {
      const open = el.classList.toggle("clipped");
      btn.textContent = open ? `show all ${full.length.toLocaleString("en")} characters` : "show less";
      btn.setAttribute("aria-expanded", open ? "false" : "true");
    });
    return h("span", { class: "long-value" }, el, btn);
  }
  function short(s, n = 12) { return s ? String(s).replace(/^sha256:/, "").slice(0, n) : "–"; }

  // ------------------------------------------------------------------ banner, dialogs
  function showBanner(text, kind = "error") {
    banner.className = `banner ${kind}`;
    banner.textContent = text;
    banner.hidden = false;
    if (kind !== "error") setTimeout(() => { if (banner.textContent === text) banner.hidden = true; }, 4000);
  }
  function hideBanner() { banner.hidden = true; }

  function dialog(build) {
    return new Promise((resolve) => {
      const done = (value) => { modal.close(); resolve(value); };
      modal.replaceChildren(build(done));
      modal.onclose = () => resolve(null);
      modal.onkeydown = (e) => { if (e.key === "Escape") { e.preventDefault(); done(null); } };
      modal.showModal();
    });
  }

  /** Ask before a change; resolves true only on "Confirm". */
  function confirmAction(title, lines) {
    return dialog((done) => h("div", { class: "dialog" },
      h("h3", null, title),
      lines.map((l) => h("p", null, l)),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "btn", id: "confirm-cancel", onclick: () => done(false) }, "Cancel"),
        h("button", { type: "button", class: "btn primary", id: "confirm-ok", onclick: () => done(true) }, "Confirm"))))
      .then((v) => v === true);
  }

  function askToken(wrong) {
    return dialog((done) => {
      const input = h("input", { type: "password", id: "token-input", autocomplete: "off", placeholder: "token" });
      const ok = () => done(input.value.trim() || null);
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); ok(); } });
      setTimeout(() => input.focus(), 0);
      return h("div", { class: "dialog" },
        h("h3", null, wrong ? "Wrong token" : "Token needed"),
        h("p", null, "Changes on this server need the token it was started with (--token or MODELTRACK_UI_TOKEN)."),
        input,
        h("div", { class: "dialog-actions" },
          h("button", { type: "button", class: "btn", onclick: () => done(null) }, "Cancel"),
          h("button", { type: "button", class: "btn primary", id: "token-ok", onclick: ok }, "Use token")));
    });
  }

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function request(path, init) {
    const r = await fetch("/api/" + path, init);
    let body = null;
    try { body = await r.json(); } catch (_) { body = { error: r.statusText }; }
    if (!r.ok) throw new ApiError(r.status, (body && body.error) || r.statusText);
    return body;
  }
  const api = (path) => request(path, { headers: { Accept: "application/json" } });

  async function post(path, data) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const headers = { "Content-Type": "application/json", Accept: "application/json" };
      if (state.token) headers.Authorization = "Bearer " + state.token;
      try {
        return await request(path, { method: "POST", headers, body: JSON.stringify(data) });
      } catch (e) {
        if (!(e instanceof ApiError) || (e.status !== 401 && !(e.status === 403 && e.message === "wrong token"))) throw e;
        const token = await askToken(e.status === 403);
        if (!token) throw e;
        state.token = token;
        sessionStorage.setItem("modeltrack-token", token);
      }
    }
    throw new ApiError(403, "wrong token");
  }

  /** Confirm, send, report, redraw. */
  async function act(title, lines, path, data, okText) {
    if (!(await confirmAction(title, lines))) return false;
    let result;
    try {
      result = await post(path, data);
    } catch (e) {
      showBanner(`${title} failed: ${e.message}`);
      return false;
    }
    await render();
    const ev = result && result.event;
    showBanner(ev && ev.noop ? `nothing to change: ${ev.alias} already points at v${ev.to}` : okText, "ok");
    return true;
  }

  // ------------------------------------------------------------------ tables
  /**
   * A sortable table. columns: {label, key, sort?(row), cell(row) -> Node|string, cls?}.
   */
  function dataTable({ id, columns, rows, sortKey = null, sortDir = 1, rowAttrs = null, emptyText = "nothing to show", grid = null }) {
    // grid: a grid-template-columns value. Then rows are CSS grid <div>s whose off-screen
    // ones skip layout and paint (content-visibility), which keeps 1,000-row tables fast;
    // internal table boxes cannot use content-visibility.
    const T = grid
      ? { table: "div", head: "div", body: "div", row: "div", th: "div", td: "div" }
      : { table: "table", head: "thead", body: "tbody", row: "tr", th: "th", td: "td" };
    const tbody = h(T.body, grid ? { class: "tbody", role: "rowgroup" } : null);
    const ths = columns.map((c) => {
      // the full name is always on hover too (a header is never cut without it)
      const th = h(T.th, { class: [grid ? "th" : "", c.cls || ""].join(" ").trim() || null, scope: grid ? null : "col", role: grid ? "columnheader" : null, title: c.title || c.label || null }, c.label);
      if (c.sort) {
        th.classList.add("sortable");
        th.tabIndex = 0;
        th.dataset.key = c.key;
        const go = () => { sortDir = sortKey === c.key ? -sortDir : 1; sortKey = c.key; fill(); };
        th.addEventListener("click", go);
        th.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
      }
      return th;
    });
    const table = grid
      ? h("div", { class: "grid gtable", id, role: "table" }, h("div", { class: "thead", role: "rowgroup" }, h("div", { class: "tr", role: "row" }, ths)), tbody)
      : h("table", { class: "grid", id }, h("thead", null, h("tr", null, ths)), tbody);
    if (grid) table.style.setProperty("--cols", grid);
    let current = rows;
    function fill() {
      let list = current;
      const col = columns.find((c) => c.key === sortKey);
      if (col && col.sort) {
        const keyed = list.map((r) => [col.sort(r), r]);
        keyed.sort((a, b) => {
          const x = a[0], y = b[0];
          if (x === y) return 0;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * sortDir;
        });
        list = keyed.map((k) => k[1]);
      }
      ths.forEach((th, i) => {
        th.classList.toggle("asc", columns[i].key === sortKey && sortDir === 1);
        th.classList.toggle("desc", columns[i].key === sortKey && sortDir === -1);
      });
      const frag = document.createDocumentFragment();
      for (const r of list) {
        const tr = document.createElement(T.row);
        if (grid) { tr.className = "tr"; tr.setAttribute("role", "row"); }
        if (rowAttrs) { const a = rowAttrs(r); if (a.class) tr.classList.add(...a.class.split(" ").filter(Boolean)); if (a.dataset) Object.assign(tr.dataset, a.dataset); }
        for (const c of columns) {
          const td = document.createElement(T.td);
          if (grid) { td.className = "td"; td.setAttribute("role", "cell"); }
          if (c.cls) td.classList.add(c.cls);
          const v = c.cell(r);
          if (v !== null && v !== undefined) add(td, [v]);
          tr.append(td);
        }
        frag.append(tr);
      }
      if (!list.length) {
        frag.append(grid ? h("div", { class: "tr empty" }, h("div", { class: "td muted" }, emptyText))
          : h("tr", null, h("td", { colspan: String(columns.length), class: "muted" }, emptyText)));
      }
      tbody.replaceChildren(frag);
    }
    fill();
    return { el: table, setRows(r) { current = r; fill(); } };
  }

  // ------------------------------------------------------------------ metric grouping
  const PREFIX = /^(train|training|val|valid|validation|test|eval)[_/.-]/;
  const SUFFIX = /[_/.-](train|training|val|valid|validation|test|eval)$/;
  function groupKey(name) {
    let n = name.toLowerCase();
    n = n.replace(/[_/.-](epoch|step)$/, "");
    n = n.replace(PREFIX, "").replace(SUFFIX, "");
    return n || name;
  }
  function isValidation(name) { return /(^|[_/.-])(val|valid|validation|test|eval)([_/.-]|$)/.test(name.toLowerCase()); }
  function groupMetrics(names) {
    const groups = new Map();
    for (const name of names) {
      const k = groupKey(name);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(name);
    }
    return groups;
  }
  /** x values for a series: epochs when every series of the chart has one point per epoch. */
  function chartSeries(items) {
    const useEpoch = items.length > 0 && items.every((it) => it.s.per_epoch);
    return {
      xLabel: useEpoch ? "epoch" : "step",
      series: items.map((it) => ({
        label: it.label,
        color: it.color,
        dash: it.dash,
        xs: useEpoch ? it.s.epoch : it.s.step,
        ys: it.s.value,
        epochs: useEpoch ? null : it.s.epoch,
      })),
    };
  }

  // ------------------------------------------------------------------ router
  function stopTimers() { for (const t of state.timers) clearInterval(t); state.timers = []; }

  function parseRoute() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const q = raw.indexOf("?");
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
    const parts = path.split("/").filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } });
    return { parts, query };
  }

  function setCrumbs(items) {
    crumbs.replaceChildren(...items.map(([text, href], i) => [
      i ? h("span", { class: "sep" }, "/") : null,
      href ? h("a", { href }, text) : h("span", null, text),
    ]).flat().filter(Boolean));
  }

  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));

  async function render() {
    const id = ++state.routeId;
    stopTimers();
    document.body.dataset.ready = "0";
    const t0 = performance.now();
    const { parts, query } = parseRoute();
    let page = "error";
    try {
      if (!state.info) {
        state.info = await api("info");
        document.getElementById("store").textContent = state.info.store;
        document.getElementById("store").title = "store: " + state.info.store;
      }
      if (parts.length === 0 || (parts[0] === "models" && parts.length === 1)) page = await pageModels(id);
      else if (parts[0] === "m" && parts.length === 2) page = await pageVersions(id, parts[1], query);
      else if (parts[0] === "v" && parts.length === 3) page = await pageVersion(id, parts[1], parseInt(parts[2], 10));
      else if (parts[0] === "compare") page = await pageCompare(id, query);
      else throw new ApiError(404, "no such page: " + location.hash);
    } catch (e) {
      if (id !== state.routeId) return;
      page = "error";
      setCrumbs([["Models", "#/"]]);
      main.replaceChildren(h("section", { class: "card error-page" }, h("h2", null, "Cannot show this page"), h("p", { id: "error-text" }, e.message)));
    }
    if (id !== state.routeId || page === null) return;
    await frame();
    if (id !== state.routeId) return;
    document.body.dataset.page = page;
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
    document.body.dataset.ready = "1";
  }

  // ------------------------------------------------------------------ models page
  async function pageModels(id) {
    const models = await api("models");
    if (id !== state.routeId) return null;
    document.title = "Models · modeltrack";
    setCrumbs([["Models", null]]);
    hideBanner();
    const search = h("input", { type: "search", id: "model-search", class: "search", placeholder: "Search models and aliases", "aria-label": "search models" });
    const table = dataTable({
      id: "models-table",
      rows: models,
      sortKey: "updated", sortDir: -1,
      emptyText: models.length ? "no model matches" : "no models yet: train with modeltrack.start(...) or `modeltrack run -- python train.py`",
      rowAttrs: (m) => ({ dataset: { model: m.name } }),
      columns: [
        { label: "Model", key: "name", sort: (m) => m.name.toLowerCase(), cell: (m) => h("a", { href: modelHref(m.name), class: "model-link" }, m.name) },
        { label: "Versions", key: "versions", sort: (m) => m.versions, cls: "num", cell: (m) => String(m.versions) },
        { label: "Latest", key: "latest", sort: (m) => m.latest, cell: (m) => m.latest ? h("a", { href: versionHref(m.name, m.latest) }, `v${m.latest}`) : "–" },
        { label: "Aliases", key: "aliases", cell: (m) => Object.entries(m.aliases).map(([a, n]) => h("a", { href: versionHref(m.name, n), class: "chip alias" }, `${a} → v${n}`)) },
        { label: "Updated", key: "updated", sort: (m) => m.updated_at, cell: (m) => h("span", { title: m.updated_at || "" }, fmtTime(m.updated_at)) },
      ],
    });
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      table.setRows(models.filter((m) => !q || m.name.toLowerCase().includes(q) || Object.keys(m.aliases).some((a) => a.toLowerCase().includes(q))));
    });
    main.replaceChildren(
      h("div", { class: "page-head" }, h("h1", null, "Models"), h("span", { class: "muted" }, `${models.length} model${models.length === 1 ? "" : "s"}`)),
      h("section", { class: "card" }, h("div", { class: "toolbar" }, search), table.el));
    return "models";
  }

  // ------------------------------------------------------------------ versions page
  /** Most metric columns the versions page shows by default (pick others, or ?metrics=a,b). */
  const DEFAULT_METRIC_COLUMNS = 10;

  async function pageVersions(id, model, query) {
    const [versions, history] = await Promise.all([api(`models/${enc(model)}/versions`), api(`models/${enc(model)}/aliases`)]);
    if (id !== state.routeId) return null;
    document.title = `${model} · modeltrack`;
    setCrumbs([["Models", "#/"], [model, null]]);
    hideBanner();
    // metric columns as the CLI chooses them: every metric in the order versions first logged
    // it, full names; ?metrics=a,b (or the picker) chooses which and in what order
    const metricNames = [];
    const seen = new Set();
    for (const v of versions) for (const k of Object.keys(v.metrics || {})) if (!seen.has(k)) { seen.add(k); metricNames.push(k); }
    const asked = query && query.has("metrics") ? query.get("metrics").split(",").map((x) => x.trim()).filter(Boolean) : null;
    let shown = asked ? [...new Set(asked)] : metricNames.slice(0, DEFAULT_METRIC_COLUMNS);
    const unknown = shown.filter((n) => !seen.has(n));
    const selected = new Set();
    const counts = {};
    for (const v of versions) counts[v.status] = (counts[v.status] || 0) + 1;

    const compareBtn = h("button", { type: "button", class: "btn primary", id: "compare-btn", disabled: true }, "Compare");
    const selInfo = h("span", { class: "muted", id: "selection-info" }, "select 2 to 10 versions to compare");
    function updateSelection() {
      const n = selected.size;
      compareBtn.disabled = n < 2 || n > (state.info.max_compare || 10);
      compareBtn.textContent = n ? `Compare ${n}` : "Compare";
      selInfo.textContent = n > (state.info.max_compare || 10) ? "at most 10 versions" : n ? `${n} selected` : "select 2 to 10 versions to compare";
    }
    compareBtn.addEventListener("click", () => {
      const refs = [...selected].sort((a, b) => a - b).map((n) => `${model}@v${n}`);
      location.hash = "#/compare?refs=" + refs.map(enc).join(",");
    });

    // Rows are separate grids (so off-screen ones can skip layout), so column widths are
    // fixed up front: each at least as wide as its header's full name (a very long one wraps).
    const HEAD_PAD = 18 + 18; // cell padding and the sort arrow
    const width = (label, base) => Math.max(base, Math.min(280, labelWidth(label) + HEAD_PAD));
    // a metric name may break after "_", "/", "." or "-" (never inside a word): its column
    // needs only its widest part, so more metrics fit side by side, each under its full name
    const parts = (name) => name.split(/(?<=[_/.-])/);
    const metricWidth = (name) => Math.max(72, Math.min(280, Math.max(...parts(name).map(labelWidth)) + HEAD_PAD));
    const metricLabel = (name) => parts(name).flatMap((p, i) => (i ? [h("wbr"), p] : [p]));
    const fixedColumns = [
      { col: { label: "", key: "sel", cls: "sel", cell: (v) => h("input", {
        type: "checkbox", class: "pick", "aria-label": `select v${v.version}`, dataset: { version: String(v.version) },
        checked: selected.has(v.version),
        onchange: (e) => { if (e.target.checked) selected.add(v.version); else selected.delete(v.version); updateSelection(); },
      }) }, track: "34px" },
      { col: { label: "Version", key: "version", sort: (v) => v.version, cell: (v) => h("a", { href: versionHref(model, v.version), class: "version-link" }, `v${v.version}`) }, base: 70 },
      { col: { label: "Status", key: "status", sort: (v) => v.status, cell: (v) => statusBadge(v.status) }, base: 92 },
      { col: { label: "Label", key: "label", sort: (v) => v.label, cell: (v) => v.label || "–" }, base: 70 },
      { col: { label: "Created", key: "created", cls: "nowrap", sort: (v) => v.created_at, cell: (v) => h("span", { title: v.created_at || "" }, fmtTime(v.created_at).slice(0, 16)) }, base: 146 },
      { col: { label: "Duration", key: "duration", sort: (v) => v.duration_s, cls: "num", cell: (v) => fmtDuration(v.duration_s) }, base: 84 },
      { col: { label: "Aliases", key: "aliases", sort: (v) => v.aliases.join(",") || null, cell: (v) => v.aliases.map((a) => chip(a, "alias", a)) }, base: 80, grow: "1fr" },
      { col: { label: "Tags", key: "tags", sort: (v) => Object.keys(v.tags || {}).join(",") || null, cell: (v) => Object.entries(v.tags || {}).map(([k, x]) => chip(tagText(k, x), "tag", tagText(k, x))) }, base: 90, grow: "1.4fr" },
    ];
    const tableBox = h("div", { class: "table-scroll" });
    let table = null;
    function buildTable() {
      const columns = fixedColumns.map((c) => c.col);
      const tracks = fixedColumns.map((c) => c.track || (c.grow ? `minmax(${width(c.col.label, c.base)}px, ${c.grow})` : `${width(c.col.label, c.base)}px`));
      for (const name of shown) {
        columns.push({ label: metricLabel(name), title: name, key: "m:" + name, cls: "num", sort: (v) => (v.metrics || {})[name], cell: (v) => fmtNum((v.metrics || {})[name]) });
        tracks.push(`minmax(${metricWidth(name)}px, 0.8fr)`);
      }
      const old = table;
      table = dataTable({
        id: "versions-table", columns, rows: versions, sortKey: "version", sortDir: -1,
        grid: tracks.join(" "),
        rowAttrs: (v) => ({ class: `row-${v.status}`, dataset: { version: String(v.version) } }),
        emptyText: "no version matches",
      });
      if (old) applyFilter();
      tableBox.replaceChildren(table.el);
    }

    // the metric-column picker: checkboxes in first-logged order; the choice goes into the URL
    const pickerInfo = h("span", { id: "metric-picker-count" });
    const boxes = metricNames.map((name) => h("label", { class: "pick-metric", title: name },
      h("input", { type: "checkbox", value: name, checked: shown.includes(name), dataset: { metric: name } }), " ", name));
    const setInfo = () => { pickerInfo.textContent = `Metric columns: ${shown.length} of ${metricNames.length}`; };
    const picker = h("details", { class: "metric-picker", id: "metric-picker" }, h("summary", null, pickerInfo),
      h("div", { class: "picker-list" }, boxes.length ? boxes : h("span", { class: "muted" }, "no metrics logged")));
    picker.addEventListener("change", () => {
      const on = new Set(boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value));
      shown = [...shown.filter((n) => on.has(n)), ...metricNames.filter((n) => on.has(n) && !shown.includes(n))];
      const all = shown.length === Math.min(metricNames.length, DEFAULT_METRIC_COLUMNS) && shown.every((n, i) => n === metricNames[i]);
      const hash = `#/m/${enc(model)}` + (all ? "" : `?metrics=${shown.map(enc).join(",")}`);
      window.history.replaceState(null, "", location.pathname + location.search + hash);
      setInfo();
      buildTable();
    });
    setInfo();

    const filter = h("input", { type: "search", id: "version-filter", class: "search", placeholder: "Filter: v12, tag, alias, label…", "aria-label": "filter versions" });
    const statusSel = h("select", { id: "status-filter", "aria-label": "status" },
      h("option", { value: "" }, "any status"),
      ["finished", "running", "failed", "crashed"].map((s) => h("option", { value: s }, `${s} (${counts[s] || 0})`)));
    function applyFilter() {
      const q = filter.value.trim().toLowerCase();
      const st = statusSel.value;
      table.setRows(versions.filter((v) => {
        if (st && v.status !== st) return false;
        if (!q) return true;
        const hay = [`v${v.version}`, v.status, v.label || "", ...v.aliases, ...Object.entries(v.tags || {}).map(([k, x]) => tagText(k, x))].join(" ").toLowerCase();
        return q.split(/\s+/).every((w) => hay.includes(w));
      }));
    }
    filter.addEventListener("input", applyFilter);
    statusSel.addEventListener("change", applyFilter);
    buildTable();

    const aliasNow = {};
    for (const v of versions) for (const a of v.aliases) aliasNow[a] = v.version;
    const summary = Object.entries(counts).map(([s, n]) => h("span", { class: "count" }, statusBadge(s), ` ${n}`));
    main.replaceChildren(
      h("div", { class: "page-head" }, h("h1", null, model), h("span", { class: "muted", id: "version-count" }, `${versions.length} versions`), summary,
        Object.entries(aliasNow).map(([a, n]) => h("a", { href: versionHref(model, n), class: "chip alias" }, `${a} → v${n}`))),
      h("section", { class: "card" },
        h("div", { class: "toolbar" }, filter, statusSel, picker, h("span", { class: "spacer" }), selInfo, compareBtn),
        unknown.length ? h("p", { class: "muted", id: "unknown-metrics" }, `no version has ${unknown.length === 1 ? "metric" : "metrics"} ${unknown.join(", ")}; metrics logged: ${metricNames.join(", ") || "none"}`) : null,
        tableBox),
      aliasHistoryCard(model, history, null));
    return "versions";
  }

  function aliasHistoryCard(model, history, number) {
    if (!history.length) return section("Alias history", empty("no aliases set yet"));
    const rows = [...history].reverse();
    const t = dataTable({
      id: "alias-history", rows,
      rowAttrs: (e) => ({ class: number !== null && (e.to === number || e.from === number) ? "mark" : "" }),
      columns: [
        { label: "#", key: "seq", cell: (e) => String(e.seq) },
        { label: "Time", key: "time", cell: (e) => fmtTime(e.time) },
        { label: "Alias", key: "alias", cell: (e) => chip(e.alias, "alias") },
        { label: "Action", key: "action", cell: (e) => e.action || "set" },
        { label: "From", key: "from", cell: (e) => e.from ? h("a", { href: versionHref(model, e.from) }, `v${e.from}`) : "–" },
        { label: "To", key: "to", cell: (e) => e.to ? h("a", { href: versionHref(model, e.to) }, `v${e.to}`) : "(removed)" },
        { label: "By", key: "actor", cell: (e) => actorText(e.actor) },
        { label: "Reason", key: "reason", cell: (e) => e.reason || "" },
      ],
    });
    return section("Alias history", h("div", { class: "table-scroll short" }, t.el));
  }

  /** Who made a change (user@host, MODELTRACK_ACTOR or the CI's actor); older stores have none. */
  function actorText(actor) {
    return actor ? h("span", { class: "actor", title: actor }, actor) : h("span", { class: "muted", title: "recorded before changes named who made them" }, "–");
  }

  function tagHistoryCard(events) {
    if (!events || !events.length) return section("Tag history", empty("no tag changes"));
    const rows = [...events].reverse();
    const t = dataTable({
      id: "tag-history", rows,
      columns: [
        { label: "Time", key: "time", cell: (e) => fmtTime(e.time) },
        { label: "Change", key: "change", cell: (e) => [
          Object.entries(e.set || {}).map(([k, v]) => chip(`+ ${tagText(k, v)}`, "tag", `set ${tagText(k, v)}`)),
          (e.remove || []).map((k) => chip(`− ${k}`, "", `removed ${k}`)),
        ] },
        { label: "By", key: "actor", cell: (e) => actorText(e.actor) },
      ],
    });
    return section("Tag history", h("div", { class: "table-scroll short" }, t.el));
  }

  // ------------------------------------------------------------------ version page
  async function pageVersion(id, model, number) {
    const [rec, series] = await Promise.all([
      api(`versions/${enc(model)}/${number}`),
      api(`versions/${enc(model)}/${number}/series?points=2000`),
    ]);
    if (id !== state.routeId) return null;
    document.title = `${model}@v${number} · modeltrack`;
    setCrumbs([["Models", "#/"], [model, modelHref(model)], [`v${number}`, null]]);
    const status = statusBadge(rec.status);
    status.id = "version-status";

    const head = h("div", { class: "page-head" },
      h("h1", null, `${model} `, h("span", { class: "vnum" }, `v${number}`)), status,
      rec.label ? chip(rec.label, "label", "semantic label") : null,
      rec.aliases.map((a) => chip(a, "alias")),
      h("span", { class: "spacer" }),
      number > 1 ? h("a", { class: "btn", href: `#/compare?refs=${enc(`${model}@v${number - 1}`)},${enc(`${model}@v${number}`)}` }, `Compare with v${number - 1}`) : null);

    const overview = section("Overview", kv([
      ["Created", h("span", { title: rec.created_at || "" }, fmtTime(rec.created_at))],
      ["Created by", h("span", { id: "version-actor" }, actorText(rec.actor))],
      ["Finished", fmtTime(rec.finished_at)],
      ["Duration", h("span", { id: "duration" }, fmtDuration(rec.duration_s))],
      ["Framework", rec.framework || "–"],
      rec.parent ? ["Parent", rec.parent] : null,
      ["Tags", Object.keys(rec.tags).length ? Object.entries(rec.tags).map(([k, v]) => chip(tagText(k, v), "tag")) : "–"],
      ...Object.entries(rec.info || {}).map(([k, v]) => [k, fmtValue(v)]),
    ]), rec.error ? h("details", { class: "error-box", open: true }, h("summary", null, "Error"), h("pre", { id: "error-trace" }, rec.error)) : null);

    const chartsBox = h("div", { class: "charts", id: "version-charts" });
    const metricsTable = h("div", { id: "metric-summary" });
    const metricsCard = section("Metrics", metricsTable, Object.keys(series.metrics).length ? MTChart.controls() : null, chartsBox);

    const paramRows = Object.entries(rec.params || {});
    const paramFilter = h("input", { type: "search", class: "search small", placeholder: "filter params", "aria-label": "filter params" });
    const paramTable = dataTable({
      id: "params-table", rows: paramRows, sortKey: "name",
      columns: [
        { label: "Param", key: "name", sort: (r) => r[0], cell: (r) => h("code", null, r[0]) },
        { label: "Value", key: "value", cell: (r) => longValue(fmtValue(r[1])) },
      ],
      emptyText: "no params recorded",
    });
    paramFilter.addEventListener("input", () => {
      const q = paramFilter.value.toLowerCase();
      paramTable.setRows(paramRows.filter((r) => (r[0] + " " + fmtValue(r[1])).toLowerCase().includes(q)));
    });
    const params = section("Params", paramRows.length > 12 ? h("div", { class: "toolbar" }, paramFilter) : null, h("div", { class: "table-scroll short" }, paramTable.el));

    const page = h("div", { class: "version-page" }, head,
      h("div", { class: "cols" },
        h("div", { class: "col-main" }, overview, metricsCard, params, environmentCard(rec), dataCard(rec), artifactsCard(rec, model, number),
          aliasHistoryCard(model, rec.alias_history, number), tagHistoryCard(rec.tag_history)),
        h("div", { class: "col-side" }, actionsCard(rec, model, number), notesCard(rec, model, number), reproductionCard(rec), changelogCard(rec))));
    main.replaceChildren(page);

    const charts = new Map();
    drawVersionCharts(chartsBox, charts, series, metricsTable);
    if (rec.status === "running") {
      const poll = state.info.poll_ms || 2000;
      const timer = setInterval(async () => {
        try {
          const s = await api(`versions/${enc(model)}/${number}/series?points=2000`);
          if (id !== state.routeId) return;
          if (s.status !== "running") { stopTimers(); render(); return; }
          drawVersionCharts(chartsBox, charts, s, metricsTable);
          status.textContent = s.status;
        } catch (e) { /* a transient read error: the next poll retries */ }
      }, poll);
      state.timers.push(timer);
    }
    return "version";
  }

  function drawVersionCharts(box, charts, series, tableBox) {
    const names = Object.keys(series.metrics);
    const rows = names.map((n) => {
      const s = series.metrics[n];
      const vals = s.value;
      // downsampling keeps each bucket's min and max, so the best value survives it
      const finite = vals.filter((x) => x !== null && Number.isFinite(x));
      const best = !finite.length || !s.goal ? null : finite.reduce((a, b) => (s.goal === "min" ? Math.min(a, b) : Math.max(a, b)));
      return { name: n, last: vals.length ? vals[vals.length - 1] : null, best, goal: s.goal, count: s.count };
    });
    tableBox.replaceChildren(rows.length ? dataTable({
      id: "metrics-table", rows, sortKey: null,
      columns: [
        { label: "Metric", key: "name", cell: (r) => h("code", null, r.name) },
        { label: "Last", key: "last", cls: "num", cell: (r) => fmtNum(r.last) },
        { label: "Best", key: "best", cls: "num", cell: (r) => fmtNum(r.best) },
        { label: "Goal", key: "goal", cell: (r) => r.goal || "–" },
        { label: "Points", key: "count", cls: "num", cell: (r) => String(r.count) },
      ],
    }).el : empty(series.status === "running" ? "no metrics flushed yet" : "no metrics recorded"));
    const groups = groupMetrics(names);
    let i = 0;
    for (const [key, members] of groups) {
      let chart = charts.get(key);
      if (!chart) {
        chart = new LineChart(box, { title: key, height: 280, id: key });
        charts.set(key, chart);
      }
      const items = members.map((name, j) => ({
        label: name, s: series.metrics[name], dash: isValidation(name) && members.length > 1,
        color: color(i + j),
      }));
      i += members.length;
      const { series: lines, xLabel } = chartSeries(items);
      chart.setData(lines, xLabel);
    }
    box.dataset.points = String([...charts.values()].reduce((a, c) => a + Number(c.root.dataset.points || 0), 0));
  }

  function environmentCard(rec) {
    const env = rec.environment;
    if (!env) return section("Environment", empty("no environment recorded"));
    const git = env.git || null;
    const pk = Object.entries(env.packages || {}).sort((a, b) => a[0].localeCompare(b[0]));
    const pkFilter = h("input", { type: "search", class: "search small", placeholder: "filter packages", "aria-label": "filter packages" });
    const pkTable = dataTable({
      id: "packages-table", rows: pk, sortKey: "name",
      columns: [
        { label: "Package", key: "name", sort: (r) => r[0].toLowerCase(), cell: (r) => r[0] },
        { label: "Version", key: "version", cell: (r) => r[1] },
      ],
    });
    pkFilter.addEventListener("input", () => pkTable.setRows(pk.filter((r) => r[0].toLowerCase().includes(pkFilter.value.toLowerCase()))));
    return section("Environment",
      kv([
        ["Python", `${env.python || "?"} ${env.implementation || ""}`],
        ["Platform", env.platform || "–"],
        ["Host", `${env.hostname || "?"} · ${env.cpu_count || "?"} CPUs · ${fmtBytes(env.ram_bytes)} RAM`],
        env.gpus && env.gpus.length ? ["GPUs", env.gpus.map((g) => `${g.name} (${fmtBytes(g.memory)})`).join(", ")] : null,
        ["Command", h("code", { class: "wrap" }, (env.command || []).join(" ") || "–")],
        ["Directory", env.cwd || "–"],
        ["Git", git ? h("span", { id: "git-info" }, h("code", null, git.commit || "no commit"), git.branch ? ` on ${git.branch}` : "", git.dirty ? chip("dirty", "warn") : chip("clean", "")) : "not a git checkout"],
      ]),
      rec.code_diff !== null && rec.code_diff !== undefined
        ? h("details", { class: "diff" }, h("summary", null, `Uncommitted changes (code.diff, ${fmtBytes(env.diff_size || rec.code_diff.length)})${rec.code_diff_truncated ? " — truncated" : ""}`),
          h("pre", { class: "code", id: "code-diff" }, rec.code_diff.split("\n").map((line) => h("span", { class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : null }, line + "\n"))))
        : null,
      h("details", { class: "packages" }, h("summary", null, `Packages (${pk.length})`), h("div", { class: "toolbar" }, pkFilter), h("div", { class: "table-scroll short" }, pkTable.el)));
  }

  function dataCard(rec) {
    if (!rec.data.length) return section("Data", empty("no data fingerprints recorded"));
    return section("Data", dataTable({
      id: "data-table", rows: rec.data,
      columns: [
        { label: "Name", key: "name", cell: (d) => d.name },
        { label: "Fingerprint", key: "fp", cell: (d) => h("code", { title: d.fingerprint || "" }, d.fingerprint ? short(d.fingerprint, 16) : "not hashed") },
        { label: "Shape", key: "shape", cell: (d) => fmtShape(d) || "–" },
        { label: "Dtype", key: "dtype", cell: (d) => d.dtype || "–" },
      ],
    }).el);
  }

  function artifactHref(model, number, path) {
    return `/api/versions/${enc(model)}/${number}/artifacts/` + path.split("/").map(enc).join("/");
  }

  function artifactsCard(rec, model, number) {
    if (!rec.artifacts.length) return section("Artifacts", empty("no artifacts stored"));
    return section("Artifacts", h("div", { class: "table-scroll short" }, dataTable({
      id: "artifacts-table", rows: rec.artifacts,
      columns: [
        { label: "Path", key: "path", cell: (a) => h("a", { href: artifactHref(model, number, a.path), download: a.path.split("/").pop(), class: "download" }, a.path) },
        { label: "Kind", key: "kind", cell: (a) => [a.kind, a.best ? chip("best", "ok") : null] },
        { label: "Size", key: "size", cls: "num", cell: (a) => fmtBytes(a.size) },
        { label: "SHA-256", key: "sha", cell: (a) => h("code", { title: a.sha256, class: "sha" }, short(a.sha256, 16)) },
        { label: "Epoch", key: "epoch", cls: "num", cell: (a) => a.epoch === undefined ? "–" : String(a.epoch) },
      ],
    }).el));
  }

  function actionsCard(rec, model, number) {
    const aliases = rec.model_aliases || {};
    const aliasInput = h("input", { type: "text", id: "alias-input", list: "alias-names", placeholder: "alias, e.g. production", value: "production", "aria-label": "alias" });
    const datalist = h("datalist", { id: "alias-names" }, Object.keys(aliases).map((a) => h("option", { value: a })));
    const promote = h("button", { type: "button", class: "btn primary", id: "promote-btn" }, "Set alias");
    promote.addEventListener("click", () => {
      const alias = aliasInput.value.trim();
      if (!alias) return;
      const holder = aliases[alias];
      act(`Point ${alias} at v${number}?`,
        [holder ? `${model}@${alias} now points at v${holder}; it will point at v${number}.` : `${model}@${alias} is new; it will point at v${number}.`,
          "The move is kept in the alias history and can be rolled back."],
        `models/${enc(model)}/aliases`, { alias, version: number }, `${alias} → v${number}`);
    });

    // a rollback walks back through the alias's holders (the server says where it goes)
    const targets = rec.rollbacks || {};
    const rollbacks = Object.entries(aliases).map(([alias, holder]) => {
      const back = targets[alias];
      if (!back) return null;
      return h("button", {
        type: "button", class: "btn", dataset: { alias }, id: `rollback-${alias}`,
        onclick: () => act(`Roll back ${alias}?`, [`${model}@${alias} points at v${holder}; it will point back at v${back}, the holder before it.`],
          `models/${enc(model)}/aliases/${enc(alias)}/rollback`, {}, `${alias} rolled back to v${back}`),
      }, `Roll back ${alias} (v${holder} → v${back})`);
    }).filter(Boolean);

    const removals = rec.aliases.map((alias) => h("button", {
      type: "button", class: "btn subtle", title: `remove ${alias}`, dataset: { alias },
      onclick: () => act(`Remove alias ${alias}?`, [`${model}@${alias} will no longer point at any version (kept in the history).`],
        `models/${enc(model)}/aliases/${enc(alias)}/remove`, {}, `${alias} removed`),
    }, `remove ${alias}`));

    const tagInput = h("input", { type: "text", id: "tag-input", placeholder: "label or key=value", "aria-label": "tag" });
    const tagBtn = h("button", { type: "button", class: "btn", id: "tag-btn" }, "Add tag");
    const addTag = () => {
      const text = tagInput.value.trim();
      if (!text) return;
      const eq = text.indexOf("=");
      const key = eq >= 0 ? text.slice(0, eq) : text;
      const value = eq >= 0 ? text.slice(eq + 1) : null;
      act(`Tag v${number}?`, [`Set tag ${tagText(key, value)} on ${model}@v${number}.`], `versions/${enc(model)}/${number}/tags`,
        { set: { [key]: value } }, `tag ${tagText(key, value)} set`);
    };
    tagBtn.addEventListener("click", addTag);
    tagInput.addEventListener("keydown", (e) => { if (e.key === "Enter") addTag(); });
    const tagChips = Object.entries(rec.tags).map(([k, v]) => h("span", { class: "chip tag removable" }, tagText(k, v),
      h("button", {
        type: "button", class: "x", title: `remove tag ${k}`, "aria-label": `remove tag ${k}`, dataset: { tag: k },
        onclick: () => act(`Remove tag ${k}?`, [`Remove tag ${tagText(k, v)} from ${model}@v${number}.`], `versions/${enc(model)}/${number}/tags`,
          { remove: [k] }, `tag ${k} removed`),
      }, "×")));

    return section("Actions",
      h("h3", null, "Promote"),
      h("div", { class: "row" }, aliasInput, datalist, promote),
      removals.length ? h("div", { class: "row" }, removals) : null,
      rollbacks.length ? [h("h3", null, "Roll back"), h("div", { class: "col" }, rollbacks)] : null,
      h("h3", null, "Tags"),
      h("div", { class: "chips", id: "tag-chips" }, tagChips.length ? tagChips : h("span", { class: "muted" }, "no tags")),
      h("div", { class: "row" }, tagInput, tagBtn));
  }

  // `modeltrack reproduce`: the version this one re-ran, and the re-runs of this one, with their results
  function reproductionCard(rec) {
    const r = rec.reproduction;
    if (!r || (!r.reproduces && !r.reproduced_by.length)) return null;
    const link = (ref) => {
      const at = ref.lastIndexOf("@v");
      return at > 0 ? h("a", { href: versionHref(ref.slice(0, at), ref.slice(at + 2)) }, ref) : ref;
    };
    const result = (text) => chip(text || "unknown", text === "match" ? "label" : "kind", "reproduction result");
    return section("Reproduction", h("ul", { class: "changes", id: "reproduction" },
      r.reproduces ? h("li", null, "reproduces ", link(r.reproduces.ref), " ", result(r.reproduces.result)) : null,
      r.reproduced_by.map((x) => h("li", null, "reproduced by ", link(x.ref), " ", result(x.result)))));
  }

  function notesCard(rec, model, number) {
    const view = h("div", { class: "notes", id: "notes-text" }, rec.notes || "");
    const area = h("textarea", { id: "notes-input", rows: "6", placeholder: "Release notes: what this version is, why it exists…", "aria-label": "notes" });
    area.value = rec.notes || "";
    const save = h("button", { type: "button", class: "btn", id: "notes-btn" }, "Save notes");
    save.addEventListener("click", () => {
      const text = area.value;
      act(`Save notes of v${number}?`, [text.trim() ? `Replace the notes of ${model}@v${number} (${text.length} characters).` : `Clear the notes of ${model}@v${number}.`],
        `versions/${enc(model)}/${number}/notes`, { text: text.trim() ? text : null }, "notes saved");
    });
    const by = rec.notes && (rec.notes_actor || rec.notes_time)
      ? h("p", { class: "muted", id: "notes-by" }, "saved", rec.notes_time ? ` ${fmtTime(rec.notes_time)}` : "", rec.notes_actor ? [" by ", actorText(rec.notes_actor)] : "")
      : null;
    return section("Notes", rec.notes ? view : h("p", { class: "muted", id: "notes-text" }, "no notes yet"), by, area, h("div", { class: "row" }, save));
  }

  function changeList(ch) {
    const items = [];
    const p = ch.params || { added: {}, removed: {}, changed: {} };
    for (const [k, v] of Object.entries(p.changed || {})) items.push(["param", k, `${fmtValue(v.from)} → ${fmtValue(v.to)}`]);
    for (const [k, v] of Object.entries(p.added || {})) items.push(["param", k, `added: ${fmtValue(v)}`]);
    for (const [k, v] of Object.entries(p.removed || {})) items.push(["param", k, `removed (was ${fmtValue(v)})`]);
    for (const [k, v] of Object.entries(ch.data || {})) items.push(["data", k, `${short(v.from)} → ${short(v.to)}`]);
    const c = ch.code || {};
    if (c.changed) {
      const cm = c.commit || {};
      items.push(["code", "commit", `${short(cm.from)} → ${short(cm.to)}`]);
      if (c.diff_sha256 && c.diff_sha256.from !== c.diff_sha256.to) items.push(["code", "uncommitted diff", `${short(c.diff_sha256.from)} → ${short(c.diff_sha256.to)}`]);
    }
    if (ch.architecture && ch.architecture.changed) items.push(["architecture", "", `${fmtValue(ch.architecture.from)} → ${fmtValue(ch.architecture.to)}`]);
    const pk = ch.packages || {};
    for (const [k, v] of Object.entries(pk.changed || {})) items.push(["package", k, `${v.from} → ${v.to}`]);
    for (const [k, v] of Object.entries(pk.added || {})) items.push(["package", k, `added ${v}`]);
    for (const [k, v] of Object.entries(pk.removed || {})) items.push(["package", k, `removed (was ${v})`]);
    return items;
  }

  function changelogCard(rec) {
    const ch = rec.changes;
    if (!ch) return section("Changelog", empty(rec.status === "finished" ? "first version: nothing to compare with"
      : rec.status === "running" ? "written when the version finishes" : `none: only finished versions get one (this one ${rec.status})`));
    const items = changeList(ch);
    return section("Changelog",
      h("p", null, `Against v${ch.against}: `, ch.bump ? chip(`${ch.bump} change`, "label") : "no change"),
      items.length ? h("ul", { class: "changes", id: "changelog" }, items.map(([kind, key, text]) => h("li", null, chip(kind, "kind"), key ? h("code", null, key) : null, " ", longValue(text)))) : empty("same params, data, code and packages"));
  }

  // ------------------------------------------------------------------ compare page
  async function pageCompare(id, query) {
    const refs = (query.get("refs") || "").split(",").map((s) => s.trim()).filter(Boolean);
    const points = query.has("points") ? parseInt(query.get("points"), 10) : 2000;
    if (refs.length < 2) throw new ApiError(400, "pick 2 to 10 versions to compare (the versions page has checkboxes)");
    const cmp = await api("compare?" + refs.map((r) => "ref=" + enc(r)).join("&"));
    const vs = cmp.versions;
    const seriesList = await Promise.all(vs.map((v) => api(`versions/${enc(v.model)}/${v.version}/series?points=${points}`)));
    if (id !== state.routeId) return null;
    const models = [...new Set(vs.map((v) => v.model))];
    const refOf = (v) => models.length > 1 ? `${v.model}@v${v.version}` : `v${v.version}`;
    document.title = `Compare ${vs.map(refOf).join(", ")} · modeltrack`;
    setCrumbs([["Models", "#/"], ...(models.length === 1 ? [[models[0], modelHref(models[0])]] : []), ["Compare", null]]);
    hideBanner();

    const headerCells = (withBase) => vs.map((v, i) => h("th", { class: "vcol", title: `${v.model}@v${v.version}` + (withBase && i === 0 ? " (base)" : "") }, h("span", { class: "swatch" , dataset: { i: String(i) } }), refOf(v), withBase && i === 0 ? h("span", { class: "muted" }, " (base)") : null));
    // Every compared version stays on screen: fixed column widths, long values wrap or clip.
    const cols = () => h("colgroup", null, h("col", { class: "name-col" }), vs.map(() => h("col", { class: "v-col" })));
    const paintSwatches = (root) => root.querySelectorAll(".swatch[data-i]").forEach((s) => { s.style.borderColor = color(+s.dataset.i); });

    // cards per version
    const cards = h("div", { class: "version-cards" }, vs.map((v, i) => h("a", { class: "vcard", href: versionHref(v.model, v.version) },
      h("span", { class: "swatch", dataset: { i: String(i) } }),
      h("strong", null, `${v.model}@v${v.version}`), statusBadge(v.status),
      v.label ? chip(v.label, "label") : null, v.aliases.map((a) => chip(a, "alias")),
      h("span", { class: "muted" }, fmtTime(v.created_at)),
      v.actor ? h("span", { class: "muted actor", title: `created by ${v.actor}` }, `by ${v.actor}`) : null)));

    // summary metrics with best marked
    const names = [];
    for (const v of vs) for (const k of Object.keys(v.metrics)) if (!names.includes(k)) names.push(k);
    names.sort((a, b) => isValidation(b) - isValidation(a));
    const mBody = names.map((name) => {
      const vals = vs.map((v) => (v.metrics[name] ? v.metrics[name].last : null));
      const goal = (vs.map((v) => v.metrics[name] && v.metrics[name].goal).find(Boolean)) || null;
      const finite = vals.filter((x) => typeof x === "number" && Number.isFinite(x));
      const allSame = finite.every((x) => x === finite[0]);
      const best = goal && finite.length > 1 && !allSame ? (goal === "min" ? Math.min(...finite) : Math.max(...finite)) : null;
      return h("tr", { dataset: { metric: name } }, h("th", { scope: "row", title: name }, h("code", null, name), goal ? h("span", { class: "muted" }, ` (${goal})`) : null),
        vals.map((x) => h("td", { class: "num" + (best !== null && x === best ? " best" : "") , title: best !== null && x === best ? "best" : null },
          fmtNum(x), best !== null && x === best ? " ★" : null)));
    });
    const metricsTable = h("table", { class: "grid compare", id: "compare-metrics" }, cols(), h("thead", null, h("tr", null, h("th", null, "Metric (last value)"), headerCells(false))), h("tbody", null, mBody));

    // params side by side
    const pkeys = [];
    for (const v of vs) for (const k of Object.keys(v.params || {})) if (!pkeys.includes(k)) pkeys.push(k);
    pkeys.sort();
    const only = h("input", { type: "checkbox", id: "only-diff" });
    const pBody = h("tbody");
    let nDiff = 0;
    const pRows = pkeys.map((k) => {
      const vals = vs.map((v) => (k in (v.params || {}) ? fmtValue(v.params[k]) : null));
      const differs = vals.some((x) => x !== vals[0]);
      if (differs) nDiff++;
      return h("tr", { class: differs ? "differs" : "same", dataset: { param: k } }, h("th", { scope: "row", title: k }, h("code", null, k)),
        vals.map((x, i) => h("td", { class: (i > 0 && x !== vals[0] ? "changed" : "") + (x === null ? " absent" : "") }, x === null ? "—" : longValue(x))));
    });
    add(pBody, [pRows]);
    only.addEventListener("change", () => pBody.classList.toggle("only-diff", only.checked));
    const paramsTable = h("table", { class: "grid compare", id: "compare-params" }, cols(), h("thead", null, h("tr", null, h("th", null, "Param"), headerCells(true))), pBody);

    // data, code, packages
    const dnames = [];
    for (const v of vs) for (const d of v.data || []) if (!dnames.includes(d.name)) dnames.push(d.name);
    const fpRows = dnames.map((name) => {
      const cells = vs.map((v) => (v.data || []).find((d) => d.name === name) || null);
      const fps = cells.map((c) => (c ? c.fingerprint : null));
      return h("tr", { class: fps.some((f) => f !== fps[0]) ? "differs" : "same" }, h("th", { scope: "row" }, name),
        cells.map((c, i) => h("td", { class: i > 0 && fps[i] !== fps[0] ? "changed" : "" }, c ? [h("code", { title: c.fingerprint || "" }, short(c.fingerprint)), fmtShape(c) ? h("span", { class: "muted" }, ` ${fmtShape(c)}`) : null] : "—")));
    });
    const gitOf = (v) => (v.environment && v.environment.git) || {};
    const codeRow = (label, get) => {
      const vals = vs.map(get);
      return h("tr", { class: vals.some((x) => x !== vals[0]) ? "differs" : "same" }, h("th", { scope: "row" }, label),
        vals.map((x, i) => h("td", { class: i > 0 && x !== vals[0] ? "changed" : "" }, x === null || x === undefined ? "—" : String(x))));
    };
    const codeRows = [
      codeRow("git commit", (v) => short(gitOf(v).commit)),
      codeRow("branch", (v) => gitOf(v).branch || null),
      codeRow("dirty", (v) => (v.environment && v.environment.git ? (gitOf(v).dirty ? "yes" : "no") : null)),
      codeRow("uncommitted diff", (v) => (v.environment && v.environment.diff_sha256 ? short(v.environment.diff_sha256) : null)),
      codeRow("python", (v) => (v.environment ? v.environment.python : null)),
      codeRow("framework", (v) => v.framework || null),
    ];
    const pkgNames = new Set();
    for (const v of vs) for (const k of Object.keys((v.environment && v.environment.packages) || {})) pkgNames.add(k);
    const pkgRows = [...pkgNames].sort().map((name) => {
      const vals = vs.map((v) => ((v.environment && v.environment.packages) || {})[name] || null);
      if (vals.every((x) => x === vals[0])) return null;
      return h("tr", { class: "differs" }, h("th", { scope: "row" }, name), vals.map((x, i) => h("td", { class: i > 0 && x !== vals[0] ? "changed" : "" }, x || "—")));
    }).filter(Boolean);
    const changesTable = h("table", { class: "grid compare", id: "compare-changes" }, cols(),
      h("thead", null, h("tr", null, h("th", null, ""), headerCells(true))),
      h("tbody", null,
        h("tr", { class: "group" }, h("th", { colspan: String(vs.length + 1) }, "Data fingerprints")),
        fpRows.length ? fpRows : h("tr", null, h("td", { colspan: String(vs.length + 1), class: "muted" }, "no data fingerprints")),
        h("tr", { class: "group" }, h("th", { colspan: String(vs.length + 1) }, "Code and environment")),
        codeRows,
        h("tr", { class: "group" }, h("th", { colspan: String(vs.length + 1) }, `Packages that differ (${pkgRows.length} of ${pkgNames.size})`)),
        pkgRows.length ? pkgRows : h("tr", null, h("td", { colspan: String(vs.length + 1), class: "muted" }, "same package versions"))));

    const diffSummary = h("ul", { class: "changes", id: "compare-summary" }, cmp.diffs.map((d) => {
      const p = d.params;
      const np = Object.keys(p.changed).length + Object.keys(p.added).length + Object.keys(p.removed).length;
      const pk = d.packages;
      const nk = Object.keys(pk.changed).length + Object.keys(pk.added).length + Object.keys(pk.removed).length;
      const parts = [
        `${np} param${np === 1 ? "" : "s"} changed`,
        Object.keys(d.data).length ? `data changed (${Object.keys(d.data).join(", ")})` : "same data",
        d.code.changed ? "code changed" : "same code",
        `${nk} package${nk === 1 ? "" : "s"} changed`,
      ];
      if (d.architecture.changed) parts.push("architecture changed");
      return h("li", null, h("strong", null, `${d.to} vs ${d.from}: `), parts.join(" · "));
    }));

    const chartsBox = h("div", { class: "charts", id: "compare-charts" });
    const metricSel = h("select", { id: "metric-select", "aria-label": "metric" }, h("option", { value: "" }, "all metrics"), names.map((n) => h("option", { value: n }, n)));

    main.replaceChildren(
      h("div", { class: "page-head" }, h("h1", null, `Compare ${vs.length} versions`)),
      cards,
      section("Changes against the base", diffSummary),
      section("Metrics", h("div", { class: "table-scroll" }, metricsTable)),
      h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", null, "Curves"), MTChart.controls(), h("span", { class: "spacer" }), metricSel), chartsBox),
      h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", null, "Params"), h("span", { class: "muted" }, `${nDiff} of ${pkeys.length} differ`), h("span", { class: "spacer" }),
        h("label", null, only, " only differences")), h("div", { class: "table-scroll" }, paramsTable)),
      section("Data, code and packages", h("div", { class: "table-scroll" }, changesTable)));
    paintSwatches(main);

    const charts = [];
    const drawCharts = (list) => {
      chartsBox.replaceChildren();
      charts.length = 0;
      const chosen = metricSel.value ? [metricSel.value] : names;
      chartsBox.classList.toggle("single", chosen.length === 1);
      for (const name of chosen) {
        const items = [];
        list.forEach((s, i) => { if (s.metrics[name]) items.push({ label: refOf(vs[i]), s: s.metrics[name], color: color(i) }); });
        if (!items.length) continue;
        const chart = new LineChart(chartsBox, { title: name, height: chosen.length === 1 ? 440 : 300, id: name });
        const { series, xLabel } = chartSeries(items);
        chart.setData(series, xLabel);
        charts.push(chart);
      }
      chartsBox.dataset.points = String(charts.reduce((a, c) => a + Number(c.root.dataset.points || 0), 0));
    };
    let latest = seriesList;
    drawCharts(latest);
    metricSel.addEventListener("change", () => drawCharts(latest));
    if (vs.some((v) => v.status === "running")) {
      const timer = setInterval(async () => {
        try {
          const fresh = await Promise.all(vs.map((v) => api(`versions/${enc(v.model)}/${v.version}/series?points=${points}`)));
          if (id !== state.routeId) return;
          latest = fresh;
          drawCharts(latest);
          if (!fresh.some((s) => s.status === "running")) stopTimers();
        } catch (e) { /* retried at the next poll */ }
      }, state.info.poll_ms || 2000);
      state.timers.push(timer);
    }
    return "compare";
  }

  // ------------------------------------------------------------------ start
  if (location.hash.startsWith("#token=")) {
    state.token = decodeURIComponent(location.hash.slice(7));
    sessionStorage.setItem("modeltrack-token", state.token);
    history.replaceState(null, "", location.pathname + "#/");
  }
  window.addEventListener("hashchange", render);
  render();
})();
