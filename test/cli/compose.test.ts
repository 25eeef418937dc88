import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The compose deployment. `docker compose config` is the authoritative check and runs wherever the Docker CLI
 * with the compose plugin is installed; the structural checks below parse the YAML with python3 (PyYAML) so the
 * promises of the file (names, ports, secrets, read-only tenants, health checks) are asserted everywhere else too.
 */

const DIR = path.resolve('compose');
const FILES = ['docker-compose.yml', 'docker-compose.supabase.yml'];
const SECRETS = ['postgres_password', 'sync_service_password', 'supabase_db_password', 'api_token'];
const hasCompose = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
const hasPyYaml = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;

type Service = {
  image?: string;
  container_name?: string;
  command?: string | string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  secrets?: string[];
  volumes?: (string | { source: string; target: string; read_only?: boolean })[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
};
type ComposeFile = { services: Record<string, Service>; secrets: Record<string, { file: string }> };

function load(file: string): ComposeFile {
  const json = execFileSync(
    'python3',
    ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path.join(DIR, file)],
    { encoding: 'utf8' },
  );
  return JSON.parse(json) as ComposeFile;
}

describe('compose deployment', () => {
  const created: string[] = [];
  beforeAll(() => {
    // `docker compose config` wants the secret files to exist; create empty stand-ins only where none exist.
    mkdirSync(path.join(DIR, 'secrets'), { recursive: true });
    for (const s of SECRETS) {
      const f = path.join(DIR, 'secrets', s);
      if (!existsSync(f)) {
        writeFileSync(f, 'placeholder\n', { mode: 0o600 });
        created.push(f);
      }
    }
  });
  afterAll(() => {
    for (const f of created) rmSync(f, { force: true });
  });

  // Reported as skipped where docker compose is not installed; the structural checks below run everywhere.
  it.skipIf(!hasCompose)('passes docker compose config', () => {
    for (const file of FILES) {
      const r = spawnSync('docker', ['compose', '-f', path.join(DIR, file), 'config', '--quiet'], { encoding: 'utf8' });
      expect(r.status, `${file}: ${r.stderr}`).toBe(0);
    }
  });

  it.skipIf(!hasPyYaml)('runs the seeds’ containers with health checks, secrets and read-only tenant data', () => {
    const local = load('docker-compose.yml');
    const s = local.services;
    expect(Object.keys(s).sort()).toEqual(
      ['api', 'db', 'init', 'prometheus', 'scheduler', 'sync-node-a', 'sync-node-b', 'syncctl', 'worker'].sort(),
    );
    expect(s.db?.image).toMatch(/supabase\/postgres:17\./);
    expect(s.db?.command).toBe('postgres -c config_file=/etc/postgresql/postgresql.conf');
    expect(s['sync-node-a']).toMatchObject({ container_name: 'openwebui-sync-node-a', command: ['node'] });
    expect(s['sync-node-a']?.environment).toMatchObject({ ROLE: 'node-a', API_PORT: 9443 });
    expect(s['sync-node-a']?.ports).toEqual(['${NODE_A_PORT:-9443}:9443']);
    expect(s['sync-node-b']).toMatchObject({ container_name: 'openwebui-sync-node-b' });
    expect(s['sync-node-b']?.environment).toMatchObject({ ROLE: 'node-b', API_PORT: 9444 });
    expect(s['sync-node-b']?.ports).toEqual(['${NODE_B_PORT:-9444}:9444']);
    // Scalable: no fixed name, no host port.
    expect(s.worker?.container_name).toBeUndefined();
    expect(s.worker?.ports).toBeUndefined();
    expect(s.worker?.command).toEqual(['worker']);
    expect(s.scheduler).toMatchObject({ command: ['scheduler'], profiles: ['scheduler'] });
    expect(s.scheduler?.ports).toBeUndefined();
    expect(s.api).toMatchObject({ command: ['api'], profiles: ['api'] });
    expect(s.api?.environment).toMatchObject({ API_PORT: 9445, API_TOKEN_FILE: '/run/secrets/api_token' });
    expect(s.api?.ports).toEqual(['${API_ONLY_PORT:-9445}:9445']);
    expect(s.api?.healthcheck?.test.join(' ')).toMatch(/9445\/health/);
    for (const name of ['sync-node-a', 'sync-node-b', 'api']) {
      expect(s[name]?.healthcheck?.test.join(' ')).toMatch(/\/health/);
      expect(s[name]?.depends_on?.init?.condition).toBe('service_completed_successfully');
    }
    expect(s.init?.command).toEqual(['init', '--no-write']);
    expect(s.init?.depends_on?.db?.condition).toBe('service_healthy');
    // Passwords only as secrets: no service carries one in its environment.
    for (const [name, svc] of Object.entries(s)) {
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        expect(`${name}.${k}=${v}`).not.toMatch(/PASSWORD=(?!\/run\/secrets\/)|:\/\/[^/@:]+:[^@]+@/);
      }
    }
    expect(Object.keys(local.secrets).sort()).toEqual(['api_token', 'postgres_password', 'sync_service_password']);
    expect(s['sync-node-a']?.secrets).toEqual(['sync_service_password', 'api_token']);
    expect(s['sync-node-a']?.environment?.API_TOKEN_FILE).toBe('/run/secrets/api_token');
    // A *_FILE variable without its secret mounted would stop the process: only nodes get the token.
    for (const [name, svc] of Object.entries(s)) {
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        const secret = /^\/run\/secrets\/(.+)$/.exec(String(v))?.[1];
        if (k.endsWith('_FILE') && secret) expect(svc.secrets, `${name}.${k}`).toContain(secret);
      }
    }
    for (const name of ['sync-node-a', 'sync-node-b', 'worker']) {
      const tenants = s[name]?.volumes?.find((v) => typeof v === 'object' && v.target === '/tenants');
      expect(tenants).toMatchObject({ read_only: true });
      expect(s[name]?.environment?.TENANTS_DIR).toBe('/tenants');
    }
    expect(s.prometheus?.profiles).toEqual(['monitoring']);
    // The alerting rules (unit-tested in test/monitoring) are mounted where compose/prometheus.yml loads them.
    expect(s.prometheus?.volumes).toContain('./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8')).toMatch(
      /rule_files:\n\s+- \/etc\/prometheus\/alerts\.yml/,
    );

    const supa = load('docker-compose.supabase.yml');
    expect(supa.services.db).toBeUndefined();
    expect(String(supa.services['sync-node-a']?.environment?.DATABASE_URL)).toMatch(/supabase\.co:5432/);
    // The same processes as the local file, the local database and Prometheus aside.
    expect(Object.keys(supa.services).sort()).toEqual(
      Object.keys(s)
        .filter((name) => name !== 'db' && name !== 'prometheus')
        .sort(),
    );
    expect(supa.services.api).toMatchObject({ command: ['api'], profiles: ['api'] });
    expect(supa.services.scheduler).toMatchObject({ command: ['scheduler'], profiles: ['scheduler'] });
  });
});
