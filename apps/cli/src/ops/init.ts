import pg from 'pg';
import { ConfigError, errorMessage, redactUrl } from '@owui-sync/engine';
import { sameLogin, assertRoleName, generatePassword, install } from '@owui-sync/schema';
import { readExistingCredentials, serviceUrlFrom, withPassword, writeCredentialsFile } from './credentials.ts';

export type InitOptions = {
  readonly adminUrl: string;
  readonly serviceRole: string;
  /** Password to set; otherwise a new role gets a generated one and an existing role keeps its own. */
  readonly servicePassword?: string | undefined;
  /** Generate and set a new password even if the role exists (running nodes must restart with it). */
  readonly rotatePassword?: boolean;
  /** Explicit service connection string (e.g. through a pooler); derived from the admin URL otherwise. */
  readonly syncUrl?: string | undefined;
  readonly credentialsFile: string;
  readonly writeCredentials?: boolean;
  /** NOLOGIN group role of the per-cluster roles (default sync_cluster). */
  readonly groupRole?: string | undefined;
};

export type InitResult = {
  readonly credentialsFile: string | null;
  readonly serviceRole: string;
  readonly roleCreated: boolean;
  readonly password: 'given' | 'generated' | 'kept';
  readonly migrationsApplied: readonly string[];
  readonly queueSchemaInstalled: boolean;
  readonly queuesCreated: readonly string[];
  readonly adminUrl: string;
  readonly syncUrl: string;
};

/**
 * `syncctl init`: installs or upgrades sync_metadata, the pg-boss schema and queues and the service role (through
 * the admin connection), then writes ADMIN_URL, SYNC_URL and SYNC_SERVICE_PASSWORD to the credentials file with mode
 * 600. Safe to re-run: nothing is re-applied and an existing role keeps the password the file already holds.
 */
export async function initialize(options: InitOptions): Promise<InitResult & { syncUrlPlain: string }> {
  const role = assertRoleName(options.serviceRole);
  if (options.syncUrl && sameLogin(options.syncUrl, options.adminUrl)) {
    throw new ConfigError([
      `the service URL logs in as the admin user (${redactUrl(options.syncUrl)}); the nodes must use the restricted ` +
        `role "${role}": drop --sync-url/SYNC_URL or point it at ${role}`,
    ]);
  }
  const existing = readExistingCredentials(options.credentialsFile);
  const roleExists = await serviceRoleExists(options.adminUrl, role);

  let password: string;
  let source: InitResult['password'];
  let setPassword: string | undefined;
  if (options.servicePassword) {
    password = options.servicePassword;
    source = 'given';
    setPassword = password;
  } else if (!roleExists || options.rotatePassword) {
    password = generatePassword();
    source = 'generated';
    setPassword = password;
  } else if (existing.SYNC_SERVICE_PASSWORD) {
    password = existing.SYNC_SERVICE_PASSWORD;
    source = 'kept';
  } else if (options.syncUrl && new URL(options.syncUrl).password) {
    password = decodeURIComponent(new URL(options.syncUrl).password);
    source = 'kept';
  } else {
    throw new ConfigError([
      `role "${role}" already exists but its password is not in ${options.credentialsFile}; pass ` +
        '--service-password PASSWORD (or SYNC_SERVICE_PASSWORD) to set it, or --rotate-password to generate a new one ' +
        '(restart running nodes with the new SYNC_URL afterwards)',
    ]);
  }

  const syncUrl = options.syncUrl
    ? withPassword(options.syncUrl, password)
    : serviceUrlFrom(options.adminUrl, role, password);
  if (sameLogin(syncUrl, options.adminUrl)) {
    throw new ConfigError([
      `the service role "${role}" is the admin user of ${redactUrl(options.adminUrl)}; choose another --service-role`,
    ]);
  }

  const installed = await install({
    adminUrl: options.adminUrl,
    serviceRole: role,
    ...(setPassword !== undefined ? { servicePassword: setPassword } : {}),
    ...(options.groupRole ? { groupRole: options.groupRole } : {}),
  });
  await checkServiceLogin(syncUrl, role);

  let credentialsFile: string | null = null;
  if (options.writeCredentials !== false) {
    writeCredentialsFile(options.credentialsFile, {
      ADMIN_URL: options.adminUrl,
      SYNC_URL: syncUrl,
      SYNC_SERVICE_PASSWORD: password,
    });
    credentialsFile = options.credentialsFile;
  }
  return {
    credentialsFile,
    serviceRole: role,
    roleCreated: installed.roleCreated,
    password: source,
    migrationsApplied: installed.migrations.applied,
    queueSchemaInstalled: installed.queueSchemaInstalled,
    queuesCreated: installed.queuesCreated,
    adminUrl: redactUrl(options.adminUrl),
    syncUrl: redactUrl(syncUrl),
    syncUrlPlain: syncUrl,
  };
}

async function serviceRoleExists(adminUrl: string, role: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1::text', [role]);
    return (r.rowCount ?? 0) > 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkServiceLogin(syncUrl: string, role: string): Promise<void> {
  const client = new pg.Client({ connectionString: syncUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query('SELECT count(*) FROM sync_metadata.hosts');
  } catch (error) {
    throw new ConfigError([
      `installed, but the service role "${role}" cannot log in and read sync_metadata through ${redactUrl(syncUrl)}: ` +
        `${errorMessage(error)}; check pg_hba.conf / the pooler user (Supabase pooler: ${role}.<project_ref>) and re-run`,
    ]);
  } finally {
    await client.end().catch(() => undefined);
  }
}
