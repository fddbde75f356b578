// The console page: plain script, no framework, no CDN. It uses only the
// JSON API under /api/ (docs/API.md) and the server-sent events of
// /api/stream. Changes carry the session's CSRF token (X-CSRF-Token).
'use strict';

const state = { csrf: null, me: null, stream: null, fleet: null, live: [], liveCount: 0, liveSince: Date.now() };
const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const ago = (s) => (s === null || s === undefined ? '—' : `${Math.max(0, Math.round(Date.now() / 1000 - s))} s ago`);

async function api(path, options = {}) {
  const headers = { accept: 'application/json', ...(options.body ? { 'content-type': 'application/json' } : {}), ...(state.csrf ? { 'x-csrf-token': state.csrf } : {}) };
  const r = await fetch(path, { credentials: 'same-origin', ...options, headers });
  if (r.status === 401 && path !== '/api/login') { showLogin(); throw new Error('not logged in'); }
  const body = r.headers.get('content-type')?.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body?.error ?? `HTTP ${r.status}`);
  return body;
}

function show(page) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== `${page}-page`;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
}

function showLogin() {
  state.csrf = null;
  state.me = null;
  state.stream?.close();
  state.stream = null;
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#who').textContent = '';
  show('login');
}

function loggedIn(me) {
  state.me = me;
  state.csrf = me.csrf;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  $('#who').textContent = `${me.name} (${me.role})`;
  openStream();
  route();
}

function openStream() {
  if (state.stream) return;
  const es = new EventSource('/api/stream');
  state.stream = es;
  es.addEventListener('fleet', (m) => { state.fleet = JSON.parse(m.data); renderFleet(); });
  es.addEventListener('passages', (m) => {
    const { events, skipped } = JSON.parse(m.data);
    state.liveCount += events.length + skipped;
    state.live = [...events.reverse(), ...state.live].slice(0, 300);
    scheduleLive();
  });
}

function renderFleet() {
  const f = state.fleet;
  if (!f) return;
  $('#fleet-list').textContent = f.list ? `list ${f.list.name} v${f.list.version}` : '';
  $('#fleet-table tbody').innerHTML = f.gates.map((g) => {
    const behind = g.whitelist?.behind;
    return `<tr class="${g.state === 'online' ? '' : 'offline'} ${behind > 0 ? 'behind' : ''}" data-gate="${esc(g.gate)}">
      <td>${esc(g.site)}</td><td>${esc(g.line)} ${esc(g.direction)}</td><td><a href="#gate/${encodeURIComponent(g.gate)}">${esc(g.gate)}</a></td>
      <td class="${g.state === 'online' ? 'ok' : ''}">${esc(g.state)}</td><td class="version">${g.whitelist ? `v${g.whitelist.version}` : '—'}</td>
      <td class="behind">${behind ?? '—'}</td><td>${g.backlog ?? '—'}</td><td class="${g.clockTrusted === false ? 'bad' : ''}">${g.clockTrusted === null ? '—' : g.clockTrusted ? 'trusted' : 'untrusted'}</td>
      <td class="${g.alarms > 0 ? 'bad' : ''}">${g.alarms}</td><td>${g.refused.atCentral + g.refused.atGate}</td><td>${ago(g.lastSeen)}</td></tr>`;
  }).join('');
}

let liveTimer = null;
function scheduleLive() {
  // Coalesced: at most one repaint per animation frame however fast events come.
  if (liveTimer) return;
  liveTimer = requestAnimationFrame(() => { liveTimer = null; renderLive(); });
}

function liveFilter() {
  const f = new FormData($('#live-filter'));
  return { gate: f.get('gate')?.trim(), subject: f.get('subject')?.trim(), reason: f.get('reason')?.trim(), denied: f.get('denied') === 'on' };
}

function renderLive() {
  const f = liveFilter();
  const rows = state.live.filter((e) => (!f.gate || e.gate === f.gate) && (!f.subject || e.subject === f.subject) && (!f.reason || e.reason === f.reason) && (!f.denied || e.type === 'decision_denied')).slice(0, 200);
  $('#live-table tbody').innerHTML = rows.map((e) => `<tr class="${e.type === 'decision_denied' ? 'denied' : ''}"><td>${esc(e.time)}</td><td>${esc(e.gate)}</td><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.subject)}</td><td>${esc(e.institution)}</td></tr>`).join('');
  const secs = Math.max(1, (Date.now() - state.liveSince) / 1000);
  $('#live-rate').textContent = `${state.liveCount} events, ${(state.liveCount / secs).toFixed(1)}/s`;
}

async function showGate(id) {
  show('gate');
  $('#gate-name').textContent = id;
  const g = await api(`/api/gates/${encodeURIComponent(id)}`);
  const w = g.gate.whitelist;
  $('#gate-summary').textContent = `${g.gate.state}, site ${g.gate.site ?? '—'}, ${g.gate.line ?? ''} ${g.gate.direction ?? ''} ${g.gate.lane ?? ''}, whitelist ${w ? `v${w.version} (${w.behind ?? '?'} behind)` : '—'}, backlog ${g.gate.backlog ?? '—'}, last seen ${ago(g.gate.lastSeen)}`;
  $('#gate-events tbody').innerHTML = g.passages.map((e) => `<tr><td>${esc(e.time)}</td><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.subject)}</td><td>${esc(e.key)}</td></tr>`).join('');
  $('#gate-alarms tbody').innerHTML = g.alarms.map((e) => `<tr><td>${esc(e.time)}</td><td>${esc(e.reason)}</td></tr>`).join('');
}

function searchParams() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($('#search-form'))) if (String(v).trim() !== '') p.set(k, String(v).trim());
  return p;
}

async function search(ev) {
  ev?.preventDefault();
  const p = searchParams();
  $('#search-status').textContent = 'searching…';
  try {
    const t0 = performance.now();
    const r = await api(`/api/events?${p}`);
    $('#search-status').textContent = `${r.count} event(s) in ${Math.round(performance.now() - t0)} ms${r.count === r.limit ? ` (the first ${r.limit})` : ''}`;
    $('#search-table tbody').innerHTML = r.events.map((e) => `<tr><td>${esc(e.time)}</td><td>${esc(e.gate)}</td><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.subject)}</td><td>${esc(e.institution)}</td><td>${esc(e.key)}</td></tr>`).join('');
  } catch (e) {
    $('#search-status').textContent = e.message;
  }
}

function route() {
  if (!state.me) return showLogin();
  const h = location.hash.slice(1) || 'fleet';
  if (h.startsWith('gate/')) return void showGate(decodeURIComponent(h.slice(5))).catch((e) => ($('#gate-summary').textContent = e.message));
  show(['fleet', 'live', 'search'].includes(h) ? h : 'fleet');
  if (h === 'live') renderLive();
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', async () => {
  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    $('#login-error').textContent = '';
    try {
      loggedIn(await api('/api/login', { method: 'POST', body: JSON.stringify({ name: f.get('name'), password: f.get('password') }) }));
    } catch (e) {
      $('#login-error').textContent = e.message;
    }
  });
  $('#logout').addEventListener('click', async () => {
    await api('/api/logout', { method: 'POST' }).catch(() => undefined);
    showLogin();
  });
  $('#search-form').addEventListener('submit', search);
  $('#search-csv').addEventListener('click', (ev) => { ev.preventDefault(); const p = searchParams(); p.set('format', 'csv'); location.href = `/api/events?${p}`; });
  $('#live-filter').addEventListener('input', scheduleLive);
  try {
    loggedIn(await api('/api/session'));
  } catch {
    showLogin();
  }
});
