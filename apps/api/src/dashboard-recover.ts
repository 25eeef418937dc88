/**
 * The dashboard's "Deleted chats" view: per tenant, the chats deleted in Open WebUI and kept in the backup, grouped
 * by user, each user with a download of their deleted chats as Open WebUI's chat export (POST …/recover, scope
 * recover). Loaded on demand, not polled: the listing can be long. Uses the dashboard script's helpers ($, esc,
 * api, headers, say, since).
 */

export const RECOVER_SECTION = `
<h2>Deleted chats</h2>
<p class="mute">Chats deleted in Open WebUI that the backup still holds. "download export" gives a user's deleted chats
as Open WebUI's chat export file: import it in Open WebUI under Settings → Data Controls → Import Chats. Needs a token
with the <code>recover</code> scope.</p>
<p><label>tenant <select id="deleted-tenant"></select></label>
<label>user <input id="deleted-user" size="28" placeholder="e-mail or id (optional)"></label>
<button id="deleted-show">show deleted chats</button></p>
<table id="deleted"><thead><tr><th>user</th><th>chat</th><th>title</th><th>deleted</th><th></th></tr></thead>
<tbody><tr><td colspan="5" class="mute">choose a tenant</td></tr></tbody></table>`;

export const RECOVER_SCRIPT = `
async function loadDeletedTenants() {
  try {
    const t = await api('/api/v1/tenants');
    const sel = $('#deleted-tenant');
    const current = sel.value;
    sel.innerHTML = t.tenants.map((x) => '<option>' + esc(x.client_name) + '</option>').join('');
    if (current) sel.value = current;
  } catch (e) { /* the main refresh reports it */ }
}
async function showDeleted() {
  const name = $('#deleted-tenant').value;
  if (!name) return;
  const user = $('#deleted-user').value.trim();
  try {
    const r = await api('/api/v1/tenants/' + encodeURIComponent(name) + '/deleted?limit=1000' +
      (user ? '&user=' + encodeURIComponent(user) : ''));
    const byUser = new Map();
    for (const row of r.rows) {
      const k = row.user_id || '';
      if (!byUser.has(k)) byUser.set(k, []);
      byUser.get(k).push(row);
    }
    const html = [];
    for (const [id, list] of byUser) {
      html.push('<tr class="deleted-user" data-user="' + esc(id) + '"><td colspan="4"><b>' + esc(list[0].email || id) +
        '</b> · ' + list.length + ' deleted chat' + (list.length === 1 ? '' : 's') + '</td><td>' +
        '<button data-action="recover" data-client="' + esc(name) + '" data-user="' + esc(id) + '" data-label="' +
        esc(list[0].email || id) + '">download export</button></td></tr>');
      for (const c of list) {
        html.push('<tr class="deleted-chat"><td></td><td><code>' + esc(c.key) + '</code></td><td>' + esc(c.title) +
          '</td><td>' + since(c.deleted_at) + '</td><td></td></tr>');
      }
    }
    rows('#deleted', html, 'no deleted chats in the backup of ' + esc(name) + (r.user ? ' for ' + esc(r.user.email || r.user.id) : ''), 5);
  } catch (e) { say('deleted chats: ' + e.message, 'bad'); }
}
async function downloadExport(name, user, label) {
  const res = await fetch('/api/v1/tenants/' + encodeURIComponent(name) + '/recover', { method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify({ user: user, deleted_only: true }) });
  if (!res.ok) {
    const b = await res.json().catch(() => ({}));
    say('export failed: ' + (b.message || res.status + ' ' + res.statusText), 'bad');
    return;
  }
  const blob = await res.blob();
  const m = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = m ? m[1] : 'chat-export.json';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  say('downloaded ' + res.headers.get('x-recovered-chats') + ' deleted chats of ' + label +
    ': import the file in Open WebUI (Settings → Data Controls → Import Chats)', 'ok');
}
$('#deleted-show').addEventListener('click', showDeleted);
$('#deleted-tenant').addEventListener('change', showDeleted);
$('#save-token').addEventListener('click', loadDeletedTenants);
document.addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-action="recover"]');
  if (b) downloadExport(b.dataset.client, b.dataset.user, b.dataset.label || b.dataset.user);
});
loadDeletedTenants();
`;
