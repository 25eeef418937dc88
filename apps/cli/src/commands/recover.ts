import fs from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '@owui-sync/engine';
import { exportFileName, listDeleted, parseRestoreTime, recoverUserChats } from '@owui-sync/engine/restore';
import type { Command } from '../command.ts';
import { duration, table } from '../format.ts';

const NAME = { name: 'NAME', required: true, description: 'tenant (client) name, e.g. acme-corp' } as const;

export const recoverCommand: Command = {
  path: ['recover'],
  summary: "write one user's chats from the backup as a file Open WebUI imports (its chat export JSON)",
  description:
    'Reads the backup (live chats and chats deleted in the source, which the backup keeps) and writes the user’s\n' +
    'chats in Open WebUI’s own chat export format: the user (or an admin, into their own account) loads it with\n' +
    'Settings → Data Controls → Import Chats, and Open WebUI adds them as new chats. The user is found by e-mail\n' +
    '(any case) or id, also when the account itself was deleted. --sqlite also writes a SQLite file with only that\n' +
    'user’s rows (user, chats, messages, files metadata, folders, tags, memories, notes, feedback; auth with its\n' +
    'password hash only with --include-auth). Nothing is written to the tenant’s database; files are mode 0600.\n' +
    'See docs/restore.md, "Selective recovery".',
  positionals: [NAME],
  options: {
    user: { type: 'string', placeholder: 'EMAIL|ID', description: 'whose chats (required)' },
    'deleted-only': { type: 'boolean', description: 'only chats deleted in the source (see: syncctl deleted NAME)' },
    chat: { type: 'string', placeholder: 'ID', multiple: true, description: 'only this chat (repeat for several)' },
    at: {
      type: 'string',
      placeholder: 'TIME',
      description: 'as the last run at or before TIME saw them (ISO, or -30m, -2h, -7d), from the row history',
    },
    out: { type: 'string', placeholder: 'FILE', description: 'write the export JSON to FILE' },
    to: { type: 'string', placeholder: 'DIR', description: 'write it into DIR as NAME-USER-chats-TIME.json' },
    sqlite: { type: 'string', placeholder: 'PATH', description: "also write a SQLite file with only the user's rows" },
    'include-auth': { type: 'boolean', description: 'put the auth row (password hash) in the SQLite file too' },
    force: { type: 'boolean', description: 'replace output files that exist' },
  },
  examples: [
    'syncctl recover acme-corp --user ada@example.com --deleted-only --to /srv/recovered',
    'syncctl recover acme-corp --user ada@example.com --chat 5f0c… --chat 91ab… --out ada.json',
    'syncctl recover acme-corp --user 3c1d… --out ada.json --sqlite ada.db',
  ],
  async run(ctx, { positionals, values, lists }) {
    const name = positionals[0] as string;
    const user = typeof values.user === 'string' ? values.user.trim() : '';
    if (!user) throw new InvalidInputError(`say whose chats to recover: syncctl recover ${name} --user EMAIL|ID`);
    if (values.out !== undefined && values.to !== undefined) {
      throw new InvalidInputError('give either --out FILE or --to DIR, not both');
    }
    let out: string;
    if (typeof values.out === 'string' && values.out) out = path.resolve(ctx.io.cwd, values.out);
    else if (typeof values.to === 'string' && values.to) {
      const dir = path.resolve(ctx.io.cwd, values.to);
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
        throw new InvalidInputError(`directory ${dir} does not exist; create it first or choose another --to`);
      }
      out = path.join(dir, exportFileName(name, user));
    } else {
      throw new InvalidInputError(`say where to write the export: --out FILE or --to DIR`);
    }
    const at = typeof values.at === 'string' ? parseRestoreTime(values.at) : null;
    const chatIds = (lists?.chat ?? []).map((c) => c.trim()).filter(Boolean);
    const { pool } = ctx.readPool();
    const r = await recoverUserChats({
      pool,
      clientName: name,
      user,
      at,
      deletedOnly: Boolean(values['deleted-only']),
      chatIds,
      out,
      ...(typeof values.sqlite === 'string' ? { sqlite: path.resolve(ctx.io.cwd, values.sqlite) } : {}),
      includeAuth: Boolean(values['include-auth']),
      force: Boolean(values.force),
      scope: { cluster: ctx.cluster },
      logger: ctx.logger,
    });
    const { exportJson: _text, ...summary } = r;
    ctx.result(summary, () => {
      const who = `${r.user.email ?? r.user.id}${r.user.deletedAt ? ` (account deleted ${r.user.deletedAt})` : ''}`;
      const deleted = r.chats.filter((c) => c.deletedAt).length;
      const lines = [
        `✅ ${r.chats.length} chats of ${who} written to ${r.path} (${deleted} deleted in the source), ` +
          duration(r.durationSeconds),
      ];
      if (r.chats.length > 0) {
        lines.push(
          '',
          table(r.chats.slice(0, 20), [
            { header: 'Chat', value: (c) => c.id },
            { header: 'Title', value: (c) => (c.title.length > 48 ? `${c.title.slice(0, 47)}…` : c.title) },
            { header: 'Deleted', value: (c) => c.deletedAt ?? '' },
          ]),
        );
        if (r.chats.length > 20) lines.push(`… and ${r.chats.length - 20} more (--json lists all)`);
      }
      if (r.sqlite) {
        const rows = Object.entries(r.sqlite.tables)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ');
        lines.push('', `   SQLite file with only this user's rows: ${r.sqlite.path} (${rows})`);
        if (!r.sqlite.authIncluded) lines.push('   auth (password hash) left out; add --include-auth to keep it');
      }
      for (const w of r.warnings) lines.push(`   ⚠️  ${w}`);
      lines.push(
        '',
        `   Import it in Open WebUI${r.openwebuiRevision ? ` (backup schema revision ${r.openwebuiRevision})` : ''}: ` +
          'Settings → Data Controls → Import Chats, signed in as the user (or as an admin, into their own account).',
      );
      return lines.join('\n');
    });
    return 0;
  },
};

export const deletedCommand: Command = {
  path: ['deleted'],
  summary: 'list what can be recovered: rows deleted in the source and kept in the backup, with when',
  description:
    'By default the deleted chats (title, owner, when deleted), newest first, and a count of deleted rows per\n' +
    'table. --user limits both to one user (e-mail or id, also a deleted account); --table lists another table.\n' +
    'Recover chats with: syncctl recover NAME --user EMAIL --deleted-only --to DIR',
  positionals: [NAME],
  options: {
    user: { type: 'string', placeholder: 'EMAIL|ID', description: "only this user's rows" },
    table: { type: 'string', placeholder: 'TABLE', description: 'list this table’s deleted rows (default chat)' },
    limit: { type: 'string', placeholder: 'N', description: 'rows to list (default 100, at most 10000)' },
  },
  examples: [
    'syncctl deleted acme-corp',
    'syncctl deleted acme-corp --user ada@example.com',
    'syncctl deleted acme-corp --table user',
  ],
  async run(ctx, { positionals, values }) {
    const name = positionals[0] as string;
    let limit = 100;
    if (typeof values.limit === 'string') {
      if (!/^\d+$/.test(values.limit.trim())) {
        throw new InvalidInputError(`--limit must be a whole number from 1 to 10000, got "${values.limit}"`);
      }
      limit = Number(values.limit);
    }
    const { pool } = ctx.readPool();
    const r = await listDeleted({
      pool,
      clientName: name,
      user: typeof values.user === 'string' ? values.user : null,
      table: typeof values.table === 'string' ? values.table : null,
      limit,
      scope: { cluster: ctx.cluster },
    });
    ctx.result(r, () => {
      const whose = r.user ? ` of ${r.user.email ?? r.user.id}${r.user.deletedAt ? ' (account deleted)' : ''}` : '';
      if (r.counts.length === 0) return `Nothing deleted${whose} in the backup of "${name}".`;
      const lines = [
        `Deleted rows${whose} kept in the backup of "${name}": ` +
          r.counts.map((c) => `${c.table} ${c.deleted}`).join(', '),
        '',
      ];
      if (r.rows.length === 0) lines.push(`No deleted rows in table ${r.table}.`);
      else
        lines.push(
          table(r.rows, [
            { header: 'Deleted at', value: (x) => x.deletedAt },
            { header: r.table === 'chat' ? 'Chat' : 'Key', value: (x) => x.key.replaceAll('\u001f', '/') },
            ...(r.table === 'chat'
              ? [{ header: 'Title', value: (x: (typeof r.rows)[number]) => (x.title ?? '').slice(0, 48) }]
              : []),
            { header: 'User', value: (x) => x.email ?? x.userId ?? '' },
          ]),
        );
      if (r.truncated) lines.push(`… more than ${r.rows.length}; raise --limit`);
      return lines.join('\n');
    });
    return 0;
  },
};
