/**
 * The operator dashboard (GET /) and the API docs page (GET /docs): static HTML with a little vanilla JavaScript
 * that reads the same JSON endpoints as everyone else. The bearer token, when the API needs one, is kept in the
 * browser's localStorage and sent as Authorization header.
 */

import { RECOVER_SCRIPT, RECOVER_SECTION } from './dashboard-recover.ts';

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);

const STYLE = `
  :root { color-scheme: light dark; --ok: #1a7f37; --warn: #b58105; --bad: #cf222e; --mute: #8b949e; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; padding: 16px 24px; }
  header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  h1 { font-size: 20px; margin: 0; } h2 { font-size: 15px; margin: 20px 0 6px; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #8884; }
  th { font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .mute { color: var(--mute); }
  .pill { padding: 1px 8px; border-radius: 10px; border: 1px solid currentColor; font-size: 12px; }
  button { font: inherit; padding: 2px 10px; cursor: pointer; }
  #msg { min-height: 1.4em; } .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 24px; }
  input { font: inherit; }
`;

export function dashboardHtml(opts: { cluster: string; node: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>owui-sync · ${escapeHtml(opts.cluster)}</title><style>${STYLE}</style></head>
<body>
<header>
  <h1>owui-sync</h1>
  <span>cluster <b id="cluster">${escapeHtml(opts.cluster)}</b> · served by <b>${escapeHtml(opts.node)}</b></span>
  <span id="leader" class="pill mute">leader: …</span>
  <span style="margin-left:auto"><label>token <input id="token" type="password" size="24" placeholder="API token or JWT"></label>
  <button id="save-token">use</button> <a href="/docs">API docs</a></span>
</header>
<p id="msg" role="status"></p>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>host</th><th>role</th><th>status</th><th>heartbeat age</th><th>leader</th></tr></thead><tbody></tbody></table>
<h2>Tenants</h2>
<table id="tenants"><thead><tr><th>tenant</th><th>status</th><th>interval</th><th>last sync</th><th>lag</th><th>last result</th><th>last drill</th><th>conflicts</th><th></th></tr></thead><tbody></tbody></table>
<div class="grid">
<div><h2>Queue</h2>
<table id="queue"><thead><tr><th>queue</th><th>waiting</th><th>active</th><th>retry</th><th>completed</th><th>failed</th><th>oldest waiting</th></tr></thead><tbody></tbody></table>
<h2>Queued and running</h2>
<table id="queued"><thead><tr><th>tenant</th><th>state</th><th>type</th><th>by</th><th>queued</th></tr></thead><tbody></tbody></table></div>
<div><h2>Recent jobs</h2>
<table id="jobs"><thead><tr><th>tenant</th><th>started</th><th>status</th><th>type</th><th>by</th><th>rows</th><th>duration</th></tr></thead><tbody></tbody></table></div>
</div>
<h2>Unresolved conflicts</h2>
<table id="conflicts"><thead><tr><th>#</th><th>tenant</th><th>table</th><th>row</th><th>type</th><th>detected</th><th></th></tr></thead><tbody></tbody></table>
${RECOVER_SECTION}
<script>
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'})[c]);
const tokenInput = $('#token');
tokenInput.value = localStorage.getItem('owui-sync-token') || '';
$('#save-token').onclick = () => { localStorage.setItem('owui-sync-token', tokenInput.value.trim()); refresh(); };
function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = localStorage.getItem('owui-sync-token');
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}
async function api(path, init) {
  const res = await fetch(path, Object.assign({}, init || {}, { headers: headers((init || {}).headers) }));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || (res.status + ' ' + res.statusText));
  return body;
}
function say(text, cls) { const m = $('#msg'); m.textContent = text; m.className = cls || ''; }
function age(s) {
  if (s === null || s === undefined) return '—';
  s = Math.round(s);
  if (s < 120) return s + ' s'; if (s < 7200) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h'; return Math.round(s / 86400) + ' d';
}
function since(iso) { return iso ? age((Date.now() - Date.parse(iso)) / 1000) + ' ago' : 'never'; }
function cls(status) {
  return ({ healthy: 'ok', success: 'ok', active: 'ok', completed: 'ok', running: 'warn', pending: 'warn', created: 'warn',
    retry: 'warn', paused: 'mute', registered: 'mute', stale: 'warn', failed: 'bad', error: 'bad', conflict: 'bad',
    offline: 'bad', stopped: 'mute' })[status] || '';
}
// Restore drills: the latest one's outcome and age; a failed one names what failed (hover) and when one last passed.
function drillCell(t) {
  if (!t.last_drill_at) return '<td class="drill mute">never</td>';
  if (t.last_drill_passed) return '<td class="drill ok">passed ' + since(t.last_drill_at) + '</td>';
  return '<td class="drill bad" title="' + esc(t.last_drill_failure) + '">failed ' + since(t.last_drill_at) +
    (t.last_passed_drill_at ? ' (passed ' + since(t.last_passed_drill_at) + ')' : '') + '</td>';
}
function rows(sel, html, empty, cols) {
  $(sel + ' tbody').innerHTML = html.length ? html.join('') : '<tr><td colspan="' + cols + '" class="mute">' + empty + '</td></tr>';
}
async function trigger(name, full) {
  try {
    const r = await api('/api/v1/sync/trigger', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_name: name, full_sync: full }) });
    say(r.message + (r.job_id ? ' (job ' + r.job_id + ')' : ''), 'ok');
  } catch (e) { say('trigger failed: ' + e.message, 'bad'); }
  refresh();
}
async function resolve(id, keep) {
  try {
    const r = await api('/api/v1/conflicts/' + id + '/resolve', { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ keep }) });
    say('conflict ' + r.log_id + ' resolved: kept ' + r.resolution, 'ok');
  } catch (e) { say('resolve failed: ' + e.message, 'bad'); }
  refresh();
}
document.addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  if (b.dataset.action === 'sync') trigger(b.dataset.client, b.dataset.full === 'true');
  if (b.dataset.action === 'resolve') resolve(b.dataset.id, b.dataset.keep);
});
async function refresh() {
  try {
    const [cluster, tenants, queue, jobs, conflicts] = await Promise.all([
      api('/api/v1/cluster/status'), api('/api/v1/tenants'), api('/api/v1/queue'),
      api('/api/v1/sync/jobs?limit=15'), api('/api/v1/conflicts?limit=50'),
    ]);
    const lead = cluster.leader;
    $('#leader').textContent = lead && lead.lease_valid ? 'leader: ' + lead.leader_id + ' (epoch ' + lead.epoch + ')' : 'no leader';
    $('#leader').className = 'pill ' + (lead && lead.lease_valid ? 'ok' : 'bad');
    rows('#nodes', cluster.nodes.map((n) => '<tr><td>' + esc(n.node_name) + '</td><td>' + esc(n.hostname) + '</td><td>' +
      esc(n.role) + '</td><td class="' + cls(n.status) + '">' + esc(n.status) + '</td><td class="num">' +
      age(n.seconds_since_heartbeat) + '</td><td>' + (n.is_leader ? '<b class="ok">leader</b>' : '') + '</td></tr>'), 'no nodes registered', 6);
    rows('#tenants', tenants.tenants.map((t) => '<tr data-client="' + esc(t.client_name) + '"><td>' + esc(t.client_name) +
      '</td><td class="' + cls(t.status) + '">' + esc(t.status) + '</td><td class="num">' + age(t.sync_interval) +
      '</td><td>' + since(t.last_sync_at) + '</td><td class="num">' + age(t.lag_seconds) + '</td><td class="' +
      cls(t.last_sync_status) + '">' + esc(t.last_sync_status || '—') + '</td>' + drillCell(t) + '<td class="num">' + t.unresolved_conflicts +
      '</td><td><button data-action="sync" data-client="' + esc(t.client_name) + '" data-full="false">sync now</button> ' +
      '<button data-action="sync" data-client="' + esc(t.client_name) + '" data-full="true">full</button></td></tr>'),
      'no tenants registered (syncctl client register NAME --sqlite PATH)', 9);
    rows('#queue', queue.queues.map((q) => '<tr><td>' + esc(q.queue) + '</td><td class="num">' + q.states.created +
      '</td><td class="num">' + q.states.active + '</td><td class="num">' + q.states.retry + '</td><td class="num">' +
      q.states.completed + '</td><td class="num">' + q.states.failed + '</td><td class="num">' +
      age(q.oldest_waiting_seconds) + '</td></tr>'), 'queue unavailable', 7);
    const open = queue.recent.filter((j) => ['created', 'retry', 'active'].includes(j.state));
    rows('#queued', open.map((j) => '<tr><td>' + esc(j.client_name) + '</td><td class="' + cls(j.state) + '">' +
      esc(j.state) + '</td><td>' + (j.full_sync ? 'full' : 'incremental') + '</td><td>' + esc(j.triggered_by) +
      '</td><td>' + since(j.created_on) + '</td></tr>'), 'nothing queued', 5);
    rows('#jobs', jobs.jobs.map((j) => '<tr><td>' + esc(j.client_name) + '</td><td>' + since(j.started_at) +
      '</td><td class="' + cls(j.status) + '">' + esc(j.status) + '</td><td>' + esc(j.sync_type) + '</td><td>' +
      esc(j.triggered_by) + '</td><td class="num">' + j.rows_synced + '</td><td class="num">' +
      (j.duration_seconds === null ? '—' : j.duration_seconds.toFixed(1) + ' s') + '</td></tr>'), 'no jobs yet', 7);
    rows('#conflicts', conflicts.conflicts.map((c) => '<tr><td>' + c.log_id + '</td><td>' + esc(c.client_id) +
      '</td><td>' + esc(c.table_name) + '</td><td><code>' + esc(JSON.stringify(c.row_key)) + '</code></td><td>' +
      esc(c.conflict_type) + '</td><td>' + since(c.detected_at) + '</td><td>' +
      '<button data-action="resolve" data-id="' + c.log_id + '" data-keep="source">keep source</button> ' +
      '<button data-action="resolve" data-id="' + c.log_id + '" data-keep="target">keep target</button></td></tr>'),
      'no unresolved conflicts', 7);
    if ($('#msg').className === 'bad auth') say('');
  } catch (e) {
    say('cannot load: ' + e.message, 'bad auth');
  }
}
${RECOVER_SCRIPT}
refresh();
setInterval(refresh, 2000);
</script>
</body></html>`;
}

export function docsHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>owui-sync API</title><style>${STYLE}
  .method { font-weight: 700; text-transform: uppercase; } pre { margin: 0; white-space: pre-wrap; font-size: 12px; }</style></head>
<body><header><h1>owui-sync API</h1><a href="/openapi.json">openapi.json</a> <a href="/">dashboard</a></header>
<p>Every node serves this API (node-a :9443, node-b :9444). Changes need <code>Authorization: Bearer &lt;token&gt;</code>
with the listed scope when tokens are configured.</p>
<table id="ops"><thead><tr><th>method</th><th>path</th><th>summary</th><th>parameters / body</th></tr></thead><tbody></tbody></table>
<script>
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'})[c]);
fetch('/openapi.json').then((r) => r.json()).then((doc) => {
  const out = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters || []).map((p) => p.in + ' ' + p.name + (p.required ? '*' : '')).join(', ');
      const deref = (s) => (s && s.$ref ? doc.components.schemas[s.$ref.split('/').pop()] : s);
      const body = op.requestBody ? JSON.stringify(deref(op.requestBody.content['application/json'].schema), null, 1) : '';
      out.push('<tr><td class="method">' + esc(method) + '</td><td><code>' + esc(path) + '</code></td><td>' +
        esc(op.summary) + (op.description ? '<br><span class="mute">' + esc(op.description) + '</span>' : '') +
        '</td><td>' + esc(params) + (body ? '<pre>' + esc(body) + '</pre>' : '') + '</td></tr>');
    }
  }
  document.querySelector('#ops tbody').innerHTML = out.join('');
});
</script></body></html>`;
}
