// app.js: Portico's console. Plain DOM, no framework: one function per
// view, each returning a stop function that ends its polling or stream
// when another view is opened.
import { session, call, stream, APIError, parseMetrics } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);

// How often views refresh, in milliseconds.
const REFRESH = { overview: 5000, plugins: 3000, sessions: 5000 };
// How many log lines the live tail keeps.
const MAX_LOG_LINES = 500;
// How many recent lines the live tail shows when it opens.
const BACKLOG = 100;

// el builds an element; strings become text nodes, so nothing the gateway
// sends is ever parsed as HTML.
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : String(k));
  }
  return e;
}

function flash(text, ok = false) {
  const f = $('#flash');
  f.textContent = text;
  f.className = ok ? 'flash ok' : 'flash';
  f.hidden = !text;
}

// note shows a message at the top of a view, e.g. a role the key lacks.
function note(sec, text) {
  const n = $('[data-role=message]', sec);
  n.textContent = text || '';
  n.hidden = !text;
}

// failed reports an error in a view; a refused key signs out.
function failed(sec, err) {
  if (err instanceof APIError && err.status === 401) {
    signOut('The key was refused: ' + err.message);
    return;
  }
  if (err instanceof APIError && err.status === 403) {
    note(sec, 'This view needs a stronger key: ' + err.message);
    return;
  }
  note(sec, err.message);
}

// every runs fn now and then every ms until stopped, never overlapping.
function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    await fn();
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

const fmt = {
  duration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  },
  bytes(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + ' GiB';
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
    return n + ' B';
  },
  micros(calls, us) {
    if (!calls) return '–';
    return us >= 1000 ? (us / 1000).toFixed(1) + ' ms' : us + ' µs';
  },
  time(t) {
    if (!t) return '–';
    const d = new Date(t);
    return isNaN(d) ? t : d.toLocaleString();
  },
  clock(t) {
    const d = new Date(t);
    return isNaN(d) ? String(t || '') : d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  },
};

function statusBadge(s) {
  return el('span', { class: 'status status-' + s }, s);
}

// ---- overview ----

// Request and error counters, from /metrics when the key may read it.
function requestTotals(samples) {
  let total = 0, errors = 0, found = false;
  for (const s of samples) {
    if (!/http_requests_total$/.test(s.name)) continue;
    found = true;
    total += s.value;
    const code = s.labels.status || s.labels.code || '';
    if (code.startsWith('5')) errors += s.value;
  }
  return found ? { total, errors } : null;
}

function card(label, value, sub, bad = false) {
  return el('div', { class: bad ? 'card bad' : 'card', 'data-card': label }, el('div', { class: 'label' }, label),
    el('div', { class: 'value' }, value), sub ? el('div', { class: 'sub' }, sub) : null);
}

function overview(sec) {
  let prev = null;
  return every(REFRESH.overview, async () => {
    let s;
    try {
      s = await call('GET', '/api/v1/status');
    } catch (e) {
      failed(sec, e);
      return;
    }
    note(sec, '');
    const cards = [
      card('Version', s.version),
      card('Uptime', fmt.duration(s.uptime_seconds), 'since ' + fmt.time(s.started_at)),
      card('Ready', s.ready ? 'yes' : 'no', null, !s.ready),
    ];
    const p = s.plugins || {};
    const parts = ['disabled', 'failed', 'loading'].filter((k) => p[k]).map((k) => `${p[k]} ${k}`);
    cards.push(card('Plugins active', `${p.active || 0} / ${p.total || 0}`, parts.join(', ') || 'all active', (p.failed || 0) > 0));
    let totals = null;
    try {
      totals = requestTotals(parseMetrics(await call('GET', '/metrics')));
    } catch { /* metrics off or not allowed: the cards say so */ }
    if (totals) {
      const now = Date.now();
      let rate = 'measuring…', errRate = '';
      if (prev) {
        const dt = (now - prev.t) / 1000;
        rate = ((totals.total - prev.total) / dt).toFixed(1) + ' /s';
        errRate = ((totals.errors - prev.errors) / dt).toFixed(2) + ' /s now';
      }
      prev = { t: now, ...totals };
      cards.push(card('Requests', rate, `${totals.total} since start`));
      cards.push(card('Server errors (5xx)', String(totals.errors), errRate, totals.errors > 0));
    } else {
      cards.push(card('Requests', '–', 'metrics not available to this key'));
    }
    cards.push(card('In flight', String(s.http?.in_flight ?? 0)));
    cards.push(card('Memory', fmt.bytes(s.runtime?.heap_alloc_bytes || 0), `${s.runtime?.goroutines || 0} goroutines`));
    const c = s.config || {};
    cards.push(card('Config', 'generation ' + c.generation, c.last_error ? 'file invalid: ' + c.last_error : (c.file || ''), !!c.last_error));
    cards.push(card('Storage', fmt.bytes((s.storage?.lsm_bytes || 0) + (s.storage?.vlog_bytes || 0))));
    cards.push(card('Events', String(s.events?.published ?? 0), `${s.events?.dropped ?? 0} dropped, ${s.events?.subscribers ?? 0} subscribers`));
    $('#cards', sec).replaceChildren(...cards);
  });
}

// ---- plugins ----

function plugins(sec) {
  const body = $('tbody', sec);
  const act = async (name, action, row) => {
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    try {
      const info = await call('POST', `/api/v1/plugins/${encodeURIComponent(name)}/${action}`);
      row.replaceWith(pluginRow(info, act));
      flash(`${name}: ${{ reload: 'reloaded', disable: 'disabled', enable: 'enabled' }[action]}, now ${info.status}`, true);
    } catch (e) {
      flash(`${name}: ${action} failed: ${e.message}`);
      for (const b of row.querySelectorAll('button')) b.disabled = false;
    }
  };
  return every(REFRESH.plugins, async () => {
    try {
      const out = await call('GET', '/api/v1/plugins');
      note(sec, '');
      body.replaceChildren(...out.plugins.map((p) => pluginRow(p, act)));
    } catch (e) {
      failed(sec, e);
    }
  });
}

function pluginRow(p, act) {
  const s = p.stats || {};
  const button = (action, label, show) => show
    ? el('button', { type: 'button', 'data-action': action, 'data-name': p.name, onclick: (ev) => act(p.name, action, ev.target.closest('tr')) }, label)
    : null;
  const title = p.last_error ? p.last_error : p.description;
  return el('tr', { 'data-name': p.name, 'data-status': p.status, title },
    el('td', {}, p.name), el('td', {}, p.version || '–'), el('td', {}, (p.kinds || []).join(', ')),
    el('td', { class: 'status-cell' }, statusBadge(p.status)), el('td', {}, p.source),
    el('td', { class: 'num' }, s.calls ?? 0), el('td', { class: 'num' }, s.errors ?? 0),
    el('td', { class: 'num' }, fmt.micros(s.calls, s.p50_us)), el('td', { class: 'num' }, fmt.micros(s.calls, s.p99_us)),
    el('td', { class: 'num' }, s.instances ?? 0), el('td', { class: 'num' }, fmt.bytes((p.memory && p.memory.linear_memory_bytes) || 0)),
    el('td', { class: 'actions' },
      button('reload', 'Reload', p.status !== 'loading'),
      button('disable', 'Disable', p.status === 'active' || p.status === 'failed'),
      button('enable', 'Enable', p.status === 'disabled' || p.status === 'failed')));
}

// ---- sessions ----

function sessions(sec) {
  const body = $('tbody', sec);
  let selected = '';
  const show = async (id) => {
    selected = id;
    for (const r of body.rows) r.classList.toggle('selected', r.dataset.id === id);
    const box = $('#transcript', sec);
    try {
      const [s, m] = await Promise.all([
        call('GET', `/api/v1/sessions/${encodeURIComponent(id)}`),
        call('GET', `/api/v1/sessions/${encodeURIComponent(id)}/messages?limit=1000`),
      ]);
      $('h2', box).textContent = `Session ${s.id} · ${s.channel} · ${s.status} · ${m.total} messages`;
      $('ol', box).replaceChildren(...m.messages.map((msg) => el('li', { class: msg.role },
        el('span', { class: 'meta' }, `${msg.role}${msg.skill ? ' · ' + msg.skill : ''} · ${fmt.time(msg.created_at)}`), msg.text)));
      box.hidden = false;
    } catch (e) {
      failed(sec, e);
    }
  };
  return every(REFRESH.sessions, async () => {
    try {
      const out = await call('GET', '/api/v1/sessions?limit=100');
      note(sec, out.total > out.sessions.length ? `Newest ${out.sessions.length} of ${out.total} sessions.` : '');
      body.replaceChildren(...out.sessions.map((s) => el('tr', { class: 'clickable' + (s.id === selected ? ' selected' : ''), 'data-id': s.id, onclick: () => show(s.id) },
        el('td', {}, s.id), el('td', {}, s.channel), el('td', {}, s.user_id || '–'), el('td', {}, statusBadge(s.status)),
        el('td', { class: 'num' }, s.message_count), el('td', {}, fmt.time(s.last_activity)))));
      if (!out.sessions.length) body.replaceChildren(el('tr', {}, el('td', { colSpan: 6 }, 'No sessions yet.')));
    } catch (e) {
      failed(sec, e);
    }
  });
}

// ---- logs ----

function logLine(rec) {
  const level = String(rec.level || '').toUpperCase();
  const skip = new Set(['seq', 'time', 'level', 'msg', 'message', 'module']);
  const attrs = [];
  const add = (k, v) => attrs.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(rec)) {
    if (skip.has(k)) continue;
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [sk, sv] of Object.entries(v)) add(sk, sv);
    else add(k, v);
  }
  return el('li', { class: 'lvl-' + level },
    `${fmt.clock(rec.time)} ${level.padEnd(5)} ${rec.module ? '[' + rec.module + '] ' : ''}${rec.msg ?? rec.message ?? ''} `,
    el('span', { class: 'attrs' }, attrs.join(' ')));
}

function logs(sec) {
  const list = $('#log-lines', sec);
  const state = $('#log-state', sec);
  const setState = (s) => { state.dataset.state = s; state.textContent = s; };
  let paused = false;
  let ctl = null;
  let retry = null;
  const append = (rec) => {
    if (paused) return;
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(logLine(rec));
    while (list.children.length > MAX_LOG_LINES) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  };
  const query = () => {
    const q = new URLSearchParams({ level: $('#log-level', sec).value });
    const mod = $('#log-module', sec).value;
    if (mod) q.set('module', mod);
    return q;
  };
  const connect = async () => {
    clearTimeout(retry);
    ctl?.abort();
    const mine = new AbortController();
    ctl = mine;
    setState('connecting');
    const q = query();
    q.set('limit', String(BACKLOG)); // the stream replays recent lines first
    try {
      await stream('/api/v1/logs/stream?' + q, {
        signal: mine.signal,
        onOpen: () => {
          list.replaceChildren();
          note(sec, '');
          setState('live');
        },
        onEvent: ({ event, data }) => {
          let rec;
          try { rec = JSON.parse(data); } catch { rec = { msg: data }; }
          if (event === 'dropped') append({ time: new Date().toISOString(), level: 'WARN', msg: `(${rec.dropped} lines dropped: this tail fell behind)` });
          else append(rec);
        },
      });
      if (mine.signal.aborted) return;
      throw new Error('the gateway closed the log stream');
    } catch (e) {
      if (mine.signal.aborted) return;
      setState('error');
      failed(sec, e);
      if (e instanceof APIError && (e.status === 401 || e.status === 403 || e.status === 404)) return;
      retry = setTimeout(connect, 3000);
    }
  };
  const onChange = () => connect();
  const pause = $('#log-pause', sec);
  const onPause = () => { paused = !paused; pause.textContent = paused ? 'Resume' : 'Pause'; };
  const onClear = () => list.replaceChildren();
  $('#log-level', sec).addEventListener('change', onChange);
  $('#log-module', sec).addEventListener('change', onChange);
  pause.addEventListener('click', onPause);
  $('#log-clear', sec).addEventListener('click', onClear);
  connect();
  return () => {
    clearTimeout(retry);
    ctl?.abort();
    setState('off');
    $('#log-level', sec).removeEventListener('change', onChange);
    $('#log-module', sec).removeEventListener('change', onChange);
    pause.removeEventListener('click', onPause);
    $('#log-clear', sec).removeEventListener('click', onClear);
  };
}

// ---- config ----

function config(sec) {
  (async () => {
    try {
      const c = await call('GET', '/api/v1/config');
      note(sec, '');
      const sources = Object.entries(c.sources || {}).map(([k, v]) => `${k} (${v})`).join(', ');
      $('#config-meta', sec).textContent = `Generation ${c.generation} · file ${c.file || '–'} · loaded ${fmt.time(c.loaded_at)}` +
        (sources ? ` · set outside the defaults: ${sources}` : '') + ' · secrets are redacted';
      $('#config-body', sec).textContent = JSON.stringify(c.config, null, 2);
    } catch (e) {
      $('#config-body', sec).textContent = '';
      $('#config-meta', sec).textContent = '';
      if (e instanceof APIError && e.status === 403) {
        note(sec, 'The configuration is shown to admin keys only; this key is not an admin key. (' + e.message + ')');
      } else {
        failed(sec, e);
      }
    }
  })();
  return () => {};
}

// ---- shell ----

const views = { overview, plugins, sessions, logs, config };
let stopView = () => {};

function route() {
  stopView();
  stopView = () => {};
  flash('');
  const signedIn = !!session.key;
  $('#signin-view').hidden = signedIn;
  $('#nav').hidden = !signedIn;
  $('#signout').hidden = !signedIn;
  let name = location.hash.replace(/^#/, '') || 'overview';
  if (!views[name]) name = 'overview';
  for (const [n] of Object.entries(views)) $(`#${n}-view`).hidden = !signedIn || n !== name;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', a.dataset.view === name);
  if (!signedIn) {
    $('#key').focus();
    return;
  }
  stopView = views[name]($(`#${name}-view`));
}

function signOut(message) {
  session.clear();
  route();
  flash(message || '');
}

async function signIn(ev) {
  ev.preventDefault();
  const key = $('#key').value.trim();
  const button = $('#signin');
  button.disabled = true;
  try {
    // Any valid key may list its sessions: the probe checks the key, not a role.
    await call('GET', '/api/v1/sessions?limit=1', undefined, key);
    session.set(key);
    $('#key').value = '';
    route();
  } catch (e) {
    flash(e instanceof APIError && e.status === 401 ? 'The key was refused: ' + e.message : e.message);
  } finally {
    button.disabled = false;
  }
}

$('#signin-form').addEventListener('submit', signIn);
$('#signout').addEventListener('click', () => signOut(''));
window.addEventListener('hashchange', route);
route();
