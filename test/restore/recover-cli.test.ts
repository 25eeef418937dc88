import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.ts';
import { syncctl } from '../cli/support.ts';
import { makeMiniOpenWebUI, scratchDir } from './helpers.ts';
import { importAsOpenWebUI } from './openwebui-import.ts';

describe('syncctl recover / deleted', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('syncctl-recover-');
  afterAll(() => scratch.cleanup());
  const env = () => ({
    ADMIN_URL: db.current.adminUrl,
    DATABASE_URL: db.current.serviceUrl,
    CLUSTER_NAME: 'recover',
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  const run = (args: string[]) => syncctl(args, { env: env() });

  it('deleted lists the chats deleted in the source; recover --deleted-only --to DIR writes them for import', async () => {
    const file = scratch.file('acme.db');
    makeMiniOpenWebUI(file, { chats: 8 }); // even chats Ada's (u1), odd Bob's (u2)
    expect((await run(['client', 'register', 'acme', '--sqlite', file])).code).toBe(0);
    expect((await run(['client', 'sync', 'acme', '--full'])).code).toBe(0);
    const nothing = await run(['deleted', 'acme']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout).toMatch(/Nothing deleted in the backup of "acme"/);

    const d = new Database(file);
    d.exec("DELETE FROM chat WHERE id IN ('chat-00002', 'chat-00003')");
    d.close();
    expect((await run(['client', 'sync', 'acme'])).code).toBe(0);

    const listed = await run(['deleted', 'acme']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/chat 2/);
    expect(listed.stdout).toMatch(/chat-00002\s+Chat 2\s+ada@example\.com/);
    expect(listed.stdout).toMatch(/chat-00003\s+Chat 3\s+bob@example\.com/);
    const ada = await run(['deleted', 'acme', '--user', 'Ada@example.com', '--json']);
    expect(ada.json()).toMatchObject({ user: { id: 'u1' }, rows: [{ key: 'chat-00002', title: 'Chat 2' }] });

    const dir = scratch.file('out');
    fs.mkdirSync(dir);
    const r = await run(['recover', 'acme', '--user', 'ada@example.com', '--deleted-only', '--to', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 chats of ada@example\.com written to .*acme-ada@example\.com-chats-\d{8}T\d{6}Z\.json/);
    expect(r.stdout).toMatch(/Import Chats/);
    const [written] = fs.readdirSync(dir);
    const imported = importAsOpenWebUI(fs.readFileSync(path.join(dir, written as string), 'utf8'));
    expect(imported.map((c) => c.title)).toEqual(['Chat 2']);

    // --chat, repeated; --json carries the summary, not the export text.
    const out = scratch.file('two.json');
    const two = await run([
      'recover',
      'acme',
      '--user',
      'u1',
      '--chat',
      'chat-00004',
      '--chat',
      'chat-00006',
      '--out',
      out,
      '--json',
    ]);
    expect(two.code, two.stderr).toBe(0);
    expect(two.json()).toMatchObject({ path: out, chats: [{ id: 'chat-00006' }, { id: 'chat-00004' }] });
    expect(two.json()).not.toHaveProperty('exportJson');
    expect(importAsOpenWebUI(fs.readFileSync(out, 'utf8')).map((c) => c.title)).toEqual(['Chat 6', 'Chat 4']);
    const again = await run(['recover', 'acme', '--user', 'u1', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; add --force/);
  });

  it('bad input: no user, unknown user, no output, --at in the past, bad times and limits', async () => {
    const cases: [string[], RegExp][] = [
      [['recover', 'acme', '--out', scratch.file('x.json')], /--user EMAIL\|ID/],
      [
        ['recover', 'acme', '--user', 'nobody@example.com', '--out', scratch.file('x.json')],
        /no user with id or e-mail "nobody@example.com"/,
      ],
      [['recover', 'acme', '--user', 'u1'], /--out FILE or --to DIR/],
      [['recover', 'acme', '--user', 'u1', '--out', 'a.json', '--to', '.'], /either --out FILE or --to DIR/],
      [['recover', 'acme', '--user', 'u1', '--to', scratch.file('missing')], /does not exist/],
      [['recover', 'acme', '--user', 'u1', '--out', scratch.file('x.json'), '--at', '-2h'], /oldest restorable time/],
      [
        ['recover', 'acme', '--user', 'u1', '--out', scratch.file('x.json'), '--at', 'yesterday'],
        /"yesterday" is not a time/,
      ],
      [['recover', 'ghost', '--user', 'u1', '--out', scratch.file('x.json')], /tenant "ghost" is not registered/],
      [['deleted', 'acme', '--limit', 'lots'], /--limit must be a whole number/],
      [['deleted', 'acme', '--table', 'nope'], /has no table "nope"/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(fs.existsSync(scratch.file('x.json'))).toBe(false);
    const now = await run(['recover', 'acme', '--user', 'u1', '--out', scratch.file('now.json'), '--at', 'now']);
    expect(now.code, now.stderr).toBe(0);
  });

  it('every command has --help', async () => {
    for (const [cmd, option] of [
      ['recover', /--deleted-only[\s\S]*--chat ID[\s\S]*--sqlite PATH[\s\S]*--include-auth/],
      ['deleted', /--user EMAIL\|ID[\s\S]*--table TABLE/],
    ] as const) {
      const h = await run([cmd, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(option);
    }
    const all = await run(['--help']);
    expect(all.stdout).toMatch(/recover NAME[\s\S]*deleted NAME/);
  });
});
