import { parseArgs } from 'node:util';
import { InvalidInputError } from '@owui-sync/engine';
import type { CliContext } from './context.ts';

/** One `syncctl` command: its words, arguments, options and handler. */
export type OptionSpec = {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly description: string;
  /** Shown after the option in help, e.g. SECONDS. */
  readonly placeholder?: string;
  /** A string option that may be given several times: every value is in ParsedInput.lists. */
  readonly multiple?: boolean;
};

export type Positional = { readonly name: string; readonly required?: boolean; readonly description: string };

export type ParsedInput = {
  readonly positionals: readonly string[];
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** Every value of each `multiple` option, in order (values holds the last). */
  readonly lists?: Readonly<Record<string, readonly string[]>>;
};

export type Command = {
  readonly path: readonly string[];
  readonly summary: string;
  readonly description?: string;
  readonly positionals?: readonly Positional[];
  readonly options?: Readonly<Record<string, OptionSpec>>;
  readonly examples?: readonly string[];
  /** Returns the exit code (0 when omitted). */
  run(ctx: CliContext, input: ParsedInput): Promise<number | void>;
};

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print the result as JSON (for scripts); log lines as JSON too' },
  verbose: {
    type: 'boolean',
    description: 'log details and error stacks (also LOG_LEVEL=debug); LOG_FORMAT=json for JSON log lines',
  },
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
  'database-url': {
    type: 'string',
    placeholder: 'URL',
    description: 'service-role connection (default: DATABASE_URL, else SYNC_URL from .credentials)',
  },
  'admin-url': {
    type: 'string',
    placeholder: 'URL',
    description: 'admin connection (default: ADMIN_URL, else from .credentials)',
  },
  credentials: {
    type: 'string',
    placeholder: 'FILE',
    description: 'credentials file (default: CREDENTIALS_FILE, else ./.credentials)',
  },
  cluster: { type: 'string', placeholder: 'NAME', description: 'cluster name (default: CLUSTER_NAME, else owui-sync)' },
};

/** A usage mistake: exit 1 with the command's help hint. */
export class UsageError extends InvalidInputError {
  constructor(
    message: string,
    readonly commandPath: readonly string[],
  ) {
    super(`${message}\nrun: syncctl ${[...commandPath, '--help'].join(' ')}`);
  }
}

export function parseCommandArgs(command: Command, args: readonly string[]): ParsedInput {
  const specs = { ...GLOBAL_OPTIONS, ...command.options };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  }
  // A value that starts with a dash and a digit (a relative time such as `--at -2h`) is a value, not an option.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const next = args[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i += 1;
    } else joined.push(arg);
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: joined, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw new UsageError(text.replace(/\. To specify a positional argument.*$/s, ''), command.path);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const lists = repeatedValues(joined, specs);
  if (values.help) return { positionals: parsed.positionals, values, lists };
  const declared = command.positionals ?? [];
  const required = declared.filter((p) => p.required).length;
  if (parsed.positionals.length < required) {
    const missing = declared.slice(parsed.positionals.length).filter((p) => p.required);
    throw new UsageError(`missing ${missing.map((p) => p.name).join(' ')}`, command.path);
  }
  if (parsed.positionals.length > declared.length) {
    throw new UsageError(`unexpected argument "${parsed.positionals[declared.length]}"`, command.path);
  }
  return { positionals: parsed.positionals, values, lists };
}

/** Every value given to each `multiple` option (parseArgs, which validated them, keeps only the last). */
function repeatedValues(
  args: readonly string[],
  specs: Readonly<Record<string, OptionSpec>>,
): Record<string, readonly string[]> {
  const lists: Record<string, string[]> = {};
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq < 0 ? undefined : eq) : '';
    if (!specs[name]?.multiple) continue;
    const value = eq < 0 ? args[(i += 1)] : arg.slice(eq + 1);
    if (value !== undefined) (lists[name] ??= []).push(value);
  }
  return lists;
}

export function commandHelp(command: Command): string {
  const args = (command.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ');
  const lines = [`Usage: syncctl ${command.path.join(' ')}${args ? ` ${args}` : ''} [options]`, '', command.summary];
  if (command.description) lines.push('', command.description);
  if (command.positionals?.length) {
    lines.push('', 'Arguments:');
    for (const p of command.positionals) lines.push(`  ${p.name.padEnd(28)}${p.description}`);
  }
  const optionLines = (specs: Readonly<Record<string, OptionSpec>>) =>
    Object.entries(specs).map(([name, s]) => {
      const flag = `${s.short ? `-${s.short}, ` : ''}--${name}${s.placeholder ? ` ${s.placeholder}` : ''}`;
      return `  ${flag.padEnd(28)}${s.description}`;
    });
  if (command.options && Object.keys(command.options).length)
    lines.push('', 'Options:', ...optionLines(command.options));
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS));
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  lines.push('', 'Exit codes: 0 ok, 1 error, 2 unresolved conflicts remain.');
  return lines.join('\n');
}

/** Help for a group of commands (`syncctl client --help`) or the whole tool. */
export function groupHelp(prefix: readonly string[], commands: readonly Command[]): string {
  const members = commands.filter((c) => prefix.every((w, i) => c.path[i] === w) && c.path.length > prefix.length);
  const name = prefix.length ? `syncctl ${prefix.join(' ')}` : 'syncctl';
  const lines = [`Usage: ${name} <command> [options]`, ''];
  if (!prefix.length) {
    lines.push('Operate owui-sync: tenants (Open WebUI SQLite databases) backed up into PostgreSQL by a cluster.', '');
  }
  lines.push('Commands:');
  for (const c of members) {
    const args = (c.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ');
    lines.push(`  ${`${c.path.join(' ')}${args ? ` ${args}` : ''}`.padEnd(44)}${c.summary}`);
  }
  lines.push('', `Run "syncctl <command> --help" for a command's options.`);
  if (!prefix.length) {
    lines.push(
      '',
      'Connections come from DATABASE_URL (service role) and ADMIN_URL, else from ./.credentials (written by',
      'syncctl init). Exit codes: 0 ok, 1 error, 2 unresolved conflicts remain.',
    );
  }
  return lines.join('\n');
}

/** Finds the command whose words match the start of argv (longest match first). */
export function findCommand(
  commands: readonly Command[],
  argv: readonly string[],
): { command: Command; rest: string[] } | { group: string[] } | undefined {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  for (let n = words.length; n > 0; n--) {
    const prefix = words.slice(0, n);
    const command = commands.find((c) => c.path.length === n && c.path.every((w, i) => w === prefix[i]));
    if (command) return { command, rest: argv.slice(n) as string[] };
    if (commands.some((c) => c.path.length > n && prefix.every((w, i) => c.path[i] === w))) {
      return { group: prefix };
    }
  }
  return undefined;
}
