/* ixci results site. No framework, no build step, no network: the data is the global
 * IXCI_DATA (data/site.js), one run's manifest is IXCI_RUNS[id] (data/runs/<id>.js, loaded
 * with a <script> tag, which works from file:// where fetch() does not).
 * All state lives in the query string; values equal to their default are omitted. */
(function () {
  'use strict';

  var D = window.IXCI_DATA;
  var P = D.points;
  var N = P.n;
  var TIMING = (window.ixciTiming = { dataReady: performance.now() });
  // C: every column, per point. Deployment columns arrive once per distinct combination
  // (P.jobs) and are expanded here through P.job; the extra columns come later (loadExtra).
  var C = (function () {
    var out = {}, job = P.job, J = P.jobs.columns;
    Object.keys(J).forEach(function (name) {
      var c = J[name], i;
      if (c && c.dict) {
        var codes = new Int32Array(N);
        for (i = 0; i < N; i++) codes[i] = c.codes[job[i]];
        out[name] = { dict: c.dict, codes: codes };
      } else {
        var arr = new Array(N);
        for (i = 0; i < N; i++) arr[i] = c[job[i]];
        out[name] = arr;
      }
    });
    Object.keys(P.columns).forEach(function (name) { out[name] = P.columns[name]; });
    return out;
  })();
  var SEQKEYS = [];
  var SEQ = (function () {
    var out = new Int32Array(N), seen = {};
    for (var i = 0; i < N; i++) {
      var k = C.isl[i] + 'x' + C.osl[i];
      if (!(k in seen)) { seen[k] = SEQKEYS.length; SEQKEYS.push(k); }
      out[i] = seen[k];
    }
    return out;
  })();

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
  var VIEWS = ['charts', 'compare', 'history', 'coverage', 'runs', 'run'];
  var LIST_KEYS = ['prec', 'sku', 'fw'];
  var LIST_COLS = { prec: 'precision', sku: 'sku', fw: 'framework' };
  var ORDER = ['view', 'id', 'chart', 'model', 'seq', 'prec', 'sku', 'fw', 'spec', 'disagg',
    'runs', 'run', 'asof', 'from', 'to', 'front', 'tokens', 'tier', 'price', 'metric',
    'levels', 'baseline', 'config', 'hlevel'];

  // ---------- column access ----------
  function has(name) { return Object.prototype.hasOwnProperty.call(C, name); }
  function s(name, i) {
    var c = C[name];
    if (!c) return null;
    var k = c.codes[i];
    return k < 0 ? null : c.dict[k];
  }
  function code(name, value) { return has(name) ? C[name].dict.indexOf(value) : -1; }
  function n(name, i) { var c = C[name]; return c ? c[i] : null; }
  function seqOf(i) { return SEQKEYS[SEQ[i]]; }
  function day(iso) { return iso ? String(iso).slice(0, 10) : ''; }
  var runById = {};
  D.runs.forEach(function (r) { runById[r.run_id] = r; });
  var newestRun = D.runs.length ? D.runs[D.runs.length - 1] : null;

  // sku · framework groups get a colour that stays the same whatever the filters
  var GROUPS = (function () {
    var seen = {};
    for (var i = 0; i < N; i++) seen[s('sku', i) + ' · ' + s('framework', i)] = 1;
    var keys = Object.keys(seen).sort();
    var out = {};
    keys.forEach(function (k, j) { out[k] = PALETTE[j % PALETTE.length]; });
    return out;
  })();

  // ---------- formatting ----------
  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return '—';
    var a = Math.abs(v);
    if (a >= 1000) return Math.round(v).toLocaleString('en-US');
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(3);
  }
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
      front: false, tokens: 'total', tier: D.tiers.length ? D.tiers[0] : '', price: {},
      metric: '', levels: '10,25,50,100,200', baseline: '', config: '', hlevel: '' };
  }
  // model and ISL/OSL defaults depend on the data: the most-measured ones
  function defaultModel() { return mostCommon(timeRows(state), function (i) { return s('model', i); }); }
  function defaultSeq(model) {
    var mc = code('model', model);
    var rows = timeRows(state).filter(function (i) { return C.model.codes[i] === mc; });
    return mostCommon(rows, seqOf);
  }
  function mostCommon(rows, key) {
    var cnt = {};
    rows.forEach(function (i) { if (n('valid', i) !== 0) { var k = key(i); cnt[k] = (cnt[k] || 0) + 1; } });
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
  // rows inside the time window: pinned run, as-of run, date range
  function timeRows(st) {
    var out = [];
    var runCode = st.run ? code('run_id', st.run) : -2;
    var asofDate = st.asof && runById[st.asof] ? runById[st.asof].date : null;
    var rd = C.run_date;
    for (var i = 0; i < N; i++) {
      if (runCode !== -2 && C.run_id.codes[i] !== runCode) continue;
      var date = rd.dict[rd.codes[i]];
      if (asofDate && date > asofDate) continue;
      if (st.from && day(date) < st.from) continue;
      if (st.to && day(date) > st.to) continue;
      out.push(i);
    }
    return out;
  }
  function facetOk(st, i, skip) {
    if (skip !== 'prec' && st.prec.length && st.prec.indexOf(s('precision', i)) < 0) return false;
    if (skip !== 'sku' && st.sku.length && st.sku.indexOf(s('sku', i)) < 0) return false;
    if (skip !== 'fw' && st.fw.length && st.fw.indexOf(s('framework', i)) < 0) return false;
    if (st.spec !== 'all') {
      var sp = has('spec_decoding') && s('spec_decoding', i) !== null;
      if ((st.spec === 'yes') !== sp) return false;
    }
    if (st.disagg !== 'all' && has('disaggregated')) {
      if ((st.disagg === 'yes') !== (n('disaggregated', i) === 1)) return false;
    }
    return true;
  }
  function modelSeqRows(st) {
    var mc = code('model', st.model), sc = SEQKEYS.indexOf(st.seq);
    var mcodes = C.model.codes;
    return timeRows(st).filter(function (i) { return mcodes[i] === mc && SEQ[i] === sc; });
  }
  function isValid(i) {
    return n('valid', i) === 1 && (!has('status') || s('status', i) === 'ok' || s('status', i) === null);
  }
  // "latest per config": for each config × ISL/OSL the newest run whose curve is complete
  // (every point valid), else the newest run with any valid point — so a run that lost
  // points never truncates a curve that an earlier complete run measured.
  function latestOnly(rows) {
    var groups = {};
    rows.forEach(function (i) {
      var g = C.config_id.codes[i] * 4096 + SEQ[i];
      var r = C.run_id.codes[i];
      var G = groups[g] || (groups[g] = {});
      var R = G[r] || (G[r] = { date: s('run_date', i), total: 0, valid: 0 });
      R.total++;
      if (isValid(i)) R.valid++;
    });
    var chosen = {};
    Object.keys(groups).forEach(function (g) {
      var runs = Object.keys(groups[g]).map(function (r) { return [r, groups[g][r]]; });
      runs.sort(function (a, b) { return a[1].date < b[1].date ? 1 : a[1].date > b[1].date ? -1 : 0; });
      var full = runs.filter(function (x) { return x[1].valid > 0 && x[1].valid === x[1].total; });
      var any = runs.filter(function (x) { return x[1].valid > 0; });
      var pick = full.length ? full[0] : any.length ? any[0] : null;
      if (pick) chosen[g] = +pick[0];
    });
    return rows.filter(function (i) {
      return chosen[C.config_id.codes[i] * 4096 + SEQ[i]] === C.run_id.codes[i];
    });
  }
  function selectRows(st) {
    var rows = modelSeqRows(st).filter(function (i) { return facetOk(st, i); });
    if (st.runs === 'latest' && !st.run) rows = latestOnly(rows);
    return rows.filter(isValid);
  }

  // ---------- metrics ----------
  function metricDef(key, st) {
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
  function interpolate(front, x) {
    for (var k = 0; k + 1 < front.length; k++) {
      var a = front[k], b = front[k + 1];
      if (a.x <= x && x <= b.x) return b.x === a.x ? Math.max(a.y, b.y) : a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x);
    }
    if (front.length && front[0].x === x) return front[0].y;
    return null;
  }

  // points of the current selection, grouped by sku · framework, with fronts
  function chartData(st, xKey, yKey) {
    var mx = metricDef(xKey, st), my = metricDef(yKey, st);
    var groups = {};
    selectRows(st).forEach(function (i) {
      var x = mx.get(i), y = my.get(i);
      if (x === null || y === null || !(x > 0) || !(y > 0) || !isFinite(x) || !isFinite(y)) return;
      var g = s('sku', i) + ' · ' + s('framework', i);
      (groups[g] || (groups[g] = [])).push({ x: x, y: y, i: i });
    });
    var keys = Object.keys(groups).sort();
    var out = keys.map(function (g) {
      var front = paretoFront(groups[g], mx.dir, my.dir);
      front.forEach(function (p) { p.front = true; });
      return { name: g, color: GROUPS[g], points: groups[g], front: front };
    });
    return { mx: mx, my: my, groups: out };
  }

  // ---------- hover text ----------
  function parallelism(i) {
    var tp = n('tp', i), ep = n('ep', i), pp = n('pp', i);
    var bits = ['TP' + tp];
    if (ep > 1) bits.push('EP' + ep);
    if (pp > 1) bits.push('PP' + pp);
    if (n('dp_attention', i) === 1) bits.push('DP-attention');
    var text = bits.join(' ');
    if (n('disaggregated', i) === 1) {
      text = 'disaggregated: prefill ' + (n('prefill_gpus', i) || '?') + ' GPUs / decode ' +
        (n('decode_gpus', i) || '?') + ' GPUs · ' + text;
    }
    var sp = s('spec_decoding', i);
    if (sp) text += ' · spec. decoding: ' + sp;
    return text;
  }

  // ---------- charts view ----------
  var current = { visible: [], mx: null, my: null };
  function symbolOf(i) {
    if (n('disaggregated', i) === 1) return 'diamond';
    if (s('spec_decoding', i)) return 'triangle-up';
    return 'circle';
  }
  // software GL (no GPU) rasterises every marker pixel: smaller markers for big clouds
  var markerSize = 7;
  function tracesFor(data, st) {
    var traces = [], visible = [];
    var hover = true;
    var total = data.groups.reduce(function (a, g) { return a + (st.front ? g.front : g.points).length; }, 0);
    markerSize = total > 30000 ? 3 : total > 5000 ? 5 : 7;
    data.groups.forEach(function (g) {
      var pts = st.front ? g.front : g.points;
      visible = visible.concat(pts);
      if (!st.front) {
        traces.push(scatter(g, pts, 'markers', hover, { kind: 'points' }, true));
        traces.push(scatter(g, g.front, 'lines', null, { kind: 'front' }, false));
      } else {
        traces.push(scatter(g, pts, 'lines+markers', hover, { kind: 'points' }, true));
      }
    });
    return { traces: traces, visible: visible };
  }
  // hover labels are drawn by the page (showTip) from the row index in customdata: building
  // a label per point up front costs seconds at 100,000 points
  function scatter(g, pts, mode, hover, meta, legend) {
    var symbols = pts.map(function (p) { return symbolOf(p.i); });
    var uniform = symbols.every(function (v) { return v === symbols[0]; });
    var t = {
      type: 'scattergl', mode: mode, name: g.name, legendgroup: g.name, showlegend: legend,
      meta: meta, x: pts.map(function (p) { return p.x; }), y: pts.map(function (p) { return p.y; }),
      line: { color: g.color, width: 2 },
      marker: { color: g.color, size: markerSize, opacity: meta.kind === 'points' && mode === 'markers' ? 0.55 : 1,
        symbol: uniform ? symbols[0] || 'circle' : symbols }
    };
    if (hover) { t.customdata = pts.map(function (p) { return p.i; }); t.hoverinfo = 'none'; }
    else t.hoverinfo = 'skip';
    return t;
  }
  function showTip(ev) {
    var p = ev.points && ev.points[0];
    var tip = el('tip');
    if (!p || typeof p.customdata !== 'number') { tip.hidden = true; return; }
    var i = p.customdata, m = current;
    tip.innerHTML = '<b>' + esc(s('sku', i) + ' · ' + s('framework', i)) + '</b> ' + esc(s('precision', i)) +
      '<br>' + esc(parallelism(i)) + '<br>' + esc(n('gpus', i)) + ' GPUs · concurrency ' + esc(n('concurrency', i)) +
      '<br>' + esc(m.mx.unit) + ': ' + fmt(p.x) + ' · ' + esc(m.my.unit) + ': ' + fmt(p.y) +
      '<br>image: ' + esc(s('image', i)) + '<br>run ' + esc(s('run_id', i)) + ' · ' + esc(day(s('run_date', i))) +
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
  function layoutFor(data, chart) {
    return {
      margin: { l: 70, r: 20, t: 10, b: 60 }, hovermode: 'closest', dragmode: 'zoom',
      xaxis: { title: { text: data.mx.title }, type: data.mx.log ? 'log' : 'linear', zeroline: false,
        gridcolor: '#e6e9ee' },
      yaxis: { title: { text: data.my.title }, type: data.my.log ? 'log' : 'linear', zeroline: false,
        gridcolor: '#e6e9ee', rangemode: data.my.log ? 'normal' : 'tozero', dtick: data.my.log ? 'D2' : undefined },
      // the legend sits outside the plot so it never hides points
      legend: { orientation: 'v', x: 1.01, xanchor: 'left', y: 1, title: { text: 'GPU · framework' } },
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
    el('c-tokens').value = state.tokens;
    var data = chartData(state, chart.x, chart.y);
    var tr = tracesFor(data, state);
    current = { visible: tr.visible, mx: data.mx, my: data.my, chart: chart };
    var gd = el('chart');
    el('chart-title').textContent = chart.label + ': ' + data.my.title + ' against ' + data.mx.title +
      ', ' + tr.visible.length + ' points';
    var nFront = data.groups.reduce(function (a, g) { return a + g.front.length; }, 0);
    var nAll = data.groups.reduce(function (a, g) { return a + g.points.length; }, 0);
    el('status').textContent = state.front
      ? 'Showing ' + tr.visible.length + ' Pareto-front points of ' + nAll + ' in ' + data.groups.length + ' GPU · framework groups. ' + runsNote()
      : 'Showing ' + nAll + ' points in ' + data.groups.length + ' GPU · framework groups, ' + nFront + ' on their Pareto fronts (lines). ' + runsNote();
    el('legend-note').textContent = legendNote(data);
    if (!tr.visible.length) {
      if (gd.data) Plotly.purge(gd);
      gd.innerHTML = '<p class="empty">No measured points match these filters.</p>';
      gd.data = [];
      return;
    }
    if (!gd.data || !gd.data.length) gd.innerHTML = '';
    Plotly.react(gd, tr.traces, layoutFor(data, chart), PLOT_CONFIG).then(function () {
      if (!TIMING.firstChart) { TIMING.firstChart = performance.now(); gd.setAttribute('data-ready', '1'); }
      gd.setAttribute('data-points', String(tr.visible.length));
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
  }
  function runsNote() {
    if (state.run) return 'Only run ' + state.run + '.';
    var base = state.runs === 'latest' ? 'Newest complete run per configuration' : 'All runs';
    return base + (state.asof ? ' up to run ' + state.asof + '.' : '.');
  }
  function legendNote(data) {
    var bits = ['Lines: Pareto front of each GPU · framework (' +
      (data.my.dir > 0 ? 'higher' : 'lower') + ' ' + data.my.unit + ' and ' +
      (data.mx.dir > 0 ? 'higher' : 'lower') + ' ' + data.mx.unit + ' is better).'];
    bits.push('● single pool  ◆ disaggregated prefill/decode  ▲ speculative decoding. Click a point for details.');
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

  function showDetail(i) {
    var box = el('detail');
    var rid = s('run_id', i), run = runById[rid];
    var rows = [
      ['GPU · framework', s('sku', i) + ' · ' + s('framework', i)],
      ['Model', s('model', i) + ' (' + s('precision', i) + ')'],
      ['Input / output', seqLabel(seqOf(i))],
      ['Parallelism', parallelism(i)], ['GPUs', n('gpus', i)], ['Concurrency', n('concurrency', i)],
      ['Interactivity', fmt(n('interactivity_median', i)) + ' tok/s/user'],
      ['Throughput', fmt(n('tput_per_gpu', i)) + ' tok/s/GPU (output ' + fmt(n('output_tput_per_gpu', i)) + ')'],
      ['Latency', 'median end-to-end ' + fmt(n('e2el_median_s', i)) + ' s · p99 TTFT ' + fmt(n('ttft_p99_s', i)) + ' s'],
      ['Image', s('image', i) + (s('image_digest', i) ? ' @ ' + s('image_digest', i).slice(0, 19) + '…' : '')],
      ['Run', null]
    ];
    var html = '<strong>Point ' + esc(s('point_id', i) || i) + '</strong><dl>';
    rows.forEach(function (r) {
      var v = r[1] === null
        ? '<a data-testid="detail-run-link" href="' + esc(hrefFor({ view: 'run', id: rid })) + '">' + esc(rid) + '</a> · ' + esc(day(s('run_date', i))) + (run && run.event ? ' (' + esc(run.event) + ')' : '')
        : esc(r[1]);
      html += '<dt>' + esc(r[0]) + '</dt><dd>' + v + '</dd>';
    });
    html += '</dl><a data-testid="detail-history-link" href="' +
      esc(hrefFor({ view: 'history', config: s('config_id', i) })) + '">History of this configuration</a>';
    box.innerHTML = html;
    box.hidden = false;
  }

  // ---------- CSV of exactly the shown points ----------
  var CSV_COLS = ['point_id', 'run_id', 'run_date', 'model', 'isl', 'osl', 'precision', 'sku',
    'framework', 'image', 'tp', 'ep', 'pp', 'dp_attention', 'gpus', 'prefill_gpus', 'decode_gpus',
    'disaggregated', 'spec_decoding', 'concurrency', 'interactivity_median', 'e2el_median_s',
    'ttft_p99_s', 'tput_per_gpu', 'output_tput_per_gpu'];
  function csvText() {
    var mx = current.mx, my = current.my;
    var cols = CSV_COLS.filter(has);
    var header = cols.map(function (c) { return D.units[c] ? c + ' [' + D.units[c] + ']' : c; });
    var extra = [mx, my].filter(function (m) { return cols.indexOf(m.name) < 0; });
    extra.forEach(function (m) { header.push(m.name + ' [' + m.unit + ']'); });
    if (my.price) header.push('usd_per_gpu_hour [USD/GPU-h]');
    header.push('on_pareto_front');
    var lines = [header.map(csvCell).join(',')];
    current.visible.forEach(function (p) {
      var i = p.i;
      var row = cols.map(function (c) {
        var v = C[c];
        if (v && v.dict) return s(c, i);
        if (c === 'dp_attention' || c === 'disaggregated') return v[i] === null ? '' : v[i] === 1 ? 'true' : 'false';
        return v[i];
      });
      extra.forEach(function (m) { row.push(m === mx ? p.x : p.y); });
      if (my.price) row.push(my.priceOf(i));
      row.push(p.front ? 'true' : 'false');
      lines.push(row.map(csvCell).join(','));
    });
    return lines.join('\r\n') + '\r\n';
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
    var trows = timeRows(state);
    fillSelect(el('f-model'), countBy(trows, function (i) { return s('model', i); }), state.model, String);
    var mc = code('model', state.model);
    var mrows = trows.filter(function (i) { return C.model.codes[i] === mc; });
    fillSelect(el('f-seq'), countBy(mrows, seqOf), state.seq, seqLabel);
    var srows = mrows.filter(function (i) { return seqOf(i) === state.seq; });
    LIST_KEYS.forEach(function (k) {
      var counts = countBy(srows.filter(function (i) { return facetOk(state, i, k); }),
        function (i) { return s(LIST_COLS[k], i); });
      fillChecks(k, counts);
    });
    el('f-spec').value = state.spec;
    el('f-disagg').value = state.disagg;
    el('f-from').value = state.from;
    el('f-to').value = state.to;
    var runsSel = el('f-runs');
    var opts = [['latest', 'newest per config'], ['all', 'all runs']];
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
  function countBy(rows, key) {
    var out = {};
    rows.forEach(function (i) { if (isValid(i)) { var k = key(i); if (k !== null) out[k] = (out[k] || 0) + 1; } });
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
    ['energy', 'Energy per token'], ['mw', 'Tokens/s per MW']];
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
    var data = chartData(state, 'interactivity', metric);
    var names = data.groups.map(function (g) { return g.name; });
    var base = names.indexOf(state.baseline) >= 0 ? state.baseline : names[0];
    el('cmp-baseline').innerHTML = names.map(function (g) { return '<option>' + esc(g) + '</option>'; }).join('');
    el('cmp-baseline').value = base || '';
    var lv = levels();
    var table = data.groups.map(function (g) { return lv.map(function (x) { return interpolate(g.front, x); }); });
    var bi = names.indexOf(base), dir = data.my.dir;
    var best = lv.map(function (_, c) {
      var b = null;
      table.forEach(function (row) { if (row[c] !== null && (b === null || row[c] * dir > b * dir)) b = row[c]; });
      return b;
    });
    var html = '<table class="grid"><caption>' + esc(data.my.title) + ' (' + esc(data.my.unit) + ') on each ' +
      'Pareto front at a fixed interactivity; ' + (dir > 0 ? 'higher' : 'lower') + ' is better.</caption><thead><tr><th scope="col">GPU · framework</th>' +
      lv.map(function (x) { return '<th scope="col">' + String(+x.toPrecision(4)) + ' tok/s/user</th>'; }).join('') + '</tr></thead><tbody>';
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
        html += '<td class="num' + (isBest ? ' best' : '') + '"' + (isBest ? ' data-best="1" title="best in column"' : '') + '>' +
          fmt(v) + rel + (isBest ? '<span class="sr"> (best)</span>' : '') + '</td>';
      });
      html += '</tr>';
    });
    html += '</tbody></table>';
    if (!data.groups.length) html = '<p class="empty">No measured points match these filters.</p>';
    el('compare-table').innerHTML = html;
  }

  // ---------- history view ----------
  function configLabel(i) {
    var bits = [s('sku', i), s('framework', i), s('precision', i), parallelism(i)];
    return bits.join(' · ');
  }
  // the geometric middle of the measured interactivity range, to 2 significant digits
  function autoLevel(runs) {
    var lo = Infinity, hi = 0;
    runs.forEach(function (r) { r.pts.forEach(function (p) { lo = Math.min(lo, p.x); hi = Math.max(hi, p.x); }); });
    return hi > 0 ? +Math.sqrt(lo * hi).toPrecision(2) : 50;
  }
  function renderHistory() {
    var rows = modelSeqRows(Object.assign({}, state, { run: '' })).filter(function (i) { return facetOk(state, i); });
    var configs = {};
    rows.forEach(function (i) { if (isValid(i)) configs[s('config_id', i)] = configs[s('config_id', i)] || configLabel(i); });
    var ids = Object.keys(configs).sort(function (a, b) { return configs[a] < configs[b] ? -1 : 1; });
    var cfg = ids.indexOf(state.config) >= 0 ? state.config : ids[0];
    el('h-config').innerHTML = ids.map(function (k) { return '<option value="' + esc(k) + '">' + esc(configs[k]) + '</option>'; }).join('');
    el('h-config').value = cfg || '';
    var gd = el('h-chart');
    if (!cfg) {
      el('h-status').textContent = 'No configuration matches these filters.';
      if (gd.data) Plotly.purge(gd);
      el('h-table').innerHTML = '';
      return;
    }
    var cc = code('config_id', cfg);
    var byRun = {};
    rows.forEach(function (i) {
      if (C.config_id.codes[i] !== cc || !isValid(i)) return;
      var r = s('run_id', i);
      (byRun[r] || (byRun[r] = { run: r, date: s('run_date', i), image: s('image', i), pts: [] })).pts
        .push({ x: C.interactivity_median[i], y: C.tput_per_gpu[i], i: i });
    });
    var runs = Object.keys(byRun).map(function (k) { return byRun[k]; })
      .sort(function (a, b) { return a.date < b.date ? -1 : 1; });
    var level = state.hlevel || autoLevel(runs);
    el('h-level').value = level;
    runs.forEach(function (r, k) {
      r.peak = Math.max.apply(null, r.pts.map(function (p) { return p.y; }));
      r.at = interpolate(paretoFront(r.pts, 1, 1), level);
      r.changed = k > 0 && r.image !== runs[k - 1].image;
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
    runs.forEach(function (r) {
      if (!r.changed) return;
      shapes.push({ type: 'line', xref: 'x', yref: 'paper', x0: r.date, x1: r.date, y0: 0, y1: 1,
        line: { color: '#8a5a00', dash: 'dash', width: 1.5 } });
      notes.push({ xref: 'x', yref: 'paper', x: r.date, y: 1, yanchor: 'bottom', showarrow: false,
        text: 'image → ' + esc(r.image.split('/').pop()), font: { size: 11, color: '#8a5a00' } });
    });
    Plotly.react(gd, traces, {
      margin: { l: 70, r: 20, t: 40, b: 50 }, shapes: shapes, annotations: notes,
      xaxis: { title: { text: 'Run date' }, type: 'date', tickformat: '%Y-%m-%d',
        range: [t0 - dayMs / 2, t1 + dayMs / 2], dtick: t1 - t0 <= 20 * dayMs ? dayMs : undefined },
      yaxis: { title: { text: 'Tokens (input + output) per second per GPU' }, rangemode: 'tozero' },
      legend: { orientation: 'h', y: -0.2 }, font: { family: 'system-ui, sans-serif', size: 13 }
    }, PLOT_CONFIG);
    el('h-status').textContent = runs.length + ' runs of ' + configs[cfg] + ' (' + state.model + ', ' +
      seqLabel(state.seq) + '); ' + shapes.length + ' image change' + (shapes.length === 1 ? '' : 's') + ' marked.';
    el('h-table').innerHTML = '<table class="grid"><caption>Runs of this configuration</caption><thead><tr>' +
      '<th scope="col">Run date</th><th scope="col">Run</th><th scope="col">Image</th><th scope="col">Points</th>' +
      '<th scope="col">Peak tok/s/GPU</th><th scope="col">tok/s/GPU at ' + lvl(level) + ' tok/s/user</th></tr></thead><tbody>' +
      runs.slice().reverse().map(function (r) {
        return '<tr><td>' + esc(day(r.date)) + '</td><td><a href="' + esc(hrefFor({ view: 'run', id: r.run })) + '">' +
          esc(r.run) + '</a></td><td>' + esc(r.image) + (r.changed ? ' <span class="changed" data-testid="image-changed">changed</span>' : '') +
          '</td><td class="num">' + r.pts.length + '</td><td class="num">' + fmt(r.peak) + '</td><td class="num">' + fmt(r.at) + '</td></tr>';
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
    body.innerHTML = meta + (detail.jobs.length ? table : '<p>This run has no coverage manifest.</p>');
  }

  // ---------- top-level render and wiring ----------
  function needsExtra() {
    if (state.view === 'charts') return ['cost', 'energy', 'mw'].indexOf(state.chart) >= 0;
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
    el('asof').textContent = 'Data as of ' + last + ' · ' + D.runs.length + ' runs · ' + N.toLocaleString('en-US') + ' measured points';
    el('foot').textContent = 'Built by ixci ' + D.ixci_version + ' from the results branch. Values are medians over each ' +
      'point\'s requests; throughput is per GPU of the whole deployment (prefill + decode GPUs when disaggregated).';
  }

  // for tests and scripts: the row behind a plotted point, and the lazy columns
  window.ixci = {
    loadExtra: loadExtra,
    pointId: function (i) { return s('point_id', i); },
    state: function () { return JSON.parse(JSON.stringify(state)); }
  };

  state = parseUrl(location.search);
  normalize();
  header();
  wire();
  render();
  TIMING.rendered = performance.now();
})();
