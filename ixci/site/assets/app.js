/* ixci results site. No framework, no build step, no network: the data is the global
 * IXCI_DATA (data/site.js), one run's manifest is IXCI_RUNS[id] (data/runs/<id>.js, loaded
 * with a <script> tag, which works from file:// where fetch() does not).
 * All state lives in the query string; values equal to their default are omitted. */
(function () {
  'use strict';

  var D = window.IXCI_DATA;
  var P = D.points;
  var N = P.n;
  var TIMING = (window.ixciTiming = window.ixciTiming || {});
  TIMING.dataReady = performance.now();
  // Deployment columns (model, SKU, image, TP, …) arrive once per distinct combination, a
  // "job" (J, indexed by job), and each point holds its job index (JOB). Everything the
  // filters look at is a job column, so selection runs over jobs and only the last step
  // touches the points: no per-point work happens before the first draw beyond one pass.
  var J = P.jobs.columns, NJ = P.jobs.n, JOB = P.job;
  // C: the point columns; the extra ones (cost, energy, …) join later (loadExtra)
  var C = P.columns;
  function own(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
  var SEQKEYS = [];
  var JSEQ = (function () {
    var out = new Int32Array(NJ), seen = {};
    for (var j = 0; j < NJ; j++) {
      var k = J.isl[j] + 'x' + J.osl[j];
      if (!(k in seen)) { seen[k] = SEQKEYS.length; SEQKEYS.push(k); }
      out[j] = seen[k];
    }
    return out;
  })();
  // per point: drawable (valid and status ok); per job: points and drawable points
  var VALID = new Uint8Array(N), JTOTAL = new Int32Array(NJ), JVALID = new Int32Array(NJ);
  (function () {
    var v = C.valid, st = C.status, ok = st ? st.dict.indexOf('ok') : -1;
    for (var i = 0; i < N; i++) {
      var good = v[i] === 1 && (!st || st.codes[i] < 0 || st.codes[i] === ok);
      var j = JOB[i];
      JTOTAL[j]++;
      if (good) { VALID[i] = 1; JVALID[j]++; }
    }
  })();

  // points measured on a configuration whose eval suite failed its quality gate: drawn hollow
  // and flagged, or hidden with the "quality" control (a core column, present only when a
  // point has it)
  var QF = C.quality_failed || null;
  function qualityFailed(i) { return !!QF && QF[i] === 1; }

  // the extra columns (cost, energy, latency tails, point ids) load on first need
  var extra = { state: window.IXCI_EXTRA ? 'loading' : 'none', waiting: [] };
  function mergeExtra() {
    var X = window.IXCI_EXTRA.columns;
    Object.keys(X).forEach(function (k) { C[k] = X[k]; });
    extra.state = 'ready';
    var w = extra.waiting;
    extra.waiting = [];
    w.forEach(function (f) { f(); });
  }
  function loadExtra(cb) {
    if (extra.state === 'ready') { cb(); return; }
    extra.waiting.push(cb);
    if (extra.state === 'loading' && window.IXCI_EXTRA) { mergeExtra(); return; }
    if (extra.state !== 'none') return;
    extra.state = 'loading';
    var tag = document.createElement('script');
    tag.src = 'data/extra.js';
    tag.onload = mergeExtra;
    tag.onerror = function () {
      extra.state = 'failed';
      el('status').textContent = 'data/extra.js is missing from this site: cost, energy and CSV are unavailable.';
    };
    document.body.appendChild(tag);
  }

  var PALETTE = ['#2f6db5', '#e8731a', '#2a9d4b', '#d62f3a', '#8a5cc2', '#8c564b', '#d45fb0',
    '#6b7280', '#b5a100', '#17a2b8', '#1b4f8a', '#a4450d', '#0f6b2e', '#8f1d26', '#5a3a8a'];
  var CHARTS = [
    { id: 'tput', label: 'Throughput vs interactivity', x: 'interactivity', y: 'tput' },
    { id: 'latency', label: 'Throughput vs latency', x: 'e2el', y: 'tput' },
    { id: 'cost', label: 'Cost per million tokens', x: 'interactivity', y: 'cost' },
    { id: 'energy', label: 'Energy per token', x: 'interactivity', y: 'energy' },
    { id: 'mw', label: 'Tokens/s per MW', x: 'interactivity', y: 'mw' }
  ];
  // the agentic view (docs/agentic.md): only when the table has multi-turn (sessions) points
  var AGENTIC = own(C, 'e2e_norm_interactivity_p90');
  if (AGENTIC) {
    CHARTS.push({ id: 'agentic', label: 'Agentic: throughput vs E2E interactivity', x: 'e2eint', y: 'otput', x2: 'tokint' },
      { id: 'ttftctx', label: 'Agentic: TTFT vs context length', x: 'context', y: 'ttft' });
  }
  var VIEWS = ['charts', 'compare', 'history', 'coverage', 'runs', 'run'];
  var LIST_KEYS = ['prec', 'sku', 'fw'];
  var LIST_COLS = { prec: 'precision', sku: 'sku', fw: 'framework' };
  var ORDER = ['view', 'id', 'chart', 'model', 'seq', 'prec', 'sku', 'fw', 'spec', 'disagg',
    'runs', 'run', 'asof', 'from', 'to', 'front', 'quality', 'tokens', 'tier', 'price', 'metric',
    'levels', 'baseline', 'config', 'hlevel'];

  // ---------- column access ----------
  // s/n: a string / number of point i; js/jn: of job j (job columns only)
  function has(name) { return own(J, name) || own(C, name); }
  function s(name, i) {
    if (own(J, name)) return js(name, JOB[i]);
    var c = C[name];
    if (!c) return null;
    var k = c.codes[i];
    return k < 0 ? null : c.dict[k];
  }
  function js(name, j) {
    var c = J[name];
    if (!c) return null;
    var k = c.codes[j];
    return k < 0 ? null : c.dict[k];
  }
  function jn(name, j) { var c = J[name]; return c ? c[j] : null; }
  function code(name, value) {
    var c = own(J, name) ? J[name] : C[name];
    return c && c.dict ? c.dict.indexOf(value) : -1;
  }
  function n(name, i) {
    if (own(J, name)) return J[name][JOB[i]];
    var c = C[name];
    return c ? c[i] : null;
  }
  function seqOf(i) { return SEQKEYS[JSEQ[JOB[i]]]; }
  function day(iso) { return iso ? String(iso).slice(0, 10) : ''; }
  var runById = {};
  D.runs.forEach(function (r) { runById[r.run_id] = r; });
  var newestRun = D.runs.length ? D.runs[D.runs.length - 1] : null;

  // sku · framework groups get a colour that stays the same whatever the filters
  var JGROUP = [];
  for (var jj = 0; jj < NJ; jj++) JGROUP.push(js('sku', jj) + ' · ' + js('framework', jj));
  var GROUPS = (function () {
    var seen = {};
    JGROUP.forEach(function (g, j) { if (JTOTAL[j]) seen[g] = 1; });
    var keys = Object.keys(seen).sort();
    var out = {};
    keys.forEach(function (k, j) { out[k] = PALETTE[j % PALETTE.length]; });
    return out;
  })();

  // ---------- formatting ----------
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return '—';
    var a = Math.abs(v);
    if (a >= 1000) return thousands(Math.round(v));
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(3);
  }
  // 1234567 -> "1,234,567" (toLocaleString loads ICU data on first use: ~40 ms at start-up)
  function thousands(v) { return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function lvl(v) { return String(+(+v).toPrecision(4)); }
  function esc(t) {
    return String(t === null || t === undefined ? '' : t).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function el(id) { return document.getElementById(id); }
  function seqLabel(k) {
    var p = k.split('x');
    function t(x) { x = +x; return x % 1024 === 0 ? (x / 1024) + 'k' : String(x); }
    return t(p[0]) + ' in / ' + t(p[1]) + ' out';
  }

  // ---------- state and URL ----------
  var state = {};
  function baseDefaults() {
    return { view: 'charts', id: '', chart: 'tput', model: '', seq: '', prec: [], sku: [], fw: [],
      spec: 'all', disagg: 'all', runs: 'latest', run: '', asof: '', from: '', to: '',
      front: false, quality: 'flag', tokens: 'total', tier: D.tiers.length ? D.tiers[0] : '', price: {},
      metric: '', levels: '10,25,50,100,200', baseline: '', config: '', hlevel: '' };
  }
  // model and ISL/OSL defaults depend on the data: the most-measured ones
  function defaultModel() { return mostCommon(timeJobs(state), function (j) { return js('model', j); }); }
  function defaultSeq(model) {
    var mc = code('model', model), mask = timeJobs(state), mcodes = J.model.codes;
    for (var j = 0; j < NJ; j++) if (mcodes[j] !== mc) mask[j] = 0;
    return mostCommon(mask, function (j) { return SEQKEYS[JSEQ[j]]; });
  }
  // the key with the most drawable points among the jobs in `mask` (ties: first in order)
  function mostCommon(mask, key) {
    var cnt = countBy(mask, key);
    var best = '', bc = -1;
    Object.keys(cnt).sort().forEach(function (k) { if (cnt[k] > bc) { best = k; bc = cnt[k]; } });
    return best;
  }
  var defaultsCache = {};
  function defaults() {
    var d = baseDefaults();
    var key = [state.run, state.asof, state.from, state.to, state.model].join('|');
    var hit = defaultsCache[key];
    if (!hit) {
      var m = defaultModel();
      hit = defaultsCache[key] = { model: m, seq: defaultSeq(state.model || m) };
    }
    d.model = hit.model;
    d.seq = hit.seq;
    return d;
  }

  function parseUrl(search) {
    var q = new URLSearchParams(search);
    var st = baseDefaults();
    ORDER.forEach(function (k) {
      if (!q.has(k)) return;
      var v = q.get(k);
      if (LIST_KEYS.indexOf(k) >= 0) st[k] = v ? v.split(',') : [];
      else if (k === 'front') st.front = v === '1';
      else if (k === 'hlevel') st.hlevel = +v > 0 ? +v : '';
      else if (k === 'price') st.price = parsePrices(v);
      else st[k] = v;
    });
    if (VIEWS.indexOf(st.view) < 0) st.view = 'charts';
    if (!CHARTS.some(function (c) { return c.id === st.chart; })) st.chart = 'tput';
    if (['all', 'yes', 'no'].indexOf(st.spec) < 0) st.spec = 'all';
    if (['all', 'yes', 'no'].indexOf(st.disagg) < 0) st.disagg = 'all';
    if (st.quality !== 'hide') st.quality = 'flag';
    if (st.runs !== 'all') st.runs = 'latest';
    if (st.tokens !== 'output') st.tokens = 'total';
    if (st.run && !runById[st.run]) st.run = '';
    if (st.asof && !runById[st.asof]) st.asof = '';
    return st;
  }
  function parsePrices(v) {
    var out = {};
    (v || '').split(',').forEach(function (kv) {
      var p = kv.split(':');
      if (p.length === 2 && +p[1] > 0) out[p[0]] = +p[1];
    });
    return out;
  }
  function serialize(st) {
    var d = defaults();
    var parts = [];
    ORDER.forEach(function (k) {
      var v = st[k], dv = d[k], text;
      if (LIST_KEYS.indexOf(k) >= 0) { if (!v.length) return; text = v.join(','); }
      else if (k === 'front') { if (!v) return; text = '1'; }
      else if (k === 'price') {
        var ks = Object.keys(v).sort();
        if (!ks.length) return;
        text = ks.map(function (s2) { return s2 + ':' + v[s2]; }).join(',');
      } else { if (v === dv || v === '' || v === null) return; text = String(v); }
      parts.push(k + '=' + encodeURIComponent(text).replace(/%2C/g, ',').replace(/%3A/g, ':'));
    });
    return parts.length ? '?' + parts.join('&') : '';
  }
  function hrefFor(patch) {
    var st = Object.assign({}, state, patch);
    return (location.pathname.split('/').pop() || 'index.html') + serialize(st);
  }
  function setState(patch, push) {
    Object.assign(state, patch);
    normalize();
    var url = location.pathname + serialize(state);
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
    render();
  }
  function normalize() {
    var d = defaults();
    if (!state.model) state.model = d.model;
    if (!state.seq) state.seq = defaultSeq(state.model);
  }

  // ---------- row selection ----------
  // Every filter is a property of the job, so selections are job masks (Uint8Array(NJ));
  // `pointsOf` turns a mask into the drawable points, in table order.
  // jobs inside the time window: pinned run, as-of run, date range
  function timeJobs(st) {
    var out = new Uint8Array(NJ);
    var runCode = st.run ? code('run_id', st.run) : -2;
    var asofDate = st.asof && runById[st.asof] ? runById[st.asof].date : null;
    var rd = J.run_date;
    for (var j = 0; j < NJ; j++) {
      if (runCode !== -2 && J.run_id.codes[j] !== runCode) continue;
      var date = rd.dict[rd.codes[j]];
      if (asofDate && date > asofDate) continue;
      if (st.from && day(date) < st.from) continue;
      if (st.to && day(date) > st.to) continue;
      out[j] = 1;
    }
    return out;
  }
  function facetOk(st, j, skip) {
    if (skip !== 'prec' && st.prec.length && st.prec.indexOf(js('precision', j)) < 0) return false;
    if (skip !== 'sku' && st.sku.length && st.sku.indexOf(js('sku', j)) < 0) return false;
    if (skip !== 'fw' && st.fw.length && st.fw.indexOf(js('framework', j)) < 0) return false;
    if (st.spec !== 'all') {
      var sp = has('spec_decoding') && js('spec_decoding', j) !== null;
      if ((st.spec === 'yes') !== sp) return false;
    }
    if (st.disagg !== 'all' && has('disaggregated')) {
      if ((st.disagg === 'yes') !== (jn('disaggregated', j) === 1)) return false;
    }
    return true;
  }
  function modelSeqJobs(st) {
    var mc = code('model', st.model), sc = SEQKEYS.indexOf(st.seq);
    var mask = timeJobs(st), mcodes = J.model.codes;
    for (var j = 0; j < NJ; j++) if (mcodes[j] !== mc || JSEQ[j] !== sc) mask[j] = 0;
    return mask;
  }
  function isValid(i) { return VALID[i] === 1; }
  function pointsOf(mask, st) {
    var out = [], hide = (st || state).quality === 'hide' && QF;
    for (var i = 0; i < N; i++) if (mask[JOB[i]] && VALID[i] && !(hide && QF[i] === 1)) out.push(i);
    return out;
  }
  // "latest per config": each curve (configuration × scenario) is drawn from the run publish
  // publishes it from (D.curves, decided by ixci.results.curves: the densest recent complete sweep,
  // unless the recipe changed), so a narrower newer run never replaces a denser curve. When that
  // run is outside the selected time window (as-of, date range) or the tree predates D.curves,
  // the same rule runs here over the runs in the window: oldest → newest, a run takes over when
  // its valid concurrencies cover the current curve's (no recipe knowledge here).
  var CURVES = D.curves || {};
  var SCEN = J.scenario || null;
  function curveKey(j) { return J.config_id.codes[j] * 4096 + (SCEN ? SCEN.codes[j] + 1 : JSEQ[j]); }
  function publishedRun(j) {
    var c = CURVES[js('config_id', j)];
    var r = c && SCEN ? c[js('scenario', j)] : null;
    return r === undefined || r === null ? -1 : code('run_id', r);
  }
  function latestOnly(mask) {
    var groups = {}, run = J.run_id.codes, j;
    for (j = 0; j < NJ; j++) {
      if (!mask[j] || !JVALID[j]) continue;
      var G = groups[curveKey(j)] || (groups[curveKey(j)] = { pub: publishedRun(j), runs: {} });
      (G.runs[run[j]] || (G.runs[run[j]] = { date: js('run_date', j), jobs: [] })).jobs.push(j);
    }
    var chosen = {}, todo = [];
    Object.keys(groups).forEach(function (g) {
      var G = groups[g], ids = Object.keys(G.runs);
      if (G.runs[G.pub]) chosen[g] = G.pub;
      else if (ids.length === 1) chosen[g] = +ids[0];
      else todo.push(g);
    });
    if (todo.length) densest(groups, todo, mask, chosen);
    var out = new Uint8Array(NJ);
    for (j = 0; j < NJ; j++) out[j] = mask[j] && chosen[curveKey(j)] === run[j] ? 1 : 0;
    return out;
  }
  // ixci.results.curves.choose without the recipe: needs the points, so it runs only for the curves
  // that have several runs in the window and no published run among them
  function densest(groups, todo, mask, chosen) {
    var cov = {}, i, run = J.run_id.codes;
    var wanted = {};
    todo.forEach(function (g) { wanted[g] = 1; });
    for (i = 0; i < N; i++) {
      var j = JOB[i];
      if (!mask[j] || !VALID[i] || !wanted[curveKey(j)]) continue;
      var key = curveKey(j) + ':' + run[j];
      (cov[key] || (cov[key] = {}))[C.concurrency[i]] = 1;
    }
    todo.forEach(function (g) {
      var runs = Object.keys(groups[g].runs).map(function (r) { return [+r, groups[g].runs[r].date]; });
      runs.sort(function (a, b) { return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] - b[0]; });
      var cur = null, curCov = {};
      runs.forEach(function (x) {
        var c = cov[g + ':' + x[0]] || {};
        if (cur === null || Object.keys(curCov).every(function (k) { return c[k]; })) { cur = x[0]; curCov = c; }
      });
      chosen[g] = cur;
    });
  }
  function selectJobs(st) {
    var mask = modelSeqJobs(st);
    for (var j = 0; j < NJ; j++) if (mask[j] && !facetOk(st, j)) mask[j] = 0;
    return st.runs === 'latest' && !st.run ? latestOnly(mask) : mask;
  }
  function selectRows(st) { return pointsOf(selectJobs(st), st); }

  // ---------- metrics ----------
  // a metric's 95 % interval ends (docs/repeats.md), when the table has them: m.lo(i), m.hi(i)
  function withBand(m) {
    var lo = m.name + '_lo', hi = m.name + '_hi';
    if (has(lo) && has(hi)) {
      m.lo = function (i) { return C[lo][i]; };
      m.hi = function (i) { return C[hi][i]; };
    }
    return m;
  }
  function metricDef(key, st) { return withBand(metricDef0(key, st)); }
  function metricDef0(key, st) {
    var out = st.tokens === 'output';
    if (key === 'interactivity') {
      return { key: key, name: 'interactivity_median', title: 'Interactivity (median tok/s per user)',
        unit: 'tok/s/user', dir: 1, get: function (i) { return C.interactivity_median[i]; } };
    }
    if (key === 'e2el') {
      return { key: key, name: 'e2el_median_s', title: 'End-to-end latency (median, s)', unit: 's', dir: -1,
        get: function (i) { return has('e2el_median_s') ? C.e2el_median_s[i] : null; } };
    }
    if (key === 'tput') {
      var cname = out ? 'output_tput_per_gpu' : 'tput_per_gpu';
      return { key: key, name: cname, unit: 'tok/s/GPU', dir: 1,
        title: (out ? 'Output tokens' : 'Tokens (input + output)') + ' per second per GPU',
        get: function (i) { return has(cname) ? C[cname][i] : null; } };
    }
    if (key === 'cost') return costDef(st, out);
    if (key === 'e2eint') {
      return { key: key, name: 'e2e_norm_interactivity_p90', unit: 'tok/s/user', dir: 1,
        title: 'E2E-normalized interactivity: 1 / P90(E2E ÷ output tokens), tok/s/user',
        get: function (i) { return n('e2e_norm_interactivity_p90', i); } };
    }
    if (key === 'tokint') {
      return { key: key, name: 'interactivity_per_token_p10', unit: 'tok/s/user', dir: 1,
        title: 'Per-token interactivity: p10 of 1 / TPOT, tok/s/user',
        get: function (i) { return isSession(i) ? n('interactivity_per_token_p10', i) : null; } };
    }
    if (key === 'otput') {
      return { key: key, name: 'output_tput_per_gpu', unit: 'tok/s/GPU', dir: 1,
        title: 'Output tokens per second per GPU',
        get: function (i) { return isSession(i) ? n('output_tput_per_gpu', i) : null; } };
    }
    if (key === 'roofline') {
      return { key: key, name: 'roofline_fraction', unit: '% of roofline', dir: 1,
        title: 'Achieved share of the physical limit (% of the roofline bound)',
        get: function (i) { var f = has('roofline_fraction') ? n('roofline_fraction', i) : null; return f === null ? null : 100 * f; } };
    }
    if (key === 'energy') {
      var en = out ? 'joules_per_output_token' : 'joules_per_total_token';
      return { key: key, name: en, unit: 'J/token', dir: -1, log: true,
        title: 'GPU energy per ' + (out ? 'output' : 'input + output') + ' token (J)',
        get: function (i) { return has(en) && n('power_valid', i) !== 0 ? C[en][i] : null; } };
    }
    var mwName = out ? 'output_tokens_per_s_per_mw' : 'tokens_per_s_per_mw';
    return { key: 'mw', name: mwName, unit: 'tok/s/MW', dir: 1,
      title: (out ? 'Output tokens' : 'Tokens') + ' per second per MW of all-in facility power',
      get: function (i) {
        var v = has('tokens_per_s_per_mw') ? C.tokens_per_s_per_mw[i] : null;
        if (v === null || !out) return v;
        return v * C.output_tput_per_gpu[i] / C.tput_per_gpu[i];
      } };
  }
  function costDef(st, out) {
    var tier = st.tier;
    var col = (out ? 'usd_per_output_mtok_' : 'usd_per_mtok_') + tier;
    var tput = out ? 'output_tput_per_gpu' : 'tput_per_gpu';
    return { key: 'cost', name: col, unit: 'USD/Mtok', dir: -1, log: true, price: true,
      title: 'Cost per million ' + (out ? 'output' : 'input + output') + ' tokens (USD, ' + tier + ' prices)',
      get: function (i) {
        var over = st.price[s('sku', i)];
        if (over) { var t = C[tput][i]; return t > 0 ? over / (t * 3600 / 1e6) : null; }
        return has(col) ? C[col][i] : null;
      },
      priceOf: function (i) {
        var sku = s('sku', i);
        if (st.price[sku]) return st.price[sku];
        var p = D.prices[tier];
        return p && p[sku] !== undefined ? p[sku] : null;
      } };
  }

  // ---------- Pareto fronts ----------
  // pts: [{x, y, i}], higher dir*x and dir*y are better; returns the front sorted by x
  function paretoFront(pts, xdir, ydir) {
    var sorted = pts.slice().sort(function (a, b) {
      return (b.x * xdir - a.x * xdir) || (b.y * ydir - a.y * ydir);
    });
    var best = -Infinity, front = [];
    sorted.forEach(function (p) {
      if (p.y * ydir > best) { best = p.y * ydir; front.push(p); }
    });
    return front.sort(function (a, b) { return a.x - b.x; });
  }
  // the metric's interval at x, interpolated like the value between the two front points
  // that bracket x; null unless both have one
  function interpolateBand(front, x, m) {
    if (!m.lo) return null;
    for (var k = 0; k < front.length; k++) {
      var a = front[k], b = front[k + 1] || a;
      if (!(a.x <= x && x <= b.x)) continue;
      var ends = [a.i, b.i].map(function (i) { return [m.lo(i), m.hi(i)]; });
      if (ends.some(function (e) { return e[0] === null || e[1] === null || e[0] === undefined || e[1] === undefined; })) return null;
      var f = b.x === a.x ? 0 : (x - a.x) / (b.x - a.x);
      return [ends[0][0] + (ends[1][0] - ends[0][0]) * f, ends[0][1] + (ends[1][1] - ends[0][1]) * f];
    }
    return null;
  }
  function interpolate(front, x) {
    for (var k = 0; k + 1 < front.length; k++) {
      var a = front[k], b = front[k + 1];
      if (a.x <= x && x <= b.x) return b.x === a.x ? Math.max(a.y, b.y) : a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x);
    }
    if (front.length && front[0].x === x) return front[0].y;
    return null;
  }

  // The points of the current selection, grouped by sku · framework, with fronts. A group is
  // columnar: {name, color, n, idx (row index), x, y (typed arrays), onFront (0/1 per point),
  // front: [{x, y, i}] sorted by x}. `total` counts the points in all groups.
  function chartData(st, xKey, yKey) {
    var mx = metricDef(xKey, st), my = metricDef(yKey, st);
    var rows = selectRows(st), m = rows.length;
    var xs = new Float64Array(m), ys = new Float64Array(m), gid = new Int32Array(m);
    var jgid = new Int32Array(NJ).fill(-1), names = [], gOf = {}, kept = 0, nJobs = 0, r;
    for (r = 0; r < m; r++) {
      var i = rows[r], x = mx.get(i), y = my.get(i);
      if (!(x > 0) || !(y > 0) || !isFinite(x) || !isFinite(y)) continue;
      var j = JOB[i], g = jgid[j];
      if (g < 0) {
        g = gOf[JGROUP[j]];
        if (g === undefined) { g = gOf[JGROUP[j]] = names.length; names.push(JGROUP[j]); }
        jgid[j] = g;
        nJobs++;
      }
      rows[kept] = i; xs[kept] = x; ys[kept] = y; gid[kept] = g; kept++;
    }
    var count = new Int32Array(names.length);
    for (r = 0; r < kept; r++) count[gid[r]]++;
    var groups = names.map(function (name, k) {
      var c = count[k];
      return { name: name, color: GROUPS[name], n: 0, idx: new Int32Array(c), x: new Float64Array(c),
        y: new Float64Array(c), onFront: new Uint8Array(c), front: null };
    });
    for (r = 0; r < kept; r++) {
      var G = groups[gid[r]];
      G.idx[G.n] = rows[r]; G.x[G.n] = xs[r]; G.y[G.n] = ys[r]; G.n++;
    }
    groups.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
    groups.forEach(function (G) { G.front = groupFront(G, mx.dir, my.dir); });
    var lines = nJobs <= LINE_MAX_JOBS && kept <= LINE_MAX_POINTS ? configLines(groups) : null;
    return { mx: mx, my: my, groups: groups, total: kept, lines: lines };
  }
  // Each configuration's own curve: its points joined in concurrency order, one line per job
  // (a job is one configuration × scenario × run). Drawn only when the view shows a modest
  // number of jobs, so a 100,000-point cloud pays nothing for it before its first draw.
  // Returns [{group, config, name, style (index within its group), first (first line of its
  // configuration), idx, x, y}] in group order, configurations by name within a group.
  var LINE_MAX_JOBS = 60, LINE_MAX_POINTS = 20000;
  function configLines(groups) {
    var out = [];
    groups.forEach(function (G) {
      var byJob = {}, jobs = [], k;
      for (k = 0; k < G.n; k++) {
        var j = JOB[G.idx[k]];
        if (!byJob[j]) { byJob[j] = []; jobs.push(j); }
        byJob[j].push(k);
      }
      var styleOf = {}, cfgs = [];
      jobs.forEach(function (j) {
        var c = js('config_id', j);
        if (styleOf[c] === undefined) { styleOf[c] = -1; cfgs.push({ c: c, name: configName(j) }); }
      });
      cfgs.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
      cfgs.forEach(function (x, s2) { styleOf[x.c] = s2; });
      var seen = {};
      jobs.sort(function (a, b) { return styleOf[js('config_id', a)] - styleOf[js('config_id', b)]; });
      jobs.forEach(function (j) {
        var ks = byJob[j].sort(function (a, b) { return n('concurrency', G.idx[a]) - n('concurrency', G.idx[b]); });
        var c = js('config_id', j);
        out.push({ group: G, config: c, name: configName(j), style: styleOf[c], first: !seen[c],
          idx: ks.map(function (q) { return G.idx[q]; }), x: ks.map(function (q) { return G.x[q]; }),
          y: ks.map(function (q) { return G.y[q]; }) });
        seen[c] = 1;
      });
    });
    return out;
  }
  // a configuration's display name: the plan's job name, else its deployment in words
  function configName(j) {
    return js('job_name', j) || [js('sku', j), js('framework', j), js('precision', j), jobParallelism(j)].join(' · ');
  }
  // The Pareto front of a columnar group: the same rule and tie order as paretoFront, but
  // only the candidates are sorted. A point can be on the front only if no point in a
  // later x bucket (strictly better x) has a strictly better y, so one pass over 256
  // buckets drops the dominated bulk exactly.
  function groupFront(G, xdir, ydir) {
    var X = G.x, Y = G.y, B = 256, k, lo = Infinity, hi = -Infinity;
    for (k = 0; k < G.n; k++) { var v = X[k] * xdir; if (v < lo) lo = v; if (v > hi) hi = v; }
    var w = (hi - lo) / B || 1, bucket = new Int32Array(G.n), best = new Float64Array(B + 1).fill(-Infinity);
    for (k = 0; k < G.n; k++) {
      var b = Math.min(B - 1, Math.floor((X[k] * xdir - lo) / w));
      bucket[k] = b;
      if (Y[k] * ydir > best[b]) best[b] = Y[k] * ydir;
    }
    for (b = B - 1; b >= 0; b--) best[b] = Math.max(best[b], best[b + 1]);  // best of buckets >= b
    var ord = [];
    for (k = 0; k < G.n; k++) if (!(Y[k] * ydir < best[bucket[k] + 1])) ord.push(k);
    ord.sort(function (a, c) { return (X[c] * xdir - X[a] * xdir) || (Y[c] * ydir - Y[a] * ydir); });
    var top = -Infinity, front = [];
    for (k = 0; k < ord.length; k++) {
      var q = ord[k];
      if (Y[q] * ydir > top) {
        top = Y[q] * ydir;
        G.onFront[q] = 1;
        front.push({ x: X[q], y: Y[q], i: G.idx[q], front: true });
      }
    }
    return front.sort(function (a, c) { return a.x - c.x; });
  }

  // ---------- hover text ----------
  function parallelism(i) { return jobParallelism(JOB[i]); }
  function jobParallelism(j) {
    var tp = jn('tp', j), ep = jn('ep', j), pp = jn('pp', j);
    var bits = ['TP' + tp];
    if (ep > 1) bits.push('EP' + ep);
    if (pp > 1) bits.push('PP' + pp);
    if (jn('dp_attention', j) === 1) bits.push('DP-attention');
    var text = bits.join(' ');
    if (jn('disaggregated', j) === 1) {
      text = 'disaggregated: prefill ' + (jn('prefill_gpus', j) || '?') + ' GPUs / decode ' +
        (jn('decode_gpus', j) || '?') + ' GPUs · ' + text;
    }
    var sp = js('spec_decoding', j);
    if (sp) text += ' · spec. decoding: ' + sp;
    return text;
  }

  // ---------- charts view ----------
  var current = { data: null, front: false, shown: 0, mx: null, my: null };
  var JSYM = [];
  for (jj = 0; jj < NJ; jj++) {
    JSYM.push(jn('disaggregated', jj) === 1 ? 'diamond' : js('spec_decoding', jj) ? 'triangle-up' : 'circle');
  }
  // one symbol for the trace when all its points share it (the usual case): no per-point array
  function symbolOf(i) { return qualityFailed(i) ? JSYM[JOB[i]] + '-open' : JSYM[JOB[i]]; }
  function symbols(idx) {
    var first = idx.length ? symbolOf(idx[0]) : 'circle', k;
    for (k = 1; k < idx.length; k++) if (symbolOf(idx[k]) !== first) break;
    if (k >= idx.length) return first;
    var out = new Array(idx.length);
    for (k = 0; k < idx.length; k++) out[k] = symbolOf(idx[k]);
    return out;
  }
  // software GL (no GPU) rasterises every marker pixel: smaller markers for big clouds
  var markerSize = 7;
  function tracesFor(data, st) {
    var traces = [];
    var shown = st.front ? data.groups.reduce(function (a, g) { return a + g.front.length; }, 0) : data.total;
    markerSize = shown > 30000 ? 2 : shown > 5000 ? 5 : 7;
    data.groups.forEach(function (g) {
      if (!st.front) {
        traces.push(withErrors(scatter(g, g.x, g.y, g.idx, 'markers', { kind: 'points' }, true), data, g.idx));
        var front = scatter(g, xyOf(g.front, 'x'), xyOf(g.front, 'y'), null, 'lines', { kind: 'front' }, false);
        // under configuration lines the front is a wide pale band, so a configuration that
        // forms the front stays visible on it
        if (data.lines) { front.opacity = 0.3; front.line.width = 8; }
        traces.push(front);
        (data.lines || []).forEach(function (l) { if (l.group === g) traces.push(configTrace(l)); });
      } else {
        traces.push(withErrors(scatter(g, xyOf(g.front, 'x'), xyOf(g.front, 'y'), xyOf(g.front, 'i'), 'lines+markers', { kind: 'points' }, true), data, xyOf(g.front, 'i')));
      }
      var bound = data.mx.key === 'interactivity' && data.my.key === 'tput' ? roofline(g, st) : null;
      if (bound) traces.push(bound);
    });
    return { traces: traces, shown: shown };
  }
  // The physical limit of a group (docs/roofline.md): per concurrency, the upper bound of
  // throughput per GPU at the upper bound of per-user speed (1 / the shortest decode step),
  // highest over the group's configurations. Output-token bounds become input + output ones
  // by the request's (ISL + OSL) / OSL. None when no point of the group records a roofline.
  function roofline(g, st) {
    if (!has('roofline_output_tput_per_gpu') || !has('roofline_interactivity')) return null;
    var best = {};
    for (var k = 0; k < g.n; k++) {
      var i = g.idx[k], y = n('roofline_output_tput_per_gpu', i), x = n('roofline_interactivity', i);
      var c = n('concurrency', i), osl = n('osl', i);
      if (!(y > 0) || !(x > 0) || c === null) continue;
      if (st.tokens !== 'output') y = y * (n('isl', i) + osl) / osl;
      if (!best[c] || y > best[c].y) best[c] = { x: x, y: y };
    }
    var pts = Object.keys(best).map(function (c) { return best[c]; });
    if (!pts.length) return null;
    pts.sort(function (a, b) { return a.x - b.x; });
    return { type: 'scatter', mode: 'lines+markers', name: g.name + ' · physical limit', legendgroup: g.name,
      showlegend: true, meta: { kind: 'roofline' }, x: xyOf(pts, 'x'), y: xyOf(pts, 'y'), hoverinfo: 'skip',
      line: { color: g.color, width: 1.5, dash: 'dot' }, marker: { color: g.color, size: 5, symbol: 'line-ew-open' } };
  }
  // 95 % intervals of repeated points as error bars (x: interactivity, y: the metric); a trace
  // none of whose points has an interval gets none. NaN leaves a point without a bar.
  function withErrors(t, data, idx) {
    [['error_x', data.mx, t.x], ['error_y', data.my, t.y]].forEach(function (e) {
      var m = e[1], v = e[2];
      if (!m.lo) return;
      var plus = [], minus = [], any = false;
      for (var k = 0; k < idx.length; k++) {
        var lo = m.lo(idx[k]), hi = m.hi(idx[k]);
        var ok = lo !== null && hi !== null && lo !== undefined && hi !== undefined;
        plus.push(ok ? hi - v[k] : NaN);
        minus.push(ok ? v[k] - lo : NaN);
        any = any || ok;
      }
      if (any) {
        t[e[0]] = { type: 'data', symmetric: false, array: plus, arrayminus: minus, visible: true,
          color: t.marker.color, thickness: 1.2, width: 3 };
      }
    });
    return t;
  }
  // a configuration's curve: a thin line in a dash and shade of its group's colour (the
  // Pareto front is the thick solid line); its name is a legend entry of the group
  var DASHES = ['dot', 'dash', 'dashdot', 'longdash', 'longdashdot'];
  var SHADES = [0, -0.45, 0.4, -0.25, 0.2];
  function configTrace(l) {
    var color = shade(l.group.color, SHADES[l.style % SHADES.length]);
    return { type: 'scatter', mode: 'lines', name: l.name, legendgroup: l.group.name, showlegend: l.first,
      meta: { kind: 'config', config: l.config }, x: l.x, y: l.y, customdata: l.idx, hoverinfo: 'none',
      line: { color: color, width: 1.5, dash: DASHES[l.style % DASHES.length] } };
  }
  // #rrggbb mixed toward black (f < 0) or white (f > 0) by |f|
  function shade(hex, f) {
    var v = parseInt(hex.slice(1), 16), out = '#';
    [16, 8, 0].forEach(function (sh) {
      var c = (v >> sh) & 255;
      c = Math.round(f < 0 ? c * (1 + f) : c + (255 - c) * f);
      out += (c < 16 ? '0' : '') + c.toString(16);
    });
    return out;
  }
  function xyOf(pts, key) { return pts.map(function (p) { return p[key]; }); }
  // hover labels are drawn by the page (showTip) from the row index in customdata: building
  // a label per point up front costs seconds at 100,000 points. Only the point clouds are
  // WebGL; the fronts (a few hundred points) are SVG, drawn above the cloud, which spares
  // software GL the line shaders (~100 ms of its first frame here).
  function scatter(g, x, y, idx, mode, meta, legend) {
    var t = {
      type: mode === 'markers' ? 'scattergl' : 'scatter', mode: mode, name: g.name, legendgroup: g.name, showlegend: legend,
      meta: meta, x: x, y: y, line: { color: g.color, width: 2 },
      marker: { color: g.color, size: markerSize, opacity: meta.kind === 'points' && mode === 'markers' ? 0.55 : 1,
        symbol: idx ? symbols(idx) : 'circle' }
    };
    if (idx) { t.customdata = idx; t.hoverinfo = 'none'; } else t.hoverinfo = 'skip';
    return t;
  }
  // each shown point once: fn(row, x, y, onFront), in trace order
  function eachShown(fn) {
    if (!current.data) return;
    current.data.groups.forEach(function (g) {
      if (current.front) { g.front.forEach(function (p) { fn(p.i, p.x, p.y, true); }); return; }
      for (var k = 0; k < g.n; k++) fn(g.idx[k], g.x[k], g.y[k], g.onFront[k] === 1);
    });
  }
  function showTip(ev) {
    var p = ev.points && ev.points[0];
    var tip = el('tip');
    if (!p || typeof p.customdata !== 'number') { tip.hidden = true; return; }
    var i = p.customdata, m = current;
    tip.innerHTML = '<b>' + esc(s('sku', i) + ' · ' + s('framework', i)) + '</b> ' + esc(s('precision', i)) +
      '<br>' + esc(configName(JOB[i])) + '<br>' + esc(parallelism(i)) + '<br>' + esc(n('gpus', i)) + ' GPUs · concurrency ' + esc(n('concurrency', i)) +
      '<br>' + tipValues(p, m) +
      '<br>image: ' + esc(s('image', i)) + '<br>run ' + esc(s('run_id', i)) + ' · ' + esc(day(s('run_date', i))) +
      (qualityFailed(i) ? '<br><b class="qf">quality gate failed</b> (its eval suite scored below the gate)' : '') +
      '<br><span class="hint">click for details</span>';
    tip.style.borderColor = GROUPS[s('sku', i) + ' · ' + s('framework', i)] || '#999';
    var e = ev.event || {}, box = el('chart').getBoundingClientRect();
    var x = e.clientX !== undefined ? e.clientX : box.left + p.xaxis._offset + p.xaxis.l2p(p.x);
    var y = e.clientY !== undefined ? e.clientY : box.top + p.yaxis._offset + p.yaxis.l2p(p.y);
    tip.hidden = false;
    var w = tip.offsetWidth, left = x + 14 + w > window.innerWidth ? x - 14 - w : x + 14;
    tip.style.left = (left + window.scrollX) + 'px';
    tip.style.top = (y + 10 + window.scrollY) + 'px';
  }
  function tipValues(p, m) {
    var meta = p.data && p.data.meta;
    if (meta && meta.kind === 'ttft') {
      return esc(meta.side) + ' turns of ' + esc(p.x) + ' prompt tokens: median TTFT ' + fmt(p.y) + ' s over ' +
        esc(p.data.text[p.pointNumber]) + ' turns';
    }
    if (meta && meta.panel === 'per-token') return 'per-token interactivity (p10): ' + fmt(p.x) + ' tok/s/user · ' + esc(m.my.unit) + ': ' + fmt(p.y);
    if (meta && meta.panel === 'e2e') return 'E2E-normalized interactivity (P90): ' + fmt(p.x) + ' tok/s/user · ' + esc(m.my.unit) + ': ' + fmt(p.y);
    return esc(m.mx.unit) + ': ' + fmt(p.x) + ' · ' + esc(m.my.unit) + ': ' + fmt(p.y);
  }
  function layoutFor(data, chart) {
    return {
      margin: { l: 70, r: 20, t: 10, b: 60 }, hovermode: 'closest', dragmode: 'zoom',
      xaxis: { title: { text: data.mx.title }, type: data.mx.log ? 'log' : 'linear', zeroline: false,
        gridcolor: '#e6e9ee' },
      yaxis: { title: { text: data.my.title }, type: data.my.log ? 'log' : 'linear', zeroline: false,
        gridcolor: '#e6e9ee', rangemode: data.my.log ? 'normal' : 'tozero', dtick: data.my.log ? 'D2' : undefined },
      // the legend sits outside the plot so it never hides points
      legend: { orientation: 'v', x: 1.01, xanchor: 'left', y: 1, itemsizing: 'constant',
        title: { text: data.lines ? 'GPU · framework, configurations' : 'GPU · framework' } },
      font: { family: 'system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif', size: 13 },
      plot_bgcolor: '#fff', paper_bgcolor: '#fff'
    };
  }
  var PLOT_CONFIG = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'],
    toImageButtonOptions: { format: 'png', filename: 'ixci-chart' } };

  function renderCharts() {
    var chart = CHARTS.filter(function (c) { return c.id === state.chart; })[0];
    renderTabs(chart);
    el('cost-controls').hidden = chart.y !== 'cost';
    el('prices').hidden = chart.y !== 'cost';
    if (chart.y === 'cost') renderPrices();
    el('c-front').checked = state.front;
    el('quality-control').hidden = !QF;
    el('c-quality').checked = state.quality === 'hide';
    el('c-tokens').value = state.tokens;
    // the agentic charts fix their tokens (output) and the context chart has no front or CSV
    var agentic = chart.id === 'agentic' || chart.id === 'ttftctx';
    el('c-tokens').hidden = el('c-tokens-label').hidden = agentic;
    el('c-front-label').hidden = el('csv').hidden = chart.id === 'ttftctx';
    if (chart.id === 'agentic') { renderAgentic(chart); return; }
    if (chart.id === 'ttftctx') { renderTtftContext(chart); return; }
    var data = chartData(state, chart.x, chart.y);
    var tr = tracesFor(data, state);
    current = { data: data, front: state.front, shown: tr.shown, mx: data.mx, my: data.my, chart: chart };
    el('chart-title').textContent = chart.label + ': ' + data.my.title + ' against ' + data.mx.title +
      ', ' + tr.shown + ' points';
    var nFront = data.groups.reduce(function (a, g) { return a + g.front.length; }, 0);
    el('status').textContent = state.front
      ? 'Showing ' + thousands(tr.shown) + ' Pareto-front points of ' + thousands(data.total) + ' in ' + data.groups.length + ' GPU · framework groups. ' + runsNote()
      : 'Showing ' + thousands(data.total) + ' points in ' + data.groups.length + ' GPU · framework groups, ' + thousands(nFront) + ' on their Pareto fronts (lines). ' + runsNote();
    el('status').textContent += qualityNote(data);
    el('legend-note').textContent = legendNote(data) + (tr.traces.some(function (t) { return t.meta.kind === 'roofline'; })
      ? ' Dotted line with ticks: the physical limit (roofline) of each concurrency — the most any engine could do ' +
        'on this GPU, model and precision (docs/roofline.md); click a point for its share of it.' : '');
    draw(tr.traces, layoutFor(data, chart), tr.shown, 'No measured points match these filters.', chart.id);
  }
  // Plotly.react on the main chart once plotly.js is there; `shown` 0: the empty message instead
  function draw(traces, layout, shown, empty, id) {
    var gd = el('chart');
    gd.setAttribute('data-chart', id);
    if (!shown) {
      plot(function () {});  // drops a draw still waiting for plotly
      if (gd.data && window.Plotly) Plotly.purge(gd);
      gd.innerHTML = '<p class="empty">' + empty + '</p>';
      gd.setAttribute('data-points', '0');
      gd.data = [];
      return;
    }
    if (!window.Plotly && !(gd.data && gd.data.length)) gd.innerHTML = '<p class="empty">Loading the chart library…</p>';
    plot(function () {
      if (!gd.data || !gd.data.length) gd.innerHTML = '';
      withoutMsaa(gd, function () { return Plotly.react(gd, traces, layout, PLOT_CONFIG); }).then(function () {
        if (!TIMING.firstChart) { TIMING.firstChart = performance.now(); gd.setAttribute('data-ready', '1'); }
        gd.setAttribute('data-points', String(shown));
      });
      if (!gd._ixciClick) {
        gd._ixciClick = true;
        gd.on('plotly_click', function (ev) {
          var p = ev.points && ev.points[0];
          if (p && typeof p.customdata === 'number') loadExtra(function () { showDetail(p.customdata); });
        });
        gd.on('plotly_hover', showTip);
        gd.on('plotly_unhover', function () { el('tip').hidden = true; });
      }
    });
  }
  // ---------- agentic view (multi-turn points; docs/agentic.md) ----------
  function isSession(i) { return AGENTIC && C.e2e_norm_interactivity_p90[i] !== null && C.e2e_norm_interactivity_p90[i] !== undefined; }
  // no multi-turn point in the selection: say so, and link where there are some — this model's
  // other input/output lengths (a sessions scenario's lengths are nominal, so they are rarely
  // the default), else the models that have some
  function noSessionsMessage() {
    var mc = code('model', state.model), mask = timeJobs(state), here = {}, models = {};
    for (var i = 0; i < N; i++) {
      var j = JOB[i];
      if (!mask[j] || !VALID[i] || !isSession(i)) continue;
      if (J.model.codes[j] === mc) here[SEQKEYS[JSEQ[j]]] = 1;
      else models[js('model', j) + '|' + SEQKEYS[JSEQ[j]]] = 1;
    }
    var links = Object.keys(here).sort().map(function (k) {
      return '<a data-testid="agentic-seq" href="' + esc(hrefFor({ seq: k })) + '">' + esc(seqLabel(k)) + '</a>';
    });
    if (links.length) return 'No multi-turn (sessions) points match these filters. This model has some at ' + links.join(', ') + '.';
    links = Object.keys(models).sort().map(function (k) {
      var m = k.split('|');
      return '<a data-testid="agentic-seq" href="' + esc(hrefFor({ model: m[0], seq: m[1], config: '' })) + '">' +
        esc(m[0] + ', ' + seqLabel(m[1])) + '</a>';
    });
    return 'No multi-turn (sessions) points match these filters.' + (links.length ? ' Some were measured for ' + links.join(', ') + '.' : '');
  }
  // Output tokens/s per GPU against E2E-normalized interactivity (the incumbent's definition),
  // beside the same points against ixci's per-token interactivity; Pareto fronts per GPU · framework
  function renderAgentic(chart) {
    var left = chartData(state, chart.x, chart.y), right = chartData(state, chart.x2, chart.y);
    var a = tracesFor(left, state), b = tracesFor(right, state);
    b.traces.forEach(function (t) { t.xaxis = 'x2'; t.showlegend = false; t.meta = Object.assign({}, t.meta, { panel: 'per-token' }); });
    a.traces.forEach(function (t) { t.meta = Object.assign({}, t.meta, { panel: 'e2e' }); });
    current = { data: left, front: state.front, shown: a.shown, mx: left.mx, my: left.my, chart: chart };
    var nFront = left.groups.reduce(function (x, g) { return x + g.front.length; }, 0);
    el('chart-title').textContent = chart.label + ': ' + left.my.title + ' against ' + left.mx.title + ' (left) and ' +
      right.mx.title + ' (right), ' + a.shown + ' points';
    el('status').textContent = 'Showing ' + thousands(left.total) + ' multi-turn points in ' + left.groups.length +
      ' GPU · framework groups, ' + thousands(nFront) + ' on their Pareto fronts (lines). ' + runsNote();
    el('legend-note').textContent = 'Left: E2E-normalized interactivity as InferenceX defines it, 1 / P90 over requests of ' +
      '(E2E latency ÷ output tokens): prefill and queueing are charged to every output token. Right: the same points at ' +
      'ixci\'s per-token interactivity, the slow tail (p10) of 1 / TPOT: decode only. ' + legendNote(left) +
      ' docs/agentic.md explains both.';
    var layout = layoutFor(left, chart);
    layout.xaxis.domain = [0, 0.47];
    layout.xaxis.title.text = 'E2E-normalized interactivity, P90 (tok/s/user)';
    layout.xaxis2 = { title: { text: 'Per-token interactivity, p10 of 1/TPOT (tok/s/user)' }, domain: [0.53, 1],
      anchor: 'y', zeroline: false, gridcolor: '#e6e9ee' };
    layout.annotations = [['InferenceX definition', 0.235], ['ixci definition', 0.765]].map(function (t) {
      return { text: t[0], xref: 'paper', yref: 'paper', x: t[1], y: 1, yanchor: 'bottom', showarrow: false,
        font: { size: 12, color: '#5b6674' } };
    });
    layout.margin.t = 24;
    draw(a.traces.concat(b.traces), layout, a.shown, noSessionsMessage(), chart.id);
  }
  // [[bucket, cold median s, cold n, warm median s, warm n], ...] of point i, or null
  function profile(i) { return has('ttft_by_context') ? C.ttft_by_context[i] : null; }
  function bucketLow(label) { return parseInt(label, 10) || 0; }
  // Median TTFT per prompt-length bucket, first (cold) turns and later (warm) turns apart: one
  // line per point and side, gaps between points; one legend entry per GPU · framework and side
  function renderTtftContext(chart) {
    var rows = selectRows(state).filter(function (i) { return isSession(i) && profile(i); });
    rows.sort(function (a, b) { return n('concurrency', a) - n('concurrency', b); });
    var byGroup = {}, buckets = {}, shown = 0, traces = [];
    rows.forEach(function (i) { (byGroup[JGROUP[JOB[i]]] = byGroup[JGROUP[JOB[i]]] || []).push(i); });
    Object.keys(byGroup).sort().forEach(function (g) {
      [['cold', 1, 'solid', 'circle'], ['warm', 3, 'dash', 'circle-open']].forEach(function (side) {
        var x = [], y = [], cd = [], counts = [];
        byGroup[g].forEach(function (i) {
          profile(i).forEach(function (b) {
            var v = b[side[1]];
            if (!(v > 0)) return;
            buckets[b[0]] = 1;
            x.push(b[0]); y.push(v); cd.push(i); counts.push(b[side[1] + 1]);
            shown++;
          });
          x.push(null); y.push(null); cd.push(null); counts.push(null);  // a gap between points
        });
        traces.push({ type: 'scatter', mode: 'lines+markers', name: g + ' · ' + side[0] + ' turns', legendgroup: g,
          meta: { kind: 'ttft', side: side[0] }, x: x, y: y, customdata: cd, text: counts, hoverinfo: 'none',
          line: { color: GROUPS[g], width: 2, dash: side[2] }, marker: { color: GROUPS[g], size: 8, symbol: side[3] } });
      });
    });
    var order = Object.keys(buckets).sort(function (a, b) { return bucketLow(a) - bucketLow(b); });
    current = { data: null, front: false, shown: shown, chart: chart,
      mx: { unit: 'prompt tokens' }, my: { unit: 's (median TTFT)' } };
    el('chart-title').textContent = chart.label + ': median time to first token per prompt-length bucket, cold and warm turns, ' + rows.length + ' points';
    el('status').textContent = 'Showing ' + rows.length + ' multi-turn points in ' + Object.keys(byGroup).length +
      ' GPU · framework groups. ' + runsNote();
    el('legend-note').textContent = 'Solid, filled: first (cold) turns; dashed, open: later (warm) turns, whose prompt ' +
      'begins with the previous turn\'s — a warm turn below a cold one at the same prompt length is the prefix cache ' +
      '(or a KV offload tier) at work. One line per point (concurrency); hover for its count, click for details.';
    var layout = {
      margin: { l: 70, r: 20, t: 10, b: 60 }, hovermode: 'closest', dragmode: 'zoom',
      xaxis: { title: { text: 'Prompt length (tokens, bucket)' }, type: 'category', categoryorder: 'array',
        categoryarray: order, gridcolor: '#e6e9ee' },
      yaxis: { title: { text: 'TTFT, median of the bucket (s)' }, type: 'log', gridcolor: '#e6e9ee' },
      legend: { orientation: 'v', x: 1.01, xanchor: 'left', y: 1, title: { text: 'GPU · framework, turns' } },
      font: { family: 'system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif', size: 13 },
      plot_bgcolor: '#fff', paper_bgcolor: '#fff'
    };
    draw(traces, layout, shown, noSessionsMessage(), chart.id);
  }

  // WebGL without multisampling for the chart's canvases. The markers are point sprites whose
  // round edge the fragment shader already smooths, so MSAA changes no visible pixel (compared
  // on screenshots), but software GL (SwiftShader, on a machine without a GPU) pays ~0.3 s for
  // it on a first draw of 100,000 points. plotly.js has no option for it and makes its
  // context inside Plotly.react, so getContext is wrapped for that call only, and only for
  // canvases inside `gd`.
  function withoutMsaa(gd, fn) {
    var proto = HTMLCanvasElement.prototype, getContext = proto.getContext;
    proto.getContext = function (kind, attrs) {
      if (/webgl/.test(kind) && gd.contains(this)) attrs = Object.assign({}, attrs, { antialias: false });
      return getContext.call(this, kind, attrs);
    };
    try { return fn(); } finally { proto.getContext = getContext; }
  }
  // plotly.js loads async (its parse and compile overlap the page's own start-up): `plot(fn)`
  // runs fn once window.Plotly exists; a newer plot() call supersedes a waiting one
  var plotToken = 0, plotlyQueue = null;
  function plot(fn) {
    var token = ++plotToken;
    function run() { if (token === plotToken) fn(); }
    if (window.Plotly) { TIMING.plotly = TIMING.plotly || performance.now(); run(); return; }
    if (!plotlyQueue) {
      plotlyQueue = [];
      var tag = el('plotly-js');
      tag.addEventListener('load', function () {
        TIMING.plotly = performance.now();
        var q = plotlyQueue;
        plotlyQueue = [];
        q.forEach(function (f) { f(); });
      });
      tag.addEventListener('error', function () {
        el('status').textContent = 'assets/plotly.min.js could not be loaded: the charts are unavailable.';
      });
    }
    plotlyQueue.push(run);
  }
  // how many shown points failed their quality gate, or how many the toggle hides
  function qualityNote(data) {
    if (!QF) return '';
    if (state.quality === 'hide') {
      var all = selectRows(Object.assign({}, state, { quality: 'flag' })).filter(qualityFailed).length;
      return all ? ' ' + thousands(all) + ' points that failed their quality gate are hidden.' : '';
    }
    var k = 0;
    data.groups.forEach(function (g) { for (var q = 0; q < g.n; q++) if (qualityFailed(g.idx[q])) k++; });
    return k ? ' ' + thousands(k) + ' of them failed their quality gate (hollow markers).' : '';
  }
  function runsNote() {
    if (state.run) return 'Only run ' + state.run + '.';
    var base = state.runs === 'latest' ? 'Per configuration the published curve (its densest recent complete sweep)' : 'All runs';
    return base + (state.asof ? ' up to run ' + state.asof + '.' : '.');
  }
  function legendNote(data) {
    var bits = [(data.lines ? 'Wide pale lines' : 'Lines') + ': Pareto front of each GPU · framework (' +
      (data.my.dir > 0 ? 'higher' : 'lower') + ' ' + data.my.unit + ' and ' +
      (data.mx.dir > 0 ? 'higher' : 'lower') + ' ' + data.mx.unit + ' is better).'];
    if (data.lines) bits.push('Thin dotted/dashed lines: each configuration\'s points in concurrency order.');
    if (data.mx.lo || data.my.lo) bits.push('Error bars: 95 % interval over a point\'s repeats (points measured once have none).');
    bits.push('● single pool  ◆ disaggregated prefill/decode  ▲ speculative decoding' +
      (QF ? '  ○ hollow: quality gate failed' : '') + '. Click a point for details.');
    return bits.join(' ');
  }
  function renderTabs(chart) {
    var box = el('chart-tabs');
    if (!box.children.length) {
      CHARTS.forEach(function (c) {
        var b = document.createElement('button');
        b.type = 'button'; b.setAttribute('role', 'tab'); b.id = 'tab-' + c.id;
        b.setAttribute('aria-controls', 'chart'); b.dataset.testid = 'chart-tab-' + c.id;
        b.setAttribute('data-testid', 'chart-tab-' + c.id);
        b.textContent = c.label;
        b.addEventListener('click', function () { setState({ chart: c.id }); });
        b.addEventListener('keydown', tabKeys);
        box.appendChild(b);
      });
    }
    Array.prototype.forEach.call(box.children, function (b) {
      var on = b.id === 'tab-' + chart.id;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    });
  }
  function tabKeys(ev) {
    var dir = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
    if (!dir) return;
    var ids = CHARTS.map(function (c) { return c.id; });
    var k = (ids.indexOf(state.chart) + dir + ids.length) % ids.length;
    setState({ chart: ids[k] });
    el('tab-' + ids[k]).focus();
    ev.preventDefault();
  }
  function renderPrices() {
    var tierSel = el('c-tier');
    if (tierSel.options.length !== D.tiers.length) {
      tierSel.innerHTML = D.tiers.map(function (t) { return '<option value="' + esc(t) + '">' + esc(t.replace(/_/g, ' ')) + '</option>'; }).join('');
    }
    tierSel.value = state.tier;
    var skus = Object.keys(GROUPS).map(function (g) { return g.split(' · ')[0]; })
      .filter(function (v, k, a) { return a.indexOf(v) === k; }).sort();
    var tierPrices = D.prices[state.tier] || {};
    el('price-inputs').innerHTML = skus.map(function (sku) {
      var over = state.price[sku];
      var v = over || tierPrices[sku] || '';
      return '<label>' + esc(sku) + ' $<input type="number" min="0" step="0.01" data-sku="' + esc(sku) +
        '" data-testid="price-' + esc(sku) + '" value="' + esc(v) + '"' + (over ? ' class="overridden"' : '') +
        ' aria-label="' + esc(sku) + ' price in USD per GPU-hour"></label>';
    }).join('');
  }

  // " [lo – hi]" of a point's 95 % interval, '' without one
  function ci(name, i) {
    var lo = n(name + '_lo', i), hi = n(name + '_hi', i);
    return lo === null || hi === null || lo === undefined || hi === undefined ? '' : ' [' + fmt(lo) + ' – ' + fmt(hi) + ']';
  }
  function showDetail(i) {
    var box = el('detail');
    var rid = s('run_id', i), run = runById[rid];
    var rows = [
      ['GPU · framework', s('sku', i) + ' · ' + s('framework', i)],
      ['Model', s('model', i) + ' (' + s('precision', i) + ')'],
      ['Input / output', seqLabel(seqOf(i))],
      ['Parallelism', parallelism(i)], ['GPUs', n('gpus', i)], ['Concurrency', n('concurrency', i)],
      ['Interactivity', fmt(n('interactivity_median', i)) + ci('interactivity_median', i) + ' tok/s/user'],
      ['Throughput', fmt(n('tput_per_gpu', i)) + ci('tput_per_gpu', i) + ' tok/s/GPU (output ' + fmt(n('output_tput_per_gpu', i)) + ci('output_tput_per_gpu', i) +
        ') over the measured window: first measured send to last response'],
      ['Steady state', has('steady_output_tput_per_gpu') && n('steady_output_tput_per_gpu', i) !== null
        ? fmt(n('steady_output_tput_per_gpu', i)) + ' output tok/s/GPU while every slot was busy' : 'not recorded'],
      ['% of roofline', rooflineText(i)],
      ['Latency', 'median end-to-end ' + fmt(n('e2el_median_s', i)) + ci('e2el_median_s', i) + ' s · p99 TTFT ' + fmt(n('ttft_p99_s', i)) + ci('ttft_p99_s', i) + ' s'],
      ['Quality gate', qualityText(i)],
      ['Speculative decoding', specText(i)],
      ['Repeats', (n('repeats', i) || 1) + ((n('repeats', i) || 1) > 1 ? ' (intervals: 95 % Student-t over the repeats)' : ' (one sample: no interval)')],
      ['Image', (s('image', i) || '— (none recorded: a local process)') + (s('image_digest', i) ? ' @ ' + s('image_digest', i).slice(0, 19) + '…' : '')],
      ['Run', null]
    ];
    if (isSession(i)) Array.prototype.splice.apply(rows, [rows.length - 2, 0].concat(sessionRows(i)));
    var html = '<strong>Point ' + esc(s('point_id', i) || i) + '</strong><dl>';
    rows.forEach(function (r) {
      var v = r[1] === null
        ? '<a data-testid="detail-run-link" href="' + esc(hrefFor({ view: 'run', id: rid })) + '">' + esc(rid) + '</a> · ' + esc(day(s('run_date', i))) + (run && run.event ? ' (' + esc(run.event) + ')' : '')
        : esc(r[1]);
      html += '<dt>' + esc(r[0]) + '</dt><dd>' + v + '</dd>';
    });
    html += '</dl>' + serverTable(i) + '<a data-testid="detail-history-link" href="' +
      esc(hrefFor({ view: 'history', config: s('config_id', i) })) + '">History of this configuration</a>';
    box.innerHTML = html;
    box.hidden = false;
  }

  // the multi-turn metrics of a sessions point (docs/agentic.md)
  function sessionRows(i) {
    var hit = n('prefix_cache_hit_rate', i);
    return [
      ['TTFT, cold / warm turns', 'median ' + fmt(n('ttft_cold_median_s', i)) + ' s (first turns) / ' +
        fmt(n('ttft_warm_median_s', i)) + ' s (later turns)'],
      ['Prefix-cache hit rate', hit === null || hit === undefined ? 'not reported by the engine\'s responses'
        : fmtPct(hit) + ' of prompt tokens (client-visible: cached_tokens)'],
      ['E2E-normalized interactivity', 'P50 ' + fmt(n('e2e_norm_interactivity_p50', i)) + ' · P90 ' +
        fmt(n('e2e_norm_interactivity_p90', i)) + ' tok/s/user (1 / percentile of E2E ÷ output tokens)'],
      ['Per-token interactivity', 'p10 ' + fmt(n('interactivity_per_token_p10', i)) + ' tok/s/user (1 / TPOT)'],
      ['Session E2E', 'median ' + fmt(n('session_e2e_median_s', i)) + ' s, tool pauses included']
    ];
  }
  function fmtPct(f) { return f === null || f === undefined ? '—' : f === 0 ? '0 %' : fmt(100 * f) + ' %'; }
  function fmtCount(v) { return typeof v === 'number' && Number.isInteger(v) ? thousands(v) : fmt(v); }
  // The engine's own Prometheus metrics sampled during the point (docs/servermetrics.md), as a
  // small table; '' when the table has no server metrics at all
  var SERVER_ROWS = [
    ['Queue depth (waiting requests)', 'server_queue_depth', fmtCount],
    ['Running requests', 'server_running', fmtCount],
    ['KV-cache usage', 'server_kv_cache_usage', fmtPct]
  ];
  function serverTable(i) {
    if (!has('server_metrics_samples')) return '';
    var samples = n('server_metrics_samples', i), failed = n('server_metrics_failed', i);
    if (samples === null || samples === undefined) return '<p class="help" data-testid="server-metrics">Server metrics: not recorded for this point.</p>';
    if (!samples) return '<p class="help" data-testid="server-metrics">Server metrics: no sample' + (failed ? ' (' + failed + ' scrapes failed)' : ' (the engine publishes none)') + '.</p>';
    var body = SERVER_ROWS.map(function (r) {
      return '<tr><th scope="row">' + esc(r[0]) + '</th><td class="num">' + r[2](n(r[1] + '_mean', i)) +
        '</td><td class="num">' + r[2](n(r[1] + '_max', i)) + '</td></tr>';
    }).join('');
    var basis = s('server_prefix_cache_hit_basis', i), pre = n('server_preemptions', i);
    body += '<tr><th scope="row">Prefix-cache hit rate</th><td class="num" colspan="2">' + fmtPct(n('server_prefix_cache_hit_rate', i)) +
      (basis ? ' <span class="rel">(' + esc(basis) + ')</span>' : '') + '</td></tr>' +
      '<tr><th scope="row">Preemptions</th><td class="num" colspan="2">' + fmtCount(pre) + '</td></tr>';
    return '<table class="grid small" data-testid="server-metrics"><caption>Engine metrics during the point (' + samples + ' samples' +
      (failed ? ', ' + failed + ' failed' : '') + '; — where the engine does not publish it)</caption><thead><tr>' +
      '<th scope="col">Server metric</th><th scope="col">mean</th><th scope="col">max</th></tr></thead><tbody>' + body + '</tbody></table>';
  }

  function qualityText(i) {
    if (qualityFailed(i)) return 'FAILED: the eval suite run on this server scored below its gate; the speed was measured on a configuration that answers worse than allowed';
    return QF ? 'passed or not run' : 'not run';
  }
  // "acceptance 71.2 % of draft tokens · 2.4 tokens per verification step"
  function specText(i) {
    if (!js('spec_decoding', JOB[i])) return 'off';
    var rate = has('spec_acceptance_rate') ? n('spec_acceptance_rate', i) : null;
    var len = has('spec_mean_accepted_length') ? n('spec_mean_accepted_length', i) : null;
    var bits = [];
    if (rate !== null && rate !== undefined) bits.push('acceptance ' + fmt(100 * rate) + ' % of draft tokens');
    if (len !== null && len !== undefined) bits.push(fmt(len) + ' tokens per verification step');
    return js('spec_decoding', JOB[i]) + ': ' + (bits.length ? bits.join(' · ') : 'acceptance not reported by the engine');
  }
  // "41.9 % of 1,085 output tok/s/GPU (decode memory; steady-state window)"
  function rooflineText(i) {
    var f = has('roofline_fraction') ? n('roofline_fraction', i) : null;
    if (f === null || f === undefined) return 'not recorded (the catalog lacks a fact the bound needs)';
    var bits = [];
    if (has('roofline_binding') && s('roofline_binding', i)) bits.push(s('roofline_binding', i).replace(/_/g, ' '));
    if (has('roofline_window') && s('roofline_window', i)) bits.push(s('roofline_window', i).replace(/_/g, '-') + ' window');
    return fmt(100 * f) + ' % of ' + fmt(n('roofline_output_tput_per_gpu', i)) + ' output tok/s/GPU' +
      (bits.length ? ' (' + bits.join('; ') + ')' : '') + (f > 1 ? ' — above the bound: a measurement or catalog error' : '');
  }

  // ---------- CSV of exactly the shown points ----------
  var CSV_COLS = ['point_id', 'run_id', 'run_date', 'job_name', 'model', 'isl', 'osl', 'precision', 'sku',
    'framework', 'image', 'tp', 'ep', 'pp', 'dp_attention', 'gpus', 'prefill_gpus', 'decode_gpus',
    'disaggregated', 'spec_decoding', 'concurrency', 'interactivity_median', 'e2el_median_s',
    'ttft_p99_s', 'tput_per_gpu', 'output_tput_per_gpu', 'steady_output_tput_per_gpu',
    'roofline_output_tput_per_gpu', 'roofline_fraction', 'roofline_binding', 'roofline_window',
    'quality_failed', 'spec_acceptance_rate', 'spec_mean_accepted_length',
    'repeats', 'e2e_norm_interactivity_p50', 'e2e_norm_interactivity_p90', 'interactivity_per_token_p10',
    'ttft_cold_median_s', 'ttft_warm_median_s', 'prefix_cache_hit_rate', 'session_e2e_median_s',
    'server_queue_depth_mean', 'server_queue_depth_max', 'server_running_mean', 'server_running_max',
    'server_kv_cache_usage_mean', 'server_kv_cache_usage_max', 'server_prefix_cache_hit_rate',
    'server_prefix_cache_hit_basis', 'server_preemptions', 'interactivity_median_lo',
    'interactivity_median_hi', 'tput_per_gpu_lo', 'tput_per_gpu_hi', 'output_tput_per_gpu_lo', 'output_tput_per_gpu_hi'];
  function csvText() {
    var mx = current.mx, my = current.my;
    var cols = CSV_COLS.filter(has);
    var header = cols.map(function (c) { return D.units[c] ? c + ' [' + D.units[c] + ']' : c; });
    var extra = [mx, my].filter(function (m) { return cols.indexOf(m.name) < 0; });
    extra.forEach(function (m) { header.push(m.name + ' [' + m.unit + ']'); });
    if (my.price) header.push('usd_per_gpu_hour [USD/GPU-h]');
    header.push('on_pareto_front');
    var lines = [header.map(csvCell).join(',')];
    eachShown(function (i, x, y, onFront) {
      var row = cols.map(function (c) { return csvValue(c, i); });
      extra.forEach(function (m) { row.push(m === mx ? x : y); });
      if (my.price) row.push(my.priceOf(i));
      row.push(onFront ? 'true' : 'false');
      lines.push(row.map(csvCell).join(','));
    });
    return lines.join('\r\n') + '\r\n';
  }
  function csvValue(c, i) {
    var col = own(J, c) ? J[c] : C[c];
    if (col && col.dict) return s(c, i);
    var v = n(c, i);
    if (c === 'dp_attention' || c === 'disaggregated' || c === 'quality_failed') return v === null || v === undefined ? '' : v === 1 ? 'true' : 'false';
    return v;
  }
  function csvCell(v) {
    if (v === null || v === undefined) return '';
    var t = String(v);
    return /[",\r\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }
  function downloadCsv() { loadExtra(saveCsv); }
  function saveCsv() {
    var blob = new Blob([csvText()], { type: 'text/csv;charset=utf-8' });
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'ixci-' + state.chart + '-' + (state.model || 'points') + '.csv';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // ---------- filters panel ----------
  function renderFilters() {
    var tjobs = timeJobs(state);
    fillSelect(el('f-model'), countBy(tjobs, function (j) { return js('model', j); }), state.model, String);
    var mc = code('model', state.model), sc = SEQKEYS.indexOf(state.seq);
    var mjobs = tjobs.map(function (v, j) { return v && J.model.codes[j] === mc ? 1 : 0; });
    fillSelect(el('f-seq'), countBy(mjobs, function (j) { return SEQKEYS[JSEQ[j]]; }), state.seq, seqLabel);
    var sjobs = mjobs.map(function (v, j) { return v && JSEQ[j] === sc ? 1 : 0; });
    LIST_KEYS.forEach(function (k) {
      var fjobs = sjobs.map(function (v, j) { return v && facetOk(state, j, k) ? 1 : 0; });
      fillChecks(k, countBy(fjobs, function (j) { return js(LIST_COLS[k], j); }));
    });
    el('f-spec').value = state.spec;
    el('f-disagg').value = state.disagg;
    el('f-from').value = state.from;
    el('f-to').value = state.to;
    var runsSel = el('f-runs');
    var opts = [['latest', 'published curve per config'], ['all', 'all runs']];
    D.runs.slice().reverse().forEach(function (r) { opts.push(['run:' + r.run_id, 'run ' + day(r.date) + ' · ' + r.run_id]); });
    runsSel.innerHTML = opts.map(function (o) { return '<option value="' + esc(o[0]) + '">' + esc(o[1]) + '</option>'; }).join('');
    runsSel.value = state.run ? 'run:' + state.run : state.runs;
    var pin = el('pinned');
    pin.hidden = !state.asof;
    if (state.asof) {
      pin.innerHTML = 'Pinned to data as of run <a href="' + esc(hrefFor({ view: 'run', id: state.asof })) + '">' +
        esc(state.asof) + '</a> (' + esc(day(runById[state.asof].date)) + '). <a href="' + esc(hrefFor({ asof: '' })) +
        '" data-testid="unpin">Show newest data</a>';
    }
  }
  // drawable points per key(job) over the jobs in `mask`
  function countBy(mask, key) {
    var out = {};
    for (var j = 0; j < NJ; j++) {
      if (!mask[j] || !JVALID[j]) continue;
      var k = key(j);
      if (k !== null) out[k] = (out[k] || 0) + JVALID[j];
    }
    return out;
  }
  function fillSelect(sel, counts, value, label) {
    var keys = Object.keys(counts).sort();
    if (value && keys.indexOf(value) < 0) keys.unshift(value);
    sel.innerHTML = keys.map(function (k) {
      return '<option value="' + esc(k) + '">' + esc(label(k)) + (counts[k] ? ' (' + counts[k] + ')' : ' (no data)') + '</option>';
    }).join('');
    sel.value = value;
  }
  function fillChecks(key, counts) {
    var box = el('f-' + key);
    var legend = box.querySelector('legend').outerHTML;
    var keys = Object.keys(counts).sort();
    state[key].forEach(function (v) { if (keys.indexOf(v) < 0) keys.push(v); });
    var html = keys.map(function (v) {
      var id = 'f-' + key + '-' + v.replace(/[^A-Za-z0-9_-]/g, '_');
      var on = !state[key].length || state[key].indexOf(v) >= 0;
      var sw = key === 'sku' || key === 'fw' ? '' : '';
      return '<label for="' + esc(id) + '"><input type="checkbox" id="' + esc(id) + '" data-testid="' +
        esc('check-' + key + '-' + v) + '" value="' + esc(v) + '"' + (on ? ' checked' : '') + '>' + sw +
        esc(v) + '<span class="count">' + (counts[v] || 0) + '</span></label>';
    }).join('');
    box.innerHTML = legend + (html || '<p class="help">none</p>');
  }
  function onCheck(key, ev) {
    var box = el('f-' + key);
    var all = Array.prototype.map.call(box.querySelectorAll('input'), function (x) { return x; });
    var on = all.filter(function (x) { return x.checked; }).map(function (x) { return x.value; });
    if (!on.length) { ev.target.checked = true; return; } // never an empty selection
    var patch = {};
    patch[key] = on.length === all.length ? [] : on;
    setState(patch);
  }

  // ---------- comparison view ----------
  var CMP_METRICS = [['tput', 'Throughput per GPU'], ['cost', 'Cost per million tokens'],
    ['energy', 'Energy per token'], ['mw', 'Tokens/s per MW'], ['roofline', '% of the physical limit']];
  function levels() {
    return state.levels.split(',').map(Number).filter(function (v) { return v > 0 && isFinite(v); });
  }
  function renderCompare() {
    var metric = state.metric || 'tput';
    var msel = el('cmp-metric');
    if (!msel.options.length) {
      msel.innerHTML = CMP_METRICS.map(function (m) { return '<option value="' + m[0] + '">' + esc(m[1]) + '</option>'; }).join('');
    }
    msel.value = metric;
    if (document.activeElement !== el('cmp-levels')) el('cmp-levels').value = state.levels;
    // the share of the physical limit is read along the throughput front (the best
    // configuration at each interactivity), not over a front of its own: at one point per
    // concurrency, the fastest-per-user point would dominate every other on that front
    var share = metric === 'roofline';
    var data = chartData(state, 'interactivity', share ? 'tput' : metric);
    if (share) {
      var md = metricDef('roofline', state);
      data.my = md;
      data.groups.forEach(function (g) {
        g.front = g.front.map(function (p) { return { x: p.x, y: md.get(p.i), i: p.i }; })
          .filter(function (p) { return p.y !== null && isFinite(p.y); });
      });
    }
    var names = data.groups.map(function (g) { return g.name; });
    var base = names.indexOf(state.baseline) >= 0 ? state.baseline : names[0];
    el('cmp-baseline').innerHTML = names.map(function (g) { return '<option>' + esc(g) + '</option>'; }).join('');
    el('cmp-baseline').value = base || '';
    var lv = levels();
    var table = data.groups.map(function (g) { return lv.map(function (x) { return interpolate(g.front, x); }); });
    var bands = data.groups.map(function (g) { return lv.map(function (x) { return interpolateBand(g.front, x, data.my); }); });
    var bi = names.indexOf(base), dir = data.my.dir;
    var best = lv.map(function (_, c) {
      var b = null;
      table.forEach(function (row) { if (row[c] !== null && (b === null || row[c] * dir > b * dir)) b = row[c]; });
      return b;
    });
    var sources = data.groups.map(frontRuns);
    var html = '<table class="grid"><caption>' + esc(data.my.title) + ' (' + esc(data.my.unit) + ') on each ' +
      'Pareto front at a fixed interactivity; ' + (dir > 0 ? 'higher' : 'lower') + ' is better.</caption><thead><tr><th scope="col">GPU · framework</th>' +
      lv.map(function (x) { return '<th scope="col">' + String(+x.toPrecision(4)) + ' tok/s/user</th>'; }).join('') +
      '<th scope="col">Measured in</th></tr></thead><tbody>';
    data.groups.forEach(function (g, r) {
      html += '<tr' + (r === bi ? ' class="baseline"' : '') + '><th scope="row">' + esc(g.name) + (r === bi ? ' <span class="rel">(baseline)</span>' : '') + '</th>';
      lv.forEach(function (_, c) {
        var v = table[r][c], isBest = v !== null && v === best[c];
        var rel = '';
        var b = bi >= 0 ? table[bi][c] : null;
        if (v !== null && b && r !== bi) {
          var pct = (v / b - 1) * 100;
          var cls = pct * dir > 0 ? 'better' : pct * dir < 0 ? 'worse' : '';
          rel = '<span class="rel ' + cls + '">' + (pct >= 0 ? '+' : '') + pct.toFixed(0) + ' %</span>';
        }
        var band = bands[r][c];
        var ciText = v !== null && band ? '<span class="ci" data-testid="compare-ci" title="95 % interval over repeats"> [' + fmt(band[0]) + ' – ' + fmt(band[1]) + ']</span>' : '';
        html += '<td class="num' + (isBest ? ' best' : '') + '"' + (isBest ? ' data-best="1" title="best in column"' : '') + '>' +
          fmt(v) + ciText + rel + (isBest ? '<span class="sr"> (best)</span>' : '') + '</td>';
      });
      html += '<td class="runs" data-testid="compare-runs">' + runLinks(sources[r]) + '</td></tr>';
    });
    html += '</tbody></table>' + batchNote(data.groups, sources);
    if (!data.groups.length) html = '<p class="empty">No measured points match these filters.</p>';
    el('compare-table').innerHTML = html;
  }

  // dates linked to their runs; many runs (all runs shown) as first … last (N runs)
  function runLinks(src) {
    function link(x) { return '<a href="' + esc(hrefFor({ view: 'run', id: x.run })) + '" title="run ' + esc(x.run) + '">' + esc(day(x.date)) + '</a>'; }
    if (src.length <= 4) return src.map(link).join(', ');
    return link(src[0]) + ' … ' + link(src[src.length - 1]) + ' (' + src.length + ' runs)';
  }
  // the runs a group's front points (the numbers read off it) come from, oldest first
  function frontRuns(g) {
    var seen = {}, out = [];
    g.front.forEach(function (p) {
      var r = s('run_id', p.i);
      if (!seen[r]) { seen[r] = 1; out.push({ run: r, date: s('run_date', p.i) }); }
    });
    return out.sort(function (a, b) { return a.date < b.date ? -1 : a.date > b.date ? 1 : 0; });
  }
  // hardware not measured in one batch is not directly comparable: say so (InferenceX#2304)
  function batchNote(groups, sources) {
    var runs = {}, days = {};
    sources.forEach(function (src) { src.forEach(function (x) { runs[x.run] = 1; days[day(x.date)] = 1; }); });
    var nr = Object.keys(runs).length, dl = Object.keys(days).sort();
    if (!nr) return '';
    if (nr === 1) return '<p class="note" data-testid="compare-batches">Every row comes from one run (' + esc(dl[0]) + ', run ' +
      esc(Object.keys(runs)[0]) + ').</p>';
    var by = groups.map(function (g, k) {
      var ds = sources[k].map(function (x) { return day(x.date); }).filter(function (d, q, a) { return a.indexOf(d) === q; });
      return esc(g.name) + ': ' + esc(ds.length <= 4 ? ds.join(', ') : ds[0] + ' … ' + ds[ds.length - 1]);
    });
    return '<p class="note warn" data-testid="compare-batches">Rows come from ' + nr + ' runs on ' + dl.length +
      ' date' + (dl.length === 1 ? '' : 's') + ' (' + by.join('; ') + '). Differences between rows from different runs ' +
      'include whatever else changed between those runs (image, driver, host); compare within one run, or pin one with the Runs filter, for a like-for-like result.</p>';
  }

  // ---------- history view ----------
  function configLabel(j) { return configName(j); }
  // the geometric middle of the measured interactivity range, to 2 significant digits
  function autoLevel(runs) {
    var lo = Infinity, hi = 0;
    runs.forEach(function (r) { r.pts.forEach(function (p) { lo = Math.min(lo, p.x); hi = Math.max(hi, p.x); }); });
    return hi > 0 ? +Math.sqrt(lo * hi).toPrecision(2) : 50;
  }
  function renderHistory() {
    var mask = modelSeqJobs(Object.assign({}, state, { run: '' }));
    var configs = {};
    for (var j = 0; j < NJ; j++) {
      if (mask[j] && !facetOk(state, j)) mask[j] = 0;
      if (mask[j] && JVALID[j]) configs[js('config_id', j)] = configs[js('config_id', j)] || configLabel(j);
    }
    var ids = Object.keys(configs).sort(function (a, b) { return configs[a] < configs[b] ? -1 : 1; });
    var cfg = ids.indexOf(state.config) >= 0 ? state.config : ids[0];
    el('h-config').innerHTML = ids.map(function (k) { return '<option value="' + esc(k) + '">' + esc(configs[k]) + '</option>'; }).join('');
    el('h-config').value = cfg || '';
    var gd = el('h-chart');
    if (!cfg) {
      el('h-status').textContent = 'No configuration matches these filters.';
      plot(function () {});  // drops a draw still waiting for plotly
      if (gd.data && window.Plotly) Plotly.purge(gd);
      el('h-table').innerHTML = '';
      el('h-regressions').innerHTML = '';
      return;
    }
    var cc = code('config_id', cfg);
    for (j = 0; j < NJ; j++) if (J.config_id.codes[j] !== cc) mask[j] = 0;
    var byRun = {};
    pointsOf(mask).forEach(function (i) {
      var r = s('run_id', i);
      (byRun[r] || (byRun[r] = { run: r, date: s('run_date', i), image: s('image', i), digest: s('image_digest', i), pts: [] })).pts
        .push({ x: C.interactivity_median[i], y: C.tput_per_gpu[i], i: i });
    });
    var runs = Object.keys(byRun).map(function (k) { return byRun[k]; })
      .sort(function (a, b) { return a.date < b.date ? -1 : 1; });
    var scenarios = {};
    for (j = 0; j < NJ; j++) if (mask[j]) scenarios[js('scenario', j)] = 1;
    var regs = regressionsOf(cfg, scenarios);
    var level = state.hlevel || autoLevel(runs);
    el('h-level').value = level;
    runs.forEach(function (r, k) {
      r.peak = Math.max.apply(null, r.pts.map(function (p) { return p.y; }));
      r.at = interpolate(paretoFront(r.pts, 1, 1), level);
      var prev = runs[k - 1];
      // a new tag, or the same tag pointing at another build (both digests known)
      r.changed = k > 0 && (r.image !== prev.image || (!!r.digest && !!prev.digest && r.digest !== prev.digest));
    });
    var xs = runs.map(function (r) { return r.date; });
    var t0 = Date.parse(xs[0]), t1 = Date.parse(xs[xs.length - 1]), dayMs = 86400000;
    var traces = [
      { type: 'scatter', mode: 'lines+markers', name: 'peak throughput', x: xs, y: runs.map(function (r) { return r.peak; }),
        line: { color: PALETTE[0] }, hovertemplate: '%{y:.4~g} tok/s/GPU<extra>peak</extra>' },
      { type: 'scatter', mode: 'lines+markers', name: 'at ' + lvl(level) + ' tok/s/user', x: xs,
        y: runs.map(function (r) { return r.at; }), line: { color: PALETTE[1], dash: 'dot' },
        hovertemplate: '%{y:.4~g} tok/s/GPU<extra>at ' + lvl(level) + ' tok/s/user</extra>' }
    ];
    var shapes = [], notes = [];
    function prev2(r) { return runs[runs.indexOf(r) - 1]; }
    runs.forEach(function (r) {
      if (!r.changed) return;
      shapes.push({ type: 'line', xref: 'x', yref: 'paper', x0: r.date, x1: r.date, y0: 0, y1: 1,
        line: { color: '#8a5a00', dash: 'dash', width: 1.5 } });
      notes.push({ xref: 'x', yref: 'paper', x: r.date, y: 1, yanchor: 'bottom', showarrow: false,
        text: 'image → ' + esc(r.image.split('/').pop()) + (r.image === prev2(r).image ? ' (rebuilt)' : ''),
        font: { size: 11, color: '#8a5a00' } });
    });
    var marks = regressionMarks(regs, runs);
    if (marks) {
      traces.push(marks.trace);
      marks.shapes.forEach(function (sh) { shapes.push(sh); });
    }
    var nImage = shapes.length - (marks ? marks.shapes.length : 0);
    plot(function () { Plotly.react(gd, traces, {
      margin: { l: 70, r: 20, t: 40, b: 50 }, shapes: shapes, annotations: notes,
      xaxis: { title: { text: 'Run date' }, type: 'date', tickformat: '%Y-%m-%d',
        range: [t0 - dayMs / 2, t1 + dayMs / 2], dtick: t1 - t0 <= 20 * dayMs ? dayMs : undefined },
      yaxis: { title: { text: 'Tokens (input + output) per second per GPU' }, rangemode: 'tozero' },
      legend: { orientation: 'h', y: -0.2 }, font: { family: 'system-ui, sans-serif', size: 13 }
    }, PLOT_CONFIG); });
    el('h-status').textContent = runs.length + ' runs of ' + configs[cfg] + ' (' + state.model + ', ' +
      seqLabel(state.seq) + '); ' + nImage + ' image change' + (nImage === 1 ? '' : 's') + ' marked' +
      (regs === null ? '; loading regressions…' : '; ' + regs.length + ' regression' + (regs.length === 1 ? '' : 's') +
        ' (regressions.json) marked') + '.';
    el('h-regressions').innerHTML = regs && regs.length ? regressionTable(regs) : '';
    el('h-table').innerHTML = '<table class="grid"><caption>Runs of this configuration</caption><thead><tr>' +
      '<th scope="col">Run date</th><th scope="col">Run</th><th scope="col">Image</th><th scope="col">Points</th>' +
      '<th scope="col">Peak tok/s/GPU</th><th scope="col">tok/s/GPU at ' + lvl(level) + ' tok/s/user</th></tr></thead><tbody>' +
      runs.slice().reverse().map(function (r) {
        return '<tr><td>' + esc(day(r.date)) + '</td><td><a href="' + esc(hrefFor({ view: 'run', id: r.run })) + '">' +
          esc(r.run) + '</a></td><td>' + esc(r.image) + (r.changed ? ' <span class="changed" data-testid="image-changed">changed</span>' : '') +
          '</td><td class="num">' + r.pts.length + '</td><td class="num">' + fmt(r.peak) + '</td><td class="num">' + fmt(r.at) + '</td></tr>';
      }).join('') + '</tbody></table>';
  }

  // regressions.json's findings (data/regressions.js, loaded when the History view first opens)
  var regLoad = { state: 'none' };
  function loadRegressions() {
    if (regLoad.state !== 'none') return;
    regLoad.state = 'loading';
    var tag = document.createElement('script');
    tag.src = 'data/regressions.js';
    tag.onload = function () { regLoad.state = 'ready'; if (state.view === 'history') renderHistory(); };
    tag.onerror = function () { regLoad.state = 'failed'; if (state.view === 'history') renderHistory(); };
    document.body.appendChild(tag);
  }
  // this configuration's findings in the scenarios shown; null while the file loads
  function regressionsOf(cfg, scenarios) {
    if (!window.IXCI_REGRESSIONS) {
      loadRegressions();
      if (regLoad.state !== 'failed') return null;
      return [];
    }
    return window.IXCI_REGRESSIONS.regressions.filter(function (f) {
      return f.config_id === cfg && (!SCEN || scenarios[f.scenario]);
    });
  }
  function pct(x) { return (x >= 0 ? '+' : '−') + Math.abs(100 * x).toFixed(1) + ' %'; }
  function shortDigest(d) { return d ? String(d).slice(0, 19) : 'unknown digest'; }
  // "old → new" of the image the step came with; digests when the tag did not move
  function imageChange(f) {
    var c = f.image_change;
    if (!c) return 'no image change (look at the runner, driver or host)';
    var dig = c.from_digest !== undefined && (c.from === c.to || c.from_digest !== c.to_digest)
      ? ' (' + shortDigest(c.from_digest) + ' → ' + shortDigest(c.to_digest) + ')' : '';
    return (c.from === c.to ? c.from + ' rebuilt' : c.from + ' → ' + c.to) + dig;
  }
  function findingText(f) {
    var where = f.concurrency !== null && f.concurrency !== undefined ? 'c=' + f.concurrency : 'rate=' + f.request_rate;
    return f.metric + ' at ' + where + ' (' + f.scenario + '): ' + pct(f.step.relative) + ' [95 %: ' +
      pct(f.step.ci95[0]) + ' … ' + pct(f.step.ci95[1]) + ']' + (f.state === 'recovered' ? ', recovered ' + day(f.recovered_date) : ', open');
  }
  // one marker per first bad run: on the peak line at that run, hover text naming every finding
  function regressionMarks(regs, runs) {
    if (!regs || !regs.length) return null;
    var byRun = {}, order = [];
    regs.forEach(function (f) {
      if (!byRun[f.first_bad_run]) { byRun[f.first_bad_run] = []; order.push(f.first_bad_run); }
      byRun[f.first_bad_run].push(f);
    });
    var top = Math.max.apply(null, runs.map(function (r) { return r.peak; }).concat([0]));
    var x = [], y = [], text = [], shapes = [];
    order.forEach(function (run) {
      var fs = byRun[run], f0 = fs[0];
      var at = runs.filter(function (r) { return r.run === run; })[0];
      x.push(f0.first_bad_date);
      y.push(at ? at.peak : top);
      var lines = fs.slice(0, 6).map(function (f) { return esc(findingText(f)); });
      if (fs.length > 6) lines.push('and ' + (fs.length - 6) + ' more (table below)');
      text.push('<b>Regression</b> first seen ' + esc(day(f0.first_bad_date)) + ' (run ' + esc(run) + '), last good ' +
        esc(day(f0.last_good_date)) + ' (run ' + esc(f0.last_good_run) + ')<br>' + lines.join('<br>') +
        '<br>image: ' + esc(imageChange(f0)));
      shapes.push({ type: 'line', xref: 'x', yref: 'paper', x0: f0.first_bad_date, x1: f0.first_bad_date, y0: 0, y1: 1,
        line: { color: '#c0392b', dash: 'dot', width: 1.5 } });
    });
    return { shapes: shapes, trace: { type: 'scatter', mode: 'markers', name: 'regression (regressions.json)', x: x, y: y,
      hovertext: text, hovertemplate: '%{hovertext}<extra></extra>', meta: { kind: 'regression' }, hoverlabel: { align: 'left' },
      marker: { symbol: 'triangle-down', size: 14, color: '#c0392b', line: { color: '#fff', width: 1 } } } };
  }
  function regressionTable(regs) {
    return '<table class="grid"><caption>Regressions of this configuration (regressions.json, found by publish on each ' +
      'point\'s history)</caption><thead><tr><th scope="col">First bad run</th><th scope="col">Last good run</th>' +
      '<th scope="col">Point</th><th scope="col">Metric</th><th scope="col">Step [95 %]</th><th scope="col">Level before → after</th>' +
      '<th scope="col">Image change</th><th scope="col">State</th></tr></thead><tbody>' +
      regs.map(function (f) {
        var where = f.concurrency !== null && f.concurrency !== undefined ? 'c=' + f.concurrency : 'rate=' + f.request_rate;
        return '<tr data-testid="regression-row" data-state="' + esc(f.state) + '"><td>' + esc(day(f.first_bad_date)) + ' <a href="' +
          esc(hrefFor({ view: 'run', id: f.first_bad_run })) + '">' + esc(f.first_bad_run) + '</a></td><td>' + esc(day(f.last_good_date)) +
          ' ' + esc(f.last_good_run) + '</td><td>' + esc(f.scenario + ' ' + where) + '</td><td>' + esc(f.metric) +
          '</td><td class="num">' + esc(pct(f.step.relative)) + ' <span class="ci">[' + esc(pct(f.step.ci95[0])) + ' … ' +
          esc(pct(f.step.ci95[1])) + ']</span></td><td class="num">' + fmt(f.baseline.value) + ' → ' + fmt(f.target.value) +
          '</td><td data-testid="regression-image">' + esc(imageChange(f)) + '</td><td><span class="reg-' + esc(f.state) + '">' +
          esc(f.state) + (f.state === 'recovered' ? ' ' + esc(day(f.recovered_date)) : '') + '</span></td></tr>';
      }).join('') + '</tbody></table>';
  }

  // ---------- coverage, runs, run ----------
  function renderCoverage() {
    var cov = D.coverage;
    var rowsKeys = {};
    cov.cells.forEach(function (c) { rowsKeys[c.sku + ' · ' + c.framework] = [c.sku, c.framework]; });
    var cellOf = {};
    cov.cells.forEach(function (c) { cellOf[c.sku + '|' + c.framework + '|' + c.model] = c; });
    var html = '<table class="grid"><caption>GPU · framework × model: state in the latest run that planned it</caption>' +
      '<thead><tr><th scope="col">GPU · framework</th>' +
      cov.models.map(function (m) { return '<th scope="col">' + esc(m) + '</th>'; }).join('') + '</tr></thead><tbody>';
    Object.keys(rowsKeys).sort().forEach(function (rk) {
      var sf = rowsKeys[rk];
      html += '<tr><th scope="row">' + esc(rk) + '</th>';
      cov.models.forEach(function (m) {
        var c = cellOf[sf[0] + '|' + sf[1] + '|' + m];
        if (!c) { html += '<td class="cell" data-state="none"><span class="st st-none">·</span><span class="sr">not planned</span></td>'; return; }
        var when = c.last_date ? 'latest run ' + day(c.last_date) : '';
        if (c.state !== 'measured' && c.last_measured) when += '; last measured ' + day(c.last_measured);
        if (c.state === 'measured' && c.last_measured && !c.last_date) when = 'measured ' + day(c.last_measured);
        var link = c.last_run ? ' <a href="' + esc(hrefFor({ view: 'run', id: c.last_run })) + '" aria-label="run ' + esc(c.last_run) + '">run</a>' : '';
        html += '<td class="cell" data-state="' + esc(c.state) + '" data-testid="cov-' + esc(sf[0] + '-' + sf[1] + '-' + m) + '">' +
          '<span class="st st-' + esc(c.state) + '">' + esc(covLabel(c)) + '</span>' +
          link + '<span class="when">' + esc(when) + '</span></td>';
      });
      html += '</tr>';
    });
    el('coverage-grid').innerHTML = html + '</tbody></table>';
  }
  function covLabel(c) {
    var t = c.state;
    if (c.state === 'partial') t += ': ' + c.jobs_measured + ' of ' + c.jobs + ' jobs';
    if (c.failure_class && c.state !== 'measured') t += ' (' + c.failure_class + ')';
    return t;
  }
  function covBadges(cov) {
    return ['ok', 'partial', 'failed', 'missing'].map(function (k) {
      return cov[k] ? '<span class="st st-' + k + '">' + cov[k] + ' ' + k + '</span>' : '';
    }).join(' ');
  }
  function renderRuns() {
    el('runs-table').innerHTML = '<table class="grid"><caption>' + D.runs.length + ' runs, newest first</caption><thead><tr>' +
      '<th scope="col">Date (UTC)</th><th scope="col">Run</th><th scope="col">Event</th><th scope="col">Commit</th><th scope="col">Jobs</th></tr></thead><tbody>' +
      D.runs.slice().reverse().map(function (r) {
        return '<tr><td>' + esc(r.date.replace('T', ' ').replace('Z', '')) + '</td><td><a data-testid="run-link" href="' +
          esc(hrefFor({ view: 'run', id: r.run_id })) + '">' + esc(r.run_id) + '</a></td><td>' + esc(r.event || '') +
          '</td><td><code>' + esc((r.sha || '').slice(0, 10)) + '</code></td><td>' +
          (r.has_coverage ? covBadges(r.coverage) : 'no coverage manifest') + '</td></tr>';
      }).join('') + '</tbody></table>';
  }
  function renderRun() {
    var run = runById[state.id];
    var body = el('run-body');
    if (!run) { el('run-h').textContent = 'Run not found'; body.innerHTML = '<p>No run ' + esc(state.id) + ' in this data. <a href="' + esc(hrefFor({ view: 'runs', id: '' })) + '">All runs</a></p>'; return; }
    el('run-h').textContent = 'Run ' + run.run_id + ' · ' + day(run.date);
    var detail = (window.IXCI_RUNS || {})[run.run_id];
    if (!detail) {
      body.innerHTML = '<p class="status">Loading the coverage manifest…</p>';
      var tag = document.createElement('script');
      tag.src = 'data/runs/' + D.run_files[run.run_id] + '.js';
      tag.onload = function () { if (state.view === 'run') renderRun(); };
      tag.onerror = function () { body.innerHTML = '<p>The manifest file of this run is missing from the site.</p>'; };
      document.body.appendChild(tag);
      return;
    }
    var meta = '<dl class="meta" data-testid="run-meta"><dt>Date</dt><dd>' + esc(run.date) + '</dd><dt>Event</dt><dd>' + esc(run.event || '—') +
      '</dd><dt>Commit</dt><dd><code>' + esc(run.sha || '—') + '</code></dd>' +
      (run.url ? '<dt>Workflow run</dt><dd><a rel="noopener" href="' + esc(run.url) + '">' + esc(run.url) + '</a></dd>' : '') +
      '<dt>Jobs</dt><dd>' + (run.has_coverage ? covBadges(run.coverage) : 'no coverage manifest') + '</dd></dl>' +
      '<p><a data-testid="run-points-link" href="' + esc(hrefFor({ view: 'charts', run: run.run_id, id: '' })) +
      '">Show only this run\'s points in the charts</a> · <a href="' + esc(hrefFor({ view: 'charts', asof: run.run_id, id: '', run: '' })) +
      '">Show the data as it was after this run</a></p>';
    var jobs = detail.jobs.slice().sort(function (a, b) {
      var o = { failed: 0, missing: 1, partial: 2, ok: 3 };
      return (o[a.status] - o[b.status]) || (a.name < b.name ? -1 : 1);
    });
    var table = '<table class="grid" data-testid="run-manifest"><caption>Coverage manifest: ' + jobs.length +
      ' planned jobs (problems first)</caption><thead><tr><th scope="col">Status</th><th scope="col">Job</th>' +
      '<th scope="col">Model</th><th scope="col">GPU</th><th scope="col">Framework</th><th scope="col">Precision</th>' +
      '<th scope="col">Scenario</th><th scope="col">Points ok</th><th scope="col">Image</th><th scope="col">Failure</th></tr></thead><tbody>' +
      jobs.map(function (j) {
        return '<tr data-status="' + esc(j.status) + '"><td><span class="st st-' + esc(j.status) + '">' + esc(j.status) + '</span></td><td>' + esc(j.name) +
          '<br><code>' + esc(j.job_id) + '</code></td><td>' + esc(j.model) + '</td><td>' + esc(j.sku) + '</td><td>' + esc(j.framework) +
          '</td><td>' + esc(j.precision) + '</td><td>' + esc(j.scenario) + '</td><td class="num">' +
          (j.points_expected !== null ? esc(j.points_ok) + ' / ' + esc(j.points_expected) : '') + '</td><td>' + esc(j.image) +
          '</td><td>' + esc([j.failure_class, j.failure_message].filter(Boolean).join(': ')) + '</td></tr>';
      }).join('') + '</tbody></table>';
    body.innerHTML = meta + (detail.jobs.length ? table : '<p>This run has no coverage manifest.</p>') + runServerTable(run);
  }
  // every point of the run with the engine's metrics sampled during it (docs/servermetrics.md)
  function runServerTable(run) {
    if (!has('server_metrics_samples')) return '';
    var rc = code('run_id', run.run_id), pts = [];
    for (var i = 0; i < N; i++) if (J.run_id.codes[JOB[i]] === rc && n('server_metrics_samples', i) > 0) pts.push(i);
    if (!pts.length) return '';
    pts.sort(function (a, b) {
      var x = configName(JOB[a]), y = configName(JOB[b]);
      return x < y ? -1 : x > y ? 1 : (s('scenario', a) < s('scenario', b) ? -1 : s('scenario', a) > s('scenario', b) ? 1 : n('concurrency', a) - n('concurrency', b));
    });
    return '<table class="grid" data-testid="run-server-metrics"><caption>Engine metrics per point (Prometheus, sampled during ' +
      'each point; mean / max; — where the engine does not publish it)</caption><thead><tr><th scope="col">Job</th>' +
      '<th scope="col">Scenario</th><th scope="col">Concurrency</th><th scope="col">Queue depth</th><th scope="col">Running</th>' +
      '<th scope="col">KV-cache usage</th><th scope="col">Prefix-cache hit rate</th><th scope="col">Preemptions</th></tr></thead><tbody>' +
      pts.map(function (i) {
        return '<tr data-point="' + esc(s('point_id', i)) + '"><td>' + esc(configName(JOB[i])) + '</td><td>' + esc(s('scenario', i)) +
          '</td><td class="num">' + esc(n('concurrency', i)) + '</td><td class="num">' + fmtCount(n('server_queue_depth_mean', i)) + ' / ' +
          fmtCount(n('server_queue_depth_max', i)) + '</td><td class="num">' + fmtCount(n('server_running_mean', i)) + ' / ' +
          fmtCount(n('server_running_max', i)) + '</td><td class="num">' + fmtPct(n('server_kv_cache_usage_mean', i)) + ' / ' +
          fmtPct(n('server_kv_cache_usage_max', i)) + '</td><td class="num">' + fmtPct(n('server_prefix_cache_hit_rate', i)) +
          '</td><td class="num">' + fmtCount(n('server_preemptions', i)) + '</td></tr>';
      }).join('') + '</tbody></table>';
  }

  // ---------- top-level render and wiring ----------
  function needsExtra() {
    if (state.view === 'charts') return ['cost', 'energy', 'mw', 'agentic', 'ttftctx'].indexOf(state.chart) >= 0;
    if (state.view === 'run') return extra.state !== 'failed';  // its table of server metrics
    return state.view === 'compare' && !!state.metric && state.metric !== 'tput';
  }
  function render() {
    if (needsExtra() && extra.state !== 'ready') {
      el('status').textContent = 'Loading cost and energy data…';
      loadExtra(render);
      return;
    }
    var view = state.view;
    VIEWS.forEach(function (v) { el('view-' + v).hidden = v !== view; });
    Array.prototype.forEach.call(el('views').querySelectorAll('a'), function (a) {
      var v = a.getAttribute('data-view');
      a.setAttribute('href', hrefFor({ view: v, id: '' }));
      if (v === view || (view === 'run' && v === 'runs')) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    el('filters').hidden = ['coverage', 'runs', 'run'].indexOf(view) >= 0;
    if (!el('filters').hidden) renderFilters();
    var perma = Object.assign({}, state);
    if (!perma.asof && !perma.run && newestRun) perma.asof = newestRun.run_id;
    el('permalink').setAttribute('href', hrefFor(perma));
    if (view === 'charts') renderCharts();
    else if (view === 'compare') renderCompare();
    else if (view === 'history') renderHistory();
    else if (view === 'coverage') renderCoverage();
    else if (view === 'runs') renderRuns();
    else renderRun();
  }

  function wire() {
    el('f-model').addEventListener('change', function (e) { setState({ model: e.target.value, seq: '', config: '' }); });
    el('f-seq').addEventListener('change', function (e) { setState({ seq: e.target.value, config: '' }); });
    LIST_KEYS.forEach(function (k) { el('f-' + k).addEventListener('change', function (e) { onCheck(k, e); }); });
    el('f-spec').addEventListener('change', function (e) { setState({ spec: e.target.value }); });
    el('f-disagg').addEventListener('change', function (e) { setState({ disagg: e.target.value }); });
    el('f-runs').addEventListener('change', function (e) {
      var v = e.target.value;
      if (v.indexOf('run:') === 0) setState({ run: v.slice(4), runs: 'latest' });
      else setState({ run: '', runs: v });
    });
    el('f-from').addEventListener('change', function (e) { setState({ from: e.target.value }); });
    el('f-to').addEventListener('change', function (e) { setState({ to: e.target.value }); });
    el('reset').addEventListener('click', function () {
      var d = baseDefaults();
      setState({ model: '', seq: '', prec: [], sku: [], fw: [], spec: 'all', disagg: 'all', runs: 'latest',
        run: '', asof: '', from: '', to: '', config: '', hlevel: d.hlevel });
    });
    el('c-front').addEventListener('change', function (e) { setState({ front: e.target.checked }); });
    el('c-quality').addEventListener('change', function (e) { setState({ quality: e.target.checked ? 'hide' : 'flag' }); });
    el('c-tokens').addEventListener('change', function (e) { setState({ tokens: e.target.value }); });
    el('c-tier').addEventListener('change', function (e) { setState({ tier: e.target.value, price: {} }); });
    el('price-inputs').addEventListener('change', function (e) {
      var sku = e.target.getAttribute('data-sku'), v = +e.target.value;
      var price = Object.assign({}, state.price);
      var catalog = (D.prices[state.tier] || {})[sku];
      if (v > 0 && v !== catalog) price[sku] = v; else delete price[sku];
      setState({ price: price });
    });
    el('csv').addEventListener('click', downloadCsv);
    el('cmp-metric').addEventListener('change', function (e) { setState({ metric: e.target.value === 'tput' ? '' : e.target.value }); });
    el('cmp-levels').addEventListener('change', function (e) {
      var v = e.target.value.split(/[\s,;]+/).map(Number).filter(function (x) { return x > 0; });
      setState({ levels: v.length ? v.join(',') : baseDefaults().levels });
    });
    el('cmp-baseline').addEventListener('change', function (e) { setState({ baseline: e.target.value }); });
    el('h-config').addEventListener('change', function (e) { setState({ config: e.target.value }); });
    el('h-level').addEventListener('change', function (e) { setState({ hlevel: +e.target.value > 0 ? +e.target.value : '' }); });
    el('views').addEventListener('click', function (e) {
      var a = e.target.closest('a[data-view]');
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      setState({ view: a.getAttribute('data-view'), id: '' }, true);
    });
    document.body.addEventListener('click', function (e) {
      // in-page links (?view=…) re-render without reloading the data
      var a = e.target.closest('a[href^="index.html?"], a[href^="?"]');
      if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0 || a.closest('#views')) return;
      e.preventDefault();
      state = parseUrl(a.getAttribute('href').replace(/^[^?]*/, ''));
      normalize();
      history.pushState(null, '', location.pathname + serialize(state));
      render();
      window.scrollTo(0, 0);
    });
    window.addEventListener('popstate', function () { state = parseUrl(location.search); normalize(); render(); });
  }

  function header() {
    var last = newestRun ? day(newestRun.date) : 'no runs';
    el('asof').textContent = 'Data as of ' + last + ' · ' + D.runs.length + ' runs · ' + thousands(N) + ' measured points';
    el('foot').textContent = 'Built by ixci ' + D.ixci_version + ' from the results branch. Values are medians over each ' +
      'point\'s requests; throughput is per GPU of the whole deployment (prefill + decode GPUs when disaggregated).';
  }

  // for tests and scripts: the row behind a plotted point, and the lazy columns
  window.ixci = {
    loadExtra: loadExtra,
    pointId: function (i) { return s('point_id', i); },
    str: function (name, i) { return s(name, i); },
    col: function (name, i) { return n(name, i); },
    state: function () { return JSON.parse(JSON.stringify(state)); }
  };

  state = parseUrl(location.search);
  normalize();
  header();
  wire();
  render();
  TIMING.rendered = performance.now();
})();
