// drp report page. Every value from the run is untrusted text: it only ever reaches the page through
// text nodes / textContent (see el() and txt()); never innerHTML. Trace details live in per-trace JSON
// blocks that are parsed only when a trace is opened, and the list renders only its visible rows.
(function () {
  'use strict';

  var ROW_H = 58;          // px, fixed so the list can be virtualised
  var OVERSCAN = 8;        // rows rendered above and below the viewport
  var ACTIONS = ['KEEP', 'DELETE', 'COMPRESS', 'MERGE'];

  var INDEX = JSON.parse(document.getElementById('drp-index').textContent);
  var ROWS = INDEX.rows;
  var VS = INDEX.vs;
  var shown = [];          // positions in ROWS passing the filters, in display order
  var current = -1;        // position in ROWS of the open trace
  var cache = new Map();   // a few parsed detail blocks

  // ---------- small helpers ----------
  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function txt(value) { return value === null || value === undefined ? '' : String(value); }
  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function money(value, currency) {
    if (value === null || value === undefined) return 'unknown';
    var symbol = currency === 'USD' || !currency ? '$' : currency + ' ';
    return symbol + num(value, value < 1 ? 4 : 2);
  }
  function num(n, digits) {
    if (n === null || n === undefined || isNaN(n)) return '–';
    return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function pct(x, digits) { return x === null || x === undefined || isNaN(x) ? '–' : (100 * x).toFixed(digits === undefined ? 1 : digits) + '%'; }
  function reduction(before, after) { return before > 0 && after !== null && after !== undefined ? 1 - after / before : null; }
  function duration(s) {
    if (s === null || s === undefined) return '–';
    if (s < 120) return num(s, 1) + ' s';
    if (s < 7200) return num(s / 60, 1) + ' min';
    return num(s / 3600, 2) + ' h';
  }
  function pretty(value) { return typeof value === 'string' ? value : JSON.stringify(value, null, 2); }
  function badge(text, cls) { return el('span', 'badge ' + (cls || ''), text); }
  function statusBadge(status) { return badge(status || 'unknown', 'st-' + String(status || 'unknown').replace(/[^a-z]/gi, '')); }
  function actionClass(action) {
    var a = String(action || '').toUpperCase();
    return ACTIONS.indexOf(a) >= 0 ? 'act-' + a : (a.indexOf('COMPRESS') >= 0 ? 'act-COMPRESS' : 'act-OTHER');
  }
  function pre(text, cls) { return el('pre', cls || 'text', txt(text)); }
  function kv(pairs) {
    var dl = el('dl', 'kv');
    pairs.forEach(function (p) { if (p) add(dl, [el('dt', null, p[0]), el('dd', null, p[1])]); });
    return dl;
  }
  function fold(summary, build, open) {
    // A <details> whose body is built the first time it is opened.
    var d = el('details', 'fold');
    var s = el('summary', null, summary);
    d.appendChild(s);
    var built = false;
    function ensure() { if (!built && d.open) { built = true; add(d, build()); } }
    d.addEventListener('toggle', ensure);
    if (open) { d.open = true; ensure(); }
    return d;
  }
  function table(head, rows, cls) {
    var t = el('table', cls || 'grid');
    var tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(el('thead', null, tr));
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c) { row.appendChild(el('td', null, c)); });
      body.appendChild(row);
    });
    t.appendChild(body);
    return t;
  }
  function bars(entries, cls) {
    // entries: [label, count]; horizontal bars scaled to the largest count
    var max = Math.max.apply(null, entries.map(function (e) { return e[1]; }).concat([1]));
    var box = el('div', 'bars ' + (cls || ''));
    entries.forEach(function (e) {
      var fill = el('span', 'bar-fill ' + (e[2] || ''));
      fill.style.width = (100 * e[1] / max).toFixed(1) + '%';
      add(box, el('div', 'bar-row', el('span', 'bar-label', e[0]), el('span', 'bar-track', fill), el('span', 'bar-n', num(e[1]))));
    });
    return box;
  }

  // ---------- header ----------
  function histogram(red) {
    // Bar 0 counts traces whose thinking grew; it sits apart from the 0–100% bins.
    var h = red.histogram, counts = [h.negative].concat(h.bins);
    var W = 340, H = 96, pad = 16, gap = 10, bw = (W - 2 * pad - gap) / counts.length;
    function x0(i) { return pad + i * bw + (i > 0 ? gap : 0); }
    var max = Math.max.apply(null, counts.concat([1]));
    var box = svg('svg', { viewBox: '0 0 ' + W + ' ' + (H + 16), width: W, height: H + 16, role: 'img', class: 'histogram' });
    var label = svg('title'); label.textContent = 'Thinking-token reduction per accepted trace'; box.appendChild(label);
    box.appendChild(svg('line', { x1: pad, x2: W - pad, y1: H, y2: H, class: 'base' }));
    counts.forEach(function (c, i) {
      var bh = (H - 14) * c / max;
      var r = svg('rect', { x: x0(i) + 1, y: H - bh, width: Math.max(bw - 2, 1), height: bh, class: i === 0 ? 'neg' : 'pos' });
      var t = svg('title');
      t.textContent = (i === 0 ? 'below 0% (pruned is longer)' : (5 * (i - 1)) + '–' + (5 * i) + '%') + ': ' + c + ' traces';
      r.appendChild(t);
      box.appendChild(r);
    });
    [[x0(0) + bw / 2, '<0', 'middle'], [x0(1), '0%', 'start'], [x0(11), '50%', 'middle'], [x0(21), '100%', 'end']].forEach(function (m) {
      var t = svg('text', { x: m[0], y: H + 12, class: 'axis', 'text-anchor': m[2] });
      t.textContent = m[1];
      box.appendChild(t);
    });
    // mean label to the left of its line, median to the right, so close values stay readable
    [['mean', red.mean, 'end', -3], ['median', red.median, 'start', 3]].forEach(function (m, k) {
      if (m[1] === null || m[1] === undefined || m[1] < 0) return;
      var x = x0(1) + Math.min(m[1], 1) * (counts.length - 1) * bw;
      box.appendChild(svg('line', { x1: x, x2: x, y1: 2, y2: H, class: 'marker m' + k }));
      var t = svg('text', { x: x + m[3], y: 9 + 10 * k, class: 'axis m' + k, 'text-anchor': m[2] });
      t.textContent = m[0] + ' ' + pct(m[1], 0);
      box.appendChild(t);
    });
    return box;
  }

  function runCard(info, s, label) {
    var card = el('section', 'run-card');
    var config = info.config && typeof info.config === 'object' ? info.config : {};
    add(card, el('h2', null, label ? el('span', 'run-label', label) : null, txt(info.id)));
    var teacher = [info.teacher_model, info.teacher_url].filter(Boolean).join(' @ ') || (config.teacher && pretty(config.teacher)) || '–';
    var statuses = Object.keys(s.status || {});
    add(card, kv([
      ['policy', txt(info.policy || (config.policy && config.policy.name) || '–')],
      ['teacher', teacher],
      ['tokenizer', txt(info.tokenizer || config.tokenizer || '–')],
      ['input', txt(info.input || config.input || '–')],
      ['traces', [num(s.traces), ' '].concat(statuses.map(function (k) { return [statusBadge(k), ' ', num(s.status[k]), ' ']; }))],
      ['created', txt(info.created_at || '–') + (info.updated_at && info.updated_at !== info.created_at ? ' (updated ' + info.updated_at + ')' : '')],
      ['wall time', duration(info.wall_seconds) + (info.sessions > 1 ? ' over ' + info.sessions + ' sessions' : '') +
        (s.seconds && s.seconds.mean !== undefined && s.seconds.mean !== null ? ' · ' + num(s.seconds.mean, 2) + ' s per trace (max ' + num(s.seconds.max, 1) + ' s)' : '')],
      ['teacher tokens', s.teacher && s.teacher.calls !== undefined ? teacherTokens(s.teacher) : '–'],
      ['teacher cost', s.cost && s.cost.price ? money(s.cost.total, s.cost.currency) + ' · ' +
        money(s.cost.per_trace, s.cost.currency) + ' per trace (' + s.cost.described + ')' +
        (s.cost.unknown_traces ? ' · ' + num(s.cost.unknown_traces) + ' traces without token usage' : '')
        : 'unknown (no price: drp run/stats --teacher-price)'],
      (s.endpoints || []).length ? ['endpoints', table(['endpoint', 'calls', 'errors', 'mean latency'], s.endpoints.map(function (e) {
        return [txt(e.endpoint), num(e.calls), num(e.errors), e.mean_latency_ms === null || e.mean_latency_ms === undefined ? '–' : num(e.mean_latency_ms, 1) + ' ms'];
      }))] : null,
    ]));

    var stats = el('div', 'stats');
    var red = s.reduction;
    if (red) {
      add(stats, el('div', 'stat-block',
        el('h3', null, 'Thinking-token reduction (accepted, n=' + num(red.n) + ')'),
        el('div', 'big', el('span', null, 'mean ', el('b', null, pct(red.mean))), ' ', el('span', null, 'median ', el('b', null, pct(red.median))), ' ',
          el('span', null, 'overall ', el('b', null, pct(red.total)))),
        el('div', 'small', 'tokens per trace: mean ' + num(red.tokens_before_mean) + ' → ' + num(red.tokens_after_mean) +
          ', median ' + num(red.tokens_before_median) + ' → ' + num(red.tokens_after_median) +
          (red.response_total !== null && red.response_total !== undefined ? ' · whole response −' + pct(red.response_total) : '')),
        histogram(red)));
    } else {
      add(stats, el('div', 'stat-block', el('h3', null, 'Thinking-token reduction'), el('p', 'muted', 'no accepted trace with token counts')));
    }
    var attempts = Object.keys(s.attempts || {});
    add(stats, el('div', 'stat-block', el('h3', null, 'Attempts per trace'),
      attempts.length ? bars(attempts.map(function (k) { return [k, s.attempts[k]]; })) : el('p', 'muted', '–')));
    var actions = Object.keys(s.actions || {});
    add(stats, el('div', 'stat-block', el('h3', null, 'Step actions'),
      actions.length ? bars(actions.map(function (k) { return [k, s.actions[k], actionClass(k)]; })) : el('p', 'muted', 'no steps recorded')));
    add(card, stats);

    var hashes = info.prompt_hashes && typeof info.prompt_hashes === 'object' ? info.prompt_hashes : null;
    add(card, fold('Prompt hashes, calls per agent, skills, reasons, config', function () {
      var parts = [];
      parts.push(el('h4', null, 'Prompt hashes'));
      parts.push(hashes ? table(['agent', 'hash'], Object.keys(hashes).map(function (k) { return [k, el('code', null, txt(hashes[k]))]; }))
        : pre(info.prompt_hashes === null || info.prompt_hashes === undefined ? '–' : pretty(info.prompt_hashes)));
      parts.push(el('h4', null, 'Calls per agent'));
      parts.push((s.nodes || []).length ? table(['node', 'calls', 'input tokens', 'output tokens', 'mean latency', 'errors'],
        s.nodes.map(function (n) { return [txt(n.node), num(n.calls), num(n.input_tokens), num(n.output_tokens), num(n.mean_latency_ms, 1) + ' ms', num(n.errors)]; }))
        : el('p', 'muted', 'no calls recorded'));
      var skills = Object.keys(s.skills || {});
      parts.push(el('h4', null, 'Skills × actions (steps)'));
      parts.push(skills.length ? table(['skill'].concat(ACTIONS).concat(['total']), skills.map(function (k) {
        var per = s.skills[k], total = 0;
        Object.keys(per).forEach(function (a) { total += per[a]; });
        return [k].concat(ACTIONS.map(function (a) { return per[a] ? num(per[a]) : ''; })).concat([num(total)]);
      })) : el('p', 'muted', 'no steps recorded'));
      parts.push(el('h4', null, 'Reasons'));
      parts.push((s.reasons || []).length ? table(['status', 'reason', 'traces', 'example'], s.reasons.map(function (r) {
        return [statusBadge(r.status), txt(r.kind), num(r.n), el('span', 'small', txt(r.example))];
      })) : el('p', 'muted', 'none'));
      parts.push(el('h4', null, 'Config'));
      parts.push(pre(pretty(info.config === undefined ? null : info.config), 'text json'));
      return parts;
    }));
    return card;
  }

  function renderHeader() {
    var header = document.getElementById('header');
    var sel = INDEX.selection;
    var note = 'Listing ' + num(sel.shown) + ' of ' + num(sel.total) + ' traces' +
      (sel.statuses && sel.statuses.length ? ' · status ' + sel.statuses.join(', ') : '') +
      (sel.limit !== null && sel.limit !== undefined ? ' · limit ' + sel.limit : '') +
      ' · generated ' + INDEX.generated_at;
    add(header, el('div', 'title-row', el('h1', null, 'drp report'), el('span', 'muted', note)));
    var cards = el('div', VS ? 'cards two' : 'cards');
    add(cards, runCard(INDEX.run, INDEX.summary, VS ? 'A' : null));
    if (VS) {
      add(cards, runCard(VS.run, VS.summary, 'B'));
      add(header, cards);
      add(header, el('p', 'muted', 'Traces matched by id. ' + num(VS.missing_in_vs) + ' of A\u2019s traces are absent from B; ' +
        num(VS.only_in_vs) + ' of B\u2019s are absent from A (not listed).'));
    } else {
      add(header, cards);
    }
  }

  // ---------- filters and list ----------
  var F = {};
  function option(select, value, label) { var o = el('option', null, label); o.value = value; select.appendChild(o); }
  function countBy(key) {
    var m = new Map();
    ROWS.forEach(function (r) { var k = r[key]; if (k !== null && k !== undefined && k !== '') m.set(k, (m.get(k) || 0) + 1); });
    return Array.from(m.entries()).sort(function (a, b) { return b[1] - a[1] || String(a[0]).localeCompare(String(b[0])); });
  }
  function setupFilters() {
    ['text', 'deep', 'status', 'reason', 'skill', 'min', 'max', 'sort', 'count'].forEach(function (k) { F[k] = document.getElementById('f-' + k); });
    option(F.status, '', 'all statuses');
    countBy('status').forEach(function (e) { option(F.status, e[0], e[0] + ' (' + e[1] + ')'); });
    option(F.reason, '', 'all reasons');
    countBy('reason_kind').slice(0, 300).forEach(function (e) {
      var label = e[0].length > 70 ? e[0].slice(0, 69) + '…' : e[0];
      option(F.reason, e[0], label + ' (' + e[1] + ')');
    });
    option(F.skill, '', 'all skills');
    INDEX.skills.forEach(function (s, i) { option(F.skill, String(i), s); });
    var sorts = [['line', 'input order'], ['red-desc', 'reduction, most first'], ['red-asc', 'reduction, least first'],
      ['before-desc', 'longest original first'], ['attempts-desc', 'most attempts first']];
    if (VS) sorts.push(['vs-desc', 'A beats B by most tokens'], ['vs-asc', 'B beats A by most tokens']);
    sorts.forEach(function (s) { option(F.sort, s[0], 'sort: ' + s[1]); });
    var timer = null;
    function later() { clearTimeout(timer); timer = setTimeout(applyFilters, 150); }
    F.text.addEventListener('input', later);
    F.min.addEventListener('input', later);
    F.max.addEventListener('input', later);
    [F.deep, F.status, F.reason, F.skill, F.sort].forEach(function (n) { n.addEventListener('change', applyFilters); });
    document.getElementById('filters').addEventListener('submit', function (e) { e.preventDefault(); });
  }

  function escapeRegExp(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }
  function applyFilters() {
    var q = F.text.value.trim().toLowerCase();
    var status = F.status.value, reason = F.reason.value, skill = F.skill.value === '' ? -1 : Number(F.skill.value);
    var min = F.min.value === '' ? null : Number(F.min.value) / 100, max = F.max.value === '' ? null : Number(F.max.value) / 100;
    // Deep search runs over the raw JSON blocks, so the query is written the way the JSON writes text.
    var deep = null;
    if (q && F.deep.checked) deep = new RegExp(escapeRegExp(JSON.stringify(q).slice(1, -1).replace(/</g, '\\u003c')), 'i');
    shown = [];
    for (var i = 0; i < ROWS.length; i++) {
      var r = ROWS[i];
      if (status && r.status !== status) continue;
      if (reason && r.reason_kind !== reason) continue;
      if (skill >= 0 && r.skills.indexOf(skill) < 0) continue;
      if (min !== null || max !== null) {
        var red = reduction(r.before, r.after);
        if (red === null || (min !== null && red < min) || (max !== null && red > max)) continue;
      }
      if (q) {
        var hay = [r.id, r.question, r.reason, r.gold, r.original_answer, r.pruned_answer].map(txt).join('\n').toLowerCase();
        if (hay.indexOf(q) < 0) {
          var block = deep && document.getElementById('drp-t' + i);
          if (!block || !deep.test(block.textContent)) continue;
        }
      }
      shown.push(i);
    }
    sortShown();
    F.count.textContent = num(shown.length) + ' of ' + num(ROWS.length) + ' traces';
    var list = document.getElementById('list');
    document.getElementById('list-spacer').style.height = (shown.length * ROW_H) + 'px';
    list.scrollTop = 0;
    renderList(true);
  }
  function gapLabel(r) {
    // thinking tokens after pruning, B minus A: what the other policy keeps more (+) or less (−)
    if (!r.vs || r.vs.after === null || r.vs.after === undefined || r.after === null || r.after === undefined) return '';
    var gap = r.vs.after - r.after;
    return ' (B\u2212A ' + (gap > 0 ? '+' : gap < 0 ? '\u2212' : '\u00b1') + num(Math.abs(gap)) + ')';
  }
  function sortShown() {
    var key = F.sort.value;
    function red(i) { var r = ROWS[i], v = reduction(r.before, r.after); return v === null ? -Infinity : v; }
    function vsGap(i) { var r = ROWS[i]; return r.vs && r.vs.after !== null && r.after !== null ? r.vs.after - r.after : -Infinity; }
    var by = {
      'red-desc': function (a, b) { return red(b) - red(a); },
      'red-asc': function (a, b) { return red(a) === -Infinity ? 1 : red(b) === -Infinity ? -1 : red(a) - red(b); },
      'before-desc': function (a, b) { return (ROWS[b].before || 0) - (ROWS[a].before || 0); },
      'attempts-desc': function (a, b) { return (ROWS[b].attempts || 0) - (ROWS[a].attempts || 0); },
      'vs-desc': function (a, b) { return vsGap(b) - vsGap(a); },
      'vs-asc': function (a, b) { return (vsGap(a) === -Infinity ? Infinity : vsGap(a)) - (vsGap(b) === -Infinity ? Infinity : vsGap(b)); },
    }[key];
    if (by) shown.sort(function (a, b) { return by(a, b) || a - b; });
  }

  function actionBar(actions) {
    var total = 0;
    Object.keys(actions || {}).forEach(function (a) { total += actions[a]; });
    var bar = el('span', 'act-bar');
    if (!total) return bar;
    Object.keys(actions).forEach(function (a) {
      var part = el('span', actionClass(a));
      part.style.width = (100 * actions[a] / total).toFixed(1) + '%';
      part.title = a + ': ' + actions[a] + ' steps';
      bar.appendChild(part);
    });
    return bar;
  }
  function tokensLabel(before, after) {
    var red = reduction(before, after);
    return red === null ? num(before) + ' tok' : num(before) + '→' + num(after) + ' (' + (red >= 0 ? '−' : '+') + pct(Math.abs(red), 0) + ')';
  }
  var lastRange = '';
  function renderList(force) {
    var list = document.getElementById('list');
    var first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - OVERSCAN);
    var last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + OVERSCAN);
    var range = first + ':' + last;
    if (!force && range === lastRange) return;
    lastRange = range;
    var spacer = document.getElementById('list-spacer');
    while (list.lastChild && list.lastChild !== spacer) list.removeChild(list.lastChild);
    var frag = document.createDocumentFragment();
    for (var k = first; k < last; k++) {
      var pos = shown[k], r = ROWS[pos];
      var row = el('div', 'row' + (pos === current ? ' selected' : ''),
        el('div', 'row-top', el('span', 'row-id', txt(r.id)), statusBadge(r.status), el('span', 'row-tok', tokensLabel(r.before, r.after)),
          VS ? el('span', 'row-vs', r.vs ? 'B ' + tokensLabel(r.vs.before, r.vs.after) + gapLabel(r) : 'B –') : null, actionBar(r.actions)),
        el('div', 'row-sub', r.status !== 'accepted' && r.reason ? el('span', 'row-reason', txt(r.reason) + ' · ') : null, txt(r.question)));
      row.style.top = (k * ROW_H) + 'px';
      row.setAttribute('role', 'option');
      row.dataset.pos = String(pos);
      frag.appendChild(row);
    }
    list.appendChild(frag);
  }

  // ---------- trace detail ----------
  function objects(rows, columns) {
    return (rows || []).map(function (values) {
      var o = {};
      columns.forEach(function (c, i) { o[c] = values[i]; });
      return o;
    });
  }
  function detailData(pos) {
    if (cache.has(pos)) return cache.get(pos);
    var block = document.getElementById('drp-t' + pos);
    if (!block) return null;
    var d = JSON.parse(block.textContent);
    // Steps and calls travel as rows of values (see INDEX.columns); turn them back into objects.
    d.steps = objects(d.steps, INDEX.columns.steps);
    d.calls = objects(d.calls, INDEX.columns.calls).map(function (c) {
      if (c.parsed_is_raw) { try { c.parsed = JSON.parse(c.raw_output); } catch (e) { c.parsed = c.raw_output; } }
      return c;
    });
    if (d.vs) d.vs.steps = objects(d.vs.steps, INDEX.columns.steps);
    cache.set(pos, d);
    if (cache.size > 40) cache.delete(cache.keys().next().value);
    return d;
  }

  function stepsView(steps, label) {
    var box = el('div', 'steps');
    add(box, el('div', 'steps-head', el('div', null, 'Original'), el('div', null, 'Pruned' + (label ? ' (' + label + ')' : ''))));
    // The first step of a MERGE group shows the merged text; the others point to it.
    var groupFirst = new Map(), groupText = new Map();
    steps.forEach(function (s) {
      if (String(s.action).toUpperCase() !== 'MERGE') return;
      var g = s.merge_group === null || s.merge_group === undefined ? 'step' + s.step : s.merge_group;
      if (!groupFirst.has(g)) groupFirst.set(g, s.step);
      if (s.rewritten && !groupText.has(g)) groupText.set(g, s.rewritten);
    });
    steps.forEach(function (s) {
      var action = String(s.action || '?').toUpperCase();
      var units = s.unit_start === null || s.unit_start === undefined ? '' : ' · units ' + s.unit_start + (s.unit_end !== s.unit_start ? '–' + s.unit_end : '');
      var meta = el('div', 'step-meta', el('span', 'step-no', '#' + s.step), el('span', 'skill', txt(s.skill || 'no skill')),
        badge(action, 'action ' + actionClass(action)), el('span', 'muted', units + (s.attempt ? ' · attempt ' + s.attempt : '')));
      var pruned;
      if (action === 'KEEP') pruned = pre(s.text);
      else if (action === 'DELETE') pruned = el('p', 'gone', 'deleted');
      else if (action === 'MERGE') {
        var g = s.merge_group === null || s.merge_group === undefined ? 'step' + s.step : s.merge_group;
        pruned = groupFirst.get(g) === s.step ? pre(groupText.get(g) || '(no merged text recorded)')
          : el('p', 'gone', 'merged into #' + groupFirst.get(g));
      } else pruned = s.rewritten ? pre(s.rewritten) : el('p', 'gone', action === 'COMPRESS' ? '(no rewrite recorded)' : txt(s.text));
      var original = el('div', 'step-orig', meta, pre(s.text, 'text' + (action === 'DELETE' ? ' struck' : '')));
      // Echo policies: the teacher re-typed the step; show what it wrote next to the original span it maps to.
      if (s.echo !== null && s.echo !== undefined) {
        add(original, el('p', 'muted', 'echo (as re-typed by the teacher' + (txt(s.echo) === txt(s.text) ? ', identical' : '') + '):'), pre(s.echo, 'text'));
        pruned = el('p', 'muted', action + ' (the pruned path below is written by the teacher, not assembled from the steps)');
      }
      add(box, el('div', 'step ' + actionClass(action), original, el('div', 'step-pruned', pruned)));
    });
    return box;
  }

  function otherView(other) {
    // Whatever else the verifier recorded: boolean maps (its checks) as pass/fail chips, scalars as
    // "key: value", anything else as JSON.
    if (typeof other !== 'object' || other === null || Array.isArray(other)) return pre(pretty(other), 'text json');
    var box = el('div', 'other');
    Object.keys(other).forEach(function (k) {
      var v = other[k];
      var flags = v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).every(function (c) { return typeof v[c] === 'boolean'; });
      if (flags && Object.keys(v).length) {
        add(box, el('div', 'chips', Object.keys(v).map(function (c) { return badge((v[c] ? '✓ ' : '✗ ') + c, v[c] ? 'st-accepted' : 'st-rejected'); })));
      } else if (v === null || typeof v !== 'object') {
        add(box, el('div', 'small', k + ': ' + txt(v)));
      } else {
        add(box, el('div', 'small', k + ':'), pre(pretty(v), 'text json'));
      }
    });
    return box;
  }

  function verdictView(verdicts) {
    if (!verdicts || !verdicts.length) return el('p', 'muted', 'no verifier call recorded');
    return table(['attempt', 'verdict', 'failures', 'feedback', 'checks and details'], verdicts.map(function (v) {
      var verdict = v.passed === true ? badge('passed', 'st-accepted') : v.passed === false ? badge('failed', 'st-rejected') : badge('unknown', 'st-unknown');
      var failures = el('ul', 'failures');
      (v.failures || []).forEach(function (f) { failures.appendChild(el('li', null, pretty(f))); });
      return [txt(v.attempt), verdict, (v.failures || []).length ? failures : '–', v.feedback ? pre(v.feedback) : '–',
        [v.other ? otherView(v.other) : null, v.error ? pre('error: ' + v.error, 'text err') : null]];
    }), 'grid verdicts');
  }

  // A total with calls of unknown usage in it is shown as missing, never as a smaller number.
  function teacherTokens(t) {
    var without = (t.missing_usage || 0) + (t.counted_usage || 0);
    var figures = t.input === null || t.input === undefined ? 'missing' : num(t.input) + ' in · ' + num(t.output) + ' out';
    var note = without ? ' (' + num(without) + ' calls came without usage: ' + num(t.counted_usage || 0) +
      ' counted with the teacher\u2019s tokenizer' + (t.missing_usage ? ', ' + num(t.missing_usage) + ' missing' : '') + ')' : '';
    return figures + ' · ' + num(t.calls) + ' LLM calls' + note;
  }

  function callView(c) {
    var tokens = c.llm && (c.input_tokens === null || c.input_tokens === undefined) ? 'tokens missing (no usage)'
      : num(c.input_tokens) + ' in / ' + num(c.output_tokens) + ' out' + (c.usage === 'counted' ? ' (counted)' : '');
    var head = [c.seq === null || c.seq === undefined ? '' : '#' + c.seq, txt(c.node || '?'), 'attempt ' + txt(c.attempt),
      c.model ? txt(c.model) : null, tokens,
      c.latency_ms === null || c.latency_ms === undefined ? null : num(c.latency_ms, 1) + ' ms',
      c.reused_run ? 'reused from run ' + txt(c.reused_run) + ', trace ' + txt(c.reused_trace) + ' call #' + txt(c.reused_seq) : null
    ].filter(Boolean).join(' · ');
    var summary = [head, c.error ? el('span', 'err-flag', ' · error') : null];
    var d = fold(summary, function () {
      var parts = [kv([['prompt', txt(c.prompt_name || '–') + (c.prompt_hash ? ' (' + c.prompt_hash + ')' : '')],
        ['policy', txt(c.policy || '–')], ['started', txt(c.started_at || '–')]])];
      parts.push(el('h5', null, 'Rendered messages'));
      if (Array.isArray(c.messages) && c.messages.length) {
        c.messages.forEach(function (m) {
          var role = m && typeof m === 'object' ? m.role : null;
          var content = m && typeof m === 'object' ? m.content : m;
          parts.push(el('div', 'msg msg-' + txt(role).replace(/[^a-z]/gi, ''), el('div', 'msg-role', txt(role || 'message')), pre(pretty(content))));
        });
      } else parts.push(c.messages ? pre(pretty(c.messages)) : el('p', 'muted', 'none (deterministic step)'));
      parts.push(el('h5', null, 'Raw reply'));
      parts.push(c.raw_output === null || c.raw_output === undefined ? el('p', 'muted', 'none') : pre(c.raw_output));
      parts.push(el('h5', null, 'Parsed'));
      parts.push(c.parsed === null || c.parsed === undefined ? el('p', 'muted', 'none') : pre(pretty(c.parsed), 'text json'));
      if (c.error) { parts.push(el('h5', null, 'Error')); parts.push(pre(c.error, 'text err')); }
      return parts;
    });
    d.classList.add('call');
    return d;
  }

  function sideBySide(leftTitle, leftText, rightTitle, rightText) {
    return el('div', 'pair', el('div', null, el('h4', null, leftTitle), leftText === null || leftText === undefined ? el('p', 'muted', '–') : pre(leftText)),
      el('div', null, el('h4', null, rightTitle), rightText === null || rightText === undefined ? el('p', 'muted', '–') : pre(rightText)));
  }

  function joinSteps(steps) { return steps.map(function (s) { return txt(s.text); }).join('\n\n'); }
  function prunedResponse(d) {
    if (d.pruned_answer_section !== null && d.pruned_answer_section !== undefined && d.pruned_thinking !== null && d.pruned_thinking !== undefined)
      return d.pruned_thinking + INDEX.layout.section_break + d.pruned_answer_section;
    return d.pruned_response;
  }

  function openTrace(pos, fromHash) {
    var r = ROWS[pos];
    if (!r) return;
    current = pos;
    var pane = document.getElementById('detail');
    var d = detailData(pos);
    if (!d) {
      pane.replaceChildren(el('p', 'hint', 'Loading trace ' + txt(r.id) + '…'));
      if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', function () { if (current === pos) openTrace(pos, true); }, { once: true });
      return;
    }
    var at = shown.indexOf(pos);
    var prev = el('button', null, '← prev'), next = el('button', null, 'next →');
    prev.disabled = at <= 0; next.disabled = at < 0 || at >= shown.length - 1;
    prev.addEventListener('click', function () { step(-1); });
    next.addEventListener('click', function () { step(1); });
    var parts = [];
    parts.push(el('div', 'detail-head', el('h2', null, txt(r.id)), statusBadge(r.status), r.reason ? el('span', 'reason' + (r.status === 'accepted' ? ' muted' : ''), txt(r.reason)) : null,
      el('span', 'nav', prev, next)));
    var red = reduction(r.before, r.after), rred = reduction(r.response_before, r.response_after);
    parts.push(kv([
      ['thinking tokens', num(r.before) + ' → ' + num(r.after) + (red === null ? '' : ' (' + (red >= 0 ? '−' : '+') + pct(Math.abs(red)) + ')')],
      ['response tokens', num(r.response_before) + ' → ' + num(r.response_after) + (rred === null ? '' : ' (' + (rred >= 0 ? '−' : '+') + pct(Math.abs(rred)) + ')')],
      ['answers', 'gold ' + (txt(r.gold) || '–') + ' · original ' + (txt(r.original_answer) || '–') + ' · pruned ' + (txt(r.pruned_answer) || '–')],
      ['attempts', txt(r.attempts === null || r.attempts === undefined ? '–' : r.attempts)],
      ['teacher', (r.teacher_calls && (r.teacher_in === null || r.teacher_in === undefined) ? 'tokens missing'
        : num(r.teacher_in) + ' in / ' + num(r.teacher_out) + ' out tokens') + ' · ' + num(r.teacher_calls) + ' calls · ' +
        (r.seconds === null || r.seconds === undefined ? '–' : num(r.seconds, 2) + ' s') +
        (r.cost !== undefined && INDEX.summary.cost && INDEX.summary.cost.price ? ' · cost ' + money(r.cost, INDEX.summary.cost.currency) : '')],
      r.line !== null && r.line !== undefined ? ['input line', txt(r.line)] : null,
    ]));
    parts.push(el('h3', null, 'Question'));
    parts.push(pre(r.question, 'text question'));

    if (VS) {
      var v = d.vs;
      var box = el('section', 'vs');
      add(box, el('h3', null, 'A vs B: pruned thinking'));
      if (VS.twin_report) {
        var twin = el('a', 'twin', 'this trace in B\u2019s own report (A as its twin)');
        twin.href = VS.twin_report + '#trace=' + encodeURIComponent(r.id);
        twin.title = 'written by: ' + (VS.twin_command || '');
        add(box, el('p', 'small', twin));
      }
      if (!v) add(box, el('p', 'muted', 'B (' + txt(VS.run.id) + ') has no trace with this id.'));
      else {
        add(box, el('div', 'pair',
          el('div', null, el('h4', null, 'A · ' + txt(INDEX.run.policy || INDEX.run.id) + ' · ', statusBadge(r.status), ' ' + tokensLabel(r.before, r.after)),
            el('div', 'small', 'pruned answer ' + (txt(r.pruned_answer) || '–')), d.pruned_thinking ? pre(d.pruned_thinking) : el('p', 'muted', 'no pruned thinking')),
          el('div', null, el('h4', null, 'B · ' + txt(VS.run.policy || VS.run.id) + ' · ', statusBadge(v.status), ' ' + tokensLabel(v.thinking_tokens_before, v.thinking_tokens_after)),
            el('div', 'small', 'pruned answer ' + (txt(v.pruned_answer) || '–') + (v.reason ? ' · ' + v.reason : '')),
            v.pruned_thinking ? pre(v.pruned_thinking) : el('p', 'muted', 'no pruned thinking'))));
        add(box, fold('B: steps (' + (v.steps || []).length + ') and verifier verdicts', function () {
          return [(v.steps || []).length ? stepsView(v.steps, 'B') : el('p', 'muted', 'no steps recorded'), el('h4', null, 'B verifier'), verdictView(v.verdicts)];
        }));
      }
      parts.push(box);
    }

    var steps = d.steps || [];
    if (steps.length) {
      parts.push(el('h3', null, 'Steps (' + steps.length + ', final attempt)'));
      parts.push(el('div', 'legend', ACTIONS.map(function (a) { return badge(a, 'action ' + actionClass(a)); })));
      parts.push(stepsView(steps, VS ? 'A' : null));
    } else {
      parts.push(el('h3', null, 'Reasoning ', el('span', 'small', '(no steps recorded for this trace)')));
      parts.push(sideBySide('Original thinking', d.original_thinking, 'Pruned thinking', d.pruned_thinking));
    }
    if (d.echoed) {
      parts.push(el('h3', null, 'Original trace and the real pruned reasoning'));
      parts.push(sideBySide('Original thinking (the trace)', d.original_thinking, 'Pruned reasoning (what the student learns)', d.pruned_thinking));
    }
    parts.push(el('h3', null, 'Answer section'));
    parts.push(sideBySide('Original', d.original_answer_section, 'Pruned', d.pruned_answer_section !== null && d.pruned_answer_section !== undefined ? d.pruned_answer_section : null));
    parts.push(el('h3', null, 'Verifier verdict per attempt'));
    parts.push(verdictView(d.verdicts));
    parts.push(fold('Full texts: original thinking and pruned response', function () {
      return sideBySide('Original thinking', steps.length && !d.echoed ? joinSteps(steps) : d.original_thinking, 'Pruned response', prunedResponse(d));
    }));
    var calls = d.calls || [];
    var transcript = fold('Agent transcript (' + calls.length + ' calls)', function () {
      return calls.length ? calls.map(callView) : el('p', 'muted', 'no calls recorded');
    });
    transcript.classList.add('transcript');
    parts.push(transcript);
    if (d.extra && (typeof d.extra !== 'object' || Object.keys(d.extra).length)) parts.push(fold('Extra input fields', function () { return pre(pretty(d.extra), 'text json'); }));
    pane.replaceChildren.apply(pane, parts);
    pane.dataset.trace = String(r.id);
    if (!fromHash) history.replaceState(null, '', '#trace=' + encodeURIComponent(r.id));
    renderList(true);
    var main = document.getElementById('main');
    if (main.getBoundingClientRect().top < 0 || pane.getBoundingClientRect().top > window.innerHeight) main.scrollIntoView();
  }

  function step(delta) {
    if (!shown.length) return;
    var at = shown.indexOf(current);
    var k = at < 0 ? 0 : Math.min(shown.length - 1, Math.max(0, at + delta));
    openTrace(shown[k]);
    var list = document.getElementById('list');
    if (k * ROW_H < list.scrollTop || (k + 1) * ROW_H > list.scrollTop + list.clientHeight) list.scrollTop = Math.max(0, k * ROW_H - list.clientHeight / 2);
  }

  function fromHash() {
    var m = /^#trace=(.*)$/.exec(location.hash);
    if (!m) return;
    var id;
    try { id = decodeURIComponent(m[1]); } catch (e) { return; }  // a hand-edited, malformed link
    for (var i = 0; i < ROWS.length; i++) if (ROWS[i].id === id) { openTrace(i, true); return; }
  }

  // ---------- start ----------
  function start() {
    renderHeader();
    setupFilters();
    var list = document.getElementById('list');
    list.addEventListener('scroll', function () { renderList(false); }, { passive: true });
    list.addEventListener('click', function (e) {
      var row = e.target.closest('.row');
      if (row) openTrace(Number(row.dataset.pos));
    });
    window.addEventListener('resize', function () { renderList(true); });
    window.addEventListener('hashchange', fromHash);
    document.addEventListener('keydown', function (e) {
      if (e.target && e.target.closest && e.target.closest('input, select, textarea')) return;
      if (e.key === 'j' || e.key === 'ArrowDown') { step(1); e.preventDefault(); }
      if (e.key === 'k' || e.key === 'ArrowUp') { step(-1); e.preventDefault(); }
    });
    applyFilters();
    window.drpRendered = performance.now();
    performance.mark('drp-rendered');
    requestAnimationFrame(function () {
      setTimeout(function () { window.drpPainted = performance.now(); document.body.dataset.ready = '1'; }, 0);
    });
    fromHash();
  }
  start();
})();
