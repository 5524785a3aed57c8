// netuse serve's page. It reads /api/v1/now every few seconds and
// /api/v1/history when a switch changes, and draws the charts as SVG.
// Names (programs, users, containers, interfaces) are data: they reach the
// page only through textContent and attribute values, never as markup.
'use strict';

(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const POLL_MS = 3000; // how often "now" asks serve for its totals
  const HISTORY_MS = 60000; // how often the history is read again: serve writes it every minute
  const TOP = 8; // series of a chart before the rest fold into (other)
  const OTHER = '(other)';
  // Each range asks the API what netuse history --since S --every E asks.
  const RANGES = {
    // span: the time the chart's axis shows, ending now, whatever the
    // buckets kept: a day serve did not run is a gap, not a missing bar.
    day: { since: '24h', every: '5m', what: 'last 24 hours, per 5 minutes', span: 24 * 3600e3 },
    month: { since: '30d', every: 'day', what: 'last 30 days, per day', span: 30 * 86400e3 },
    year: { since: '1y', every: 'month', what: 'last year, per month', span: 365 * 86400e3 },
  };
  const state = { by: 'program', range: 'day', bits: false, si: false, history: null };
  const $ = (id) => document.getElementById(id);

  // el makes an HTML element with text content (never markup).
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // size is the CLI's renderer.size: bytes (or bits) in IEC or SI units.
  function size(bytes, perSecond) {
    const base = state.si ? 1000 : 1024;
    const units = state.si
      ? (state.bits ? ['bit', 'kbit', 'Mbit', 'Gbit', 'Tbit', 'Pbit'] : ['B', 'kB', 'MB', 'GB', 'TB', 'PB'])
      : (state.bits ? ['bit', 'Kibit', 'Mibit', 'Gibit', 'Tibit', 'Pibit'] : ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
    let v = state.bits ? bytes * 8 : bytes;
    let i = 0;
    while (v >= base && i < units.length - 1) { v /= base; i++; }
    const s = (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
    return perSecond ? s + '/s' : s;
  }

  // visible is the CLI's visible (render.go): control and format
  // characters (an escape sequence, a right-to-left override) as Go
  // escapes, so that "\x1b[2J" shows as those characters.
  function visible(s) {
    return s.replace(/[\u0000-\u001f\u007f-\u009f\p{Cf}]/gu, (c) => {
      if (c === '\n') return '\\n';
      if (c === '\t') return '\\t';
      if (c === '\r') return '\\r';
      const n = c.codePointAt(0);
      return n < 0x80 ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
    });
  }

  // label is how a key's value shows: "" (a process in no container) as
  // (none), the rest as visible makes it.
  function label(v) { return v === '' || v === undefined ? '(none)' : visible(v); }

  async function fetchText(url) {
    const r = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    const text = await r.text();
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = JSON.parse(text).error; } catch (e) { /* not JSON: keep the status */ }
      throw new Error(msg);
    }
    return text;
  }

  // ---- now ----

  let prev = null; // the last poll: {at: ms, ifaces: Map, groups: Map}

  function rows(list, keyOf) {
    const m = new Map();
    for (const r of list) m.set(keyOf(r), r);
    return m;
  }

  function groupName(g, by) {
    return by.map((k) => label(g.keys[k])).join(' / ');
  }

  function nowRow(name, rx, tx, r) {
    const tr = el('tr');
    tr.append(el('th', name, { scope: 'row' }));
    for (const [v, ps] of [[rx, true], [tx, true], [r.rx_total, false], [r.tx_total, false]]) {
      tr.append(el('td', v === null ? '–' : size(v, ps), { 'data-bytes': v === null ? '' : String(v) }));
    }
    return tr;
  }

  // rate is bytes a second between the last poll's row o (if any) and r.
  function rate(r, o, key, dt) {
    if (!o || dt <= 0) return null;
    return Math.max(0, (r[key] - o[key]) / dt);
  }

  function drawNow(n) {
    const at = performance.now();
    const ifaces = rows(n.ifaces, (r) => r.iface);
    const groups = rows(n.groups, (r) => groupName(r, n.by));
    const dt = prev ? (at - prev.at) / 1000 : 0;
    const ib = $('now-ifaces').tBodies[0];
    const ibRows = [];
    for (const [name, r] of ifaces) {
      const o = prev && prev.ifaces.get(name);
      ibRows.push(nowRow(label(name), rate(r, o, 'rx_total', dt), rate(r, o, 'tx_total', dt), r));
    }
    ib.replaceChildren(...ibRows);
    const list = [];
    for (const [name, r] of groups) {
      const o = prev && prev.groups.get(name);
      const rx = rate(r, o, 'rx_total', dt);
      const tx = rate(r, o, 'tx_total', dt);
      list.push({ name, r, rx, tx, sort: (rx || 0) + (tx || 0), total: r.rx_total + r.tx_total });
    }
    list.sort((a, b) => b.sort - a.sort || b.total - a.total || (a.name < b.name ? -1 : 1));
    $('now-groups').tBodies[0].replaceChildren(...list.slice(0, 10).map((g) => nowRow(g.name, g.rx, g.tx, g.r)));
    const key = n.by.join(', ');
    $('now-groups-key').textContent = key.charAt(0).toUpperCase() + key.slice(1);
    $('now-groups-caption').textContent = n.by.length === 1 ? 'Top ' + n.by[0] + 's' : 'Top groups by ' + key;
    let status = 'As of ' + new Date(n.ts).toLocaleTimeString() + '.';
    if (!n.capture) status += ' Serve does not capture packets (' + n.off + '): interfaces only; run it as root or with the capabilities the README gives.';
    $('now-status').textContent = status;
    prev = { at, ifaces, groups };
    if (state.history === null) {
      state.history = n.history;
      if (!n.history) {
        const off = $('history-off');
        off.textContent = 'History is off: netuse serve runs with --db off. Start it without --db off (or with --db PATH) to keep usage over time; netuse history reads the same file.';
        off.hidden = false;
        $('apps').hidden = true;
        $('ifaces').hidden = true;
      } else {
        loadHistory();
      }
    }
  }

  async function pollNow() {
    try {
      drawNow(JSON.parse(await fetchText('api/v1/now')));
    } catch (e) {
      $('now-status').textContent = 'Could not read serve: ' + e.message;
    }
    setTimeout(pollNow, POLL_MS);
  }

  // ---- history ----

  // fold turns the API's records into a chart's series: the TOP keys of
  // most traffic over the range, the rest summed as (other).
  function fold(recs, by) {
    const totals = new Map();
    const buckets = [];
    const ends = new Map(); // each bucket's end, as the API's "to"
    for (const r of recs) {
      ends.set(r.from, r.to);
      const k = label(r[by]);
      const t = totals.get(k) || { rx: 0, tx: 0 };
      t.rx += r.rx_bytes; t.tx += r.tx_bytes;
      totals.set(k, t);
      if (buckets.length === 0 || buckets[buckets.length - 1] !== r.from) buckets.push(r.from);
    }
    let names = [...totals.keys()].filter((k) => k !== OTHER);
    names.sort((a, b) => (totals.get(b).rx + totals.get(b).tx) - (totals.get(a).rx + totals.get(a).tx) || (a < b ? -1 : a > b ? 1 : 0));
    const shown = names.length > TOP + 1 ? names.slice(0, TOP) : names;
    const kept = new Set(shown);
    const series = shown.slice();
    if (shown.length < totals.size) series.push(OTHER);
    const cells = new Map(buckets.map((b) => [b, new Map()]));
    const sums = new Map(series.map((s) => [s, { rx: 0, tx: 0 }]));
    for (const r of recs) {
      const k = label(r[by]);
      const s = kept.has(k) ? k : OTHER;
      const c = cells.get(r.from);
      const t = c.get(s) || { rx: 0, tx: 0 };
      t.rx += r.rx_bytes; t.tx += r.tx_bytes;
      c.set(s, t);
      sums.get(s).rx += r.rx_bytes; sums.get(s).tx += r.tx_bytes;
    }
    return { buckets, ends, series, cells, sums };
  }

  function cls(series, i) { return series[i] === OTHER ? 'sother' : 's' + (i % 9); }

  function bucketLabel(from, every) {
    const d = new Date(from);
    if (every === 'month') return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short' });
    if (every === 'day') return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }

  // drawChart draws a bar per bucket where its time is on an axis of the
  // range's span up to now (or the buckets' own, where they go beyond).
  function drawChart(box, f, range) {
    const every = range.every;
    const W = 1000, H = 260, L = 80, B = 24, T = 8;
    const now = Date.now();
    let t0 = now - range.span, t1 = now;
    for (const b of f.buckets) {
      t0 = Math.min(t0, Date.parse(b));
      t1 = Math.max(t1, Date.parse(f.ends.get(b)));
    }
    const x = (t) => L + (t - t0) / (t1 - t0) * (W - L);
    let max = 0;
    for (const c of f.cells.values()) {
      let s = 0;
      for (const t of c.values()) s += t.rx + t.tx;
      max = Math.max(max, s);
    }
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    const y = (v) => H - B - (max ? v / max * (H - B - T) : 0);
    for (let i = 0; i <= 4; i++) {
      const v = max * i / 4;
      s.append(svg('line', { class: 'grid', x1: L, x2: W, y1: y(v), y2: y(v) }));
      const t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = size(v, false);
      s.append(t);
    }
    for (let i = 0; i < 6; i++) { // six labels, evenly in time
      const at = t0 + (t1 - t0) * i / 6;
      const t = svg('text', { x: x(at).toFixed(2), y: H - 6 });
      t.textContent = bucketLabel(new Date(at).toISOString(), every);
      s.append(t);
    }
    f.buckets.forEach((b) => {
      const c = f.cells.get(b);
      const bx = x(Date.parse(b));
      const bw = x(Date.parse(f.ends.get(b))) - bx;
      let base = 0;
      f.series.forEach((name, j) => {
        const t = c.get(name);
        if (!t) return;
        const v = t.rx + t.tx;
        const r = svg('rect', {
          class: cls(f.series, j), x: bx.toFixed(2), width: Math.max(bw - (bw > 4 ? 1 : 0), 0.5).toFixed(2),
          y: y(base + v).toFixed(2), height: (y(base) - y(base + v)).toFixed(2),
          'data-name': name, 'data-from': b, 'data-rx': String(t.rx), 'data-tx': String(t.tx),
        });
        const title = svg('title', {});
        title.textContent = name + ', ' + bucketLabel(b, every) + ': ' + size(v, false);
        r.append(title);
        s.append(r);
        base += v;
      });
    });
    box.querySelector('.chart').replaceChildren(s);
    box.querySelector('.legend').replaceChildren(...f.series.map((name, j) => {
      const li = el('li');
      li.append(el('span', null, { class: 'sw ' + cls(f.series, j) }), document.createTextNode(name));
      return li;
    }));
  }

  // drawTable writes a row per series: its bytes in each way over the
  // range; a header's button sorts by that column.
  function drawTable(box, f, keyName, what) {
    const table = box.querySelector('table');
    const cap = el('caption', keyName + ' usage, ' + what);
    const head = el('tr');
    const cols = [keyName, 'Received', 'Sent', 'Total'];
    cols.forEach((c, i) => {
      const th = el('th', null, { scope: 'col', 'aria-sort': 'none' });
      const b = el('button', c, { type: 'button' });
      b.addEventListener('click', () => sortBy(table, i));
      th.append(b);
      head.append(th);
    });
    const body = el('tbody');
    let rx = 0, tx = 0;
    f.series.forEach((name) => {
      const t = f.sums.get(name);
      rx += t.rx; tx += t.tx;
      const tr = el('tr', null, { 'data-name': name });
      tr.append(el('th', name, { scope: 'row' }));
      for (const v of [t.rx, t.tx, t.rx + t.tx]) tr.append(el('td', size(v, false), { 'data-bytes': String(v) }));
      body.append(tr);
    });
    if (f.series.length === 0) {
      const tr = el('tr');
      tr.append(el('td', 'No traffic kept in this range.', { colspan: '4' }));
      body.append(tr);
    }
    const foot = el('tfoot');
    const tr = el('tr');
    tr.append(el('td', 'total'));
    for (const v of [rx, tx, rx + tx]) tr.append(el('td', size(v, false), { 'data-bytes': String(v) }));
    foot.append(tr);
    const thead = el('thead');
    thead.append(head);
    table.replaceChildren(cap, thead, body, foot);
  }

  function sortBy(table, col) {
    const th = table.tHead.rows[0].cells[col];
    const asc = th.getAttribute('aria-sort') === 'descending' || (th.getAttribute('aria-sort') === 'none' && col === 0);
    for (const c of table.tHead.rows[0].cells) c.setAttribute('aria-sort', 'none');
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    const body = table.tBodies[0];
    const key = (r) => col === 0 ? r.cells[0].textContent : Number(r.cells[col].dataset.bytes);
    const sorted = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    body.replaceChildren(...sorted);
  }

  const cache = {}; // by URL: the records, kept for a change of units

  async function records(url) {
    if (!cache[url]) {
      const text = await fetchText(url);
      cache[url] = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    }
    return cache[url];
  }

  function historyURL(by) {
    const r = RANGES[state.range];
    return 'api/v1/history?since=' + encodeURIComponent(r.since) + '&every=' + encodeURIComponent(r.every) + '&by=' + encodeURIComponent(by);
  }

  let loading = 0; // the latest load; an older one that ends later draws nothing
  async function loadHistory() {
    if (!state.history) return;
    const mine = ++loading;
    const r = RANGES[state.range];
    const status = $('history-status');
    status.textContent = 'Loading…';
    try {
      const [apps, ifaces] = await Promise.all([records(historyURL(state.by)), records(historyURL('iface'))]);
      if (mine !== loading) return;
      const keyName = state.by.charAt(0).toUpperCase() + state.by.slice(1);
      $('apps-h').textContent = 'Usage per ' + state.by + ', ' + r.what;
      $('ifaces-h').textContent = 'Usage per interface, ' + r.what;
      const fa = fold(apps, state.by);
      drawChart($('apps'), fa, r);
      drawTable($('apps'), fa, keyName, r.what);
      const fi = fold(ifaces, 'iface');
      drawChart($('ifaces'), fi, r);
      drawTable($('ifaces'), fi, 'Interface', r.what);
      status.textContent = 'Up to serve\'s last report; read again every minute.';
      document.body.dataset.loaded = state.by + ' ' + state.range + ' ' + (state.bits ? 'bits' : 'bytes') + ' ' + (state.si ? 'si' : 'iec');
    } catch (e) {
      if (mine === loading) status.textContent = 'Could not read the history: ' + e.message;
    }
  }

  function switches() {
    const by = $('by').value, range = $('range').value;
    const refetch = by !== state.by || range !== state.range;
    state.by = by; state.range = range;
    state.bits = $('units').value === 'bits';
    state.si = $('prefix').value === 'si';
    if (refetch) for (const k in cache) delete cache[k];
    loadHistory();
  }

  document.addEventListener('DOMContentLoaded', () => {
    for (const id of ['by', 'range', 'units', 'prefix']) $(id).addEventListener('change', switches);
    $('controls').addEventListener('submit', (e) => e.preventDefault());
    // Browsers keep a form's values on reload: start from them.
    state.by = $('by').value; state.range = $('range').value;
    state.bits = $('units').value === 'bits'; state.si = $('prefix').value === 'si';
    pollNow();
    // The history's file takes serve's writes every minute: follow them.
    setInterval(() => {
      for (const k in cache) delete cache[k];
      loadHistory();
    }, HISTORY_MS);
  });
})();
