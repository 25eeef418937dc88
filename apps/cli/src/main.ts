import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppError } from '@owui-sync/engine';
import { commandHelp, findCommand, groupHelp, parseCommandArgs, type Command } from './command.ts';
import { COMMANDS } from './commands/index.ts';
import { CliContext, jsonReplacer } from './context.ts';
import { describeError } from './errors.ts';
import { processIo, type CliIo } from './io.ts';

export { describeError };
export type { CliIo } from './io.ts';

export const EXIT = { ok: 0, error: 1, conflicts: 2 } as const;

/** Runs `syncctl` with `argv` (without node and script) and returns the exit code. Never calls process.exit. */
export async function run(argv: readonly string[], io: CliIo = processIo(), commands = COMMANDS): Promise<number> {
  const wantsJson = argv.includes('--json');
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    const target = argv[0] === 'help' ? argv.slice(1) : [];
    const found = target.length ? findCommand(commands, target) : undefined;
    if (found && 'command' in found) io.stdout.write(`${commandHelp(found.command)}\n`);
    else io.stdout.write(`${groupHelp(found && 'group' in found ? found.group : [], commands)}\n`);
    return argv.length === 0 ? EXIT.error : EXIT.ok;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    io.stdout.write('syncctl 0.1.0\n');
    return EXIT.ok;
  }
  const found = findCommand(commands, argv);
  if (!found || 'group' in found) {
    const words = argv.filter((a) => !a.startsWith('-'));
    const group = found && 'group' in found ? found.group : [];
    const helpAsked = argv.includes('--help') || argv.includes('-h');
    if (group.length && (helpAsked || words.length === group.length)) {
      io.stdout.write(`${groupHelp(group, commands)}\n`);
      return helpAsked ? EXIT.ok : EXIT.error;
    }
    const unknown = words.slice(0, group.length + 1).join(' ');
    return fail(io, wantsJson, `unknown command "${unknown}"; run: syncctl ${[...group, '--help'].join(' ')}`);
  }
  return runCommand(found.command, found.rest, io);
}

async function runCommand(command: Command, args: readonly string[], io: CliIo): Promise<number> {
  const wantsJson = args.includes('--json');
  let ctx: CliContext | undefined;
  try {
    const input = parseCommandArgs(command, args);
    if (input.values.help) {
      io.stdout.write(`${commandHelp(command)}\n`);
      return EXIT.ok;
    }
    const v = input.values;
    ctx = new CliContext(io, {
      json: Boolean(v.json),
      verbose: Boolean(v.verbose),
      ...(typeof v['database-url'] === 'string' ? { databaseUrl: v['database-url'] } : {}),
      ...(typeof v['admin-url'] === 'string' ? { adminUrl: v['admin-url'] } : {}),
      ...(typeof v.credentials === 'string' ? { credentials: v.credentials } : {}),
      ...(typeof v.cluster === 'string' ? { cluster: v.cluster } : {}),
    });
    const code = await command.run(ctx, input);
    return code ?? EXIT.ok;
  } catch (error) {
    return fail(io, wantsJson, describeError(error), error instanceof AppError ? error.code : 'ERROR');
  } finally {
    await ctx?.close();
  }
}

function fail(io: CliIo, json: boolean, message: string, code = 'USAGE'): number {
  if (json) io.stdout.write(`${JSON.stringify({ error: { code, message } }, jsonReplacer, 2)}\n`);
  else io.stderr.write(`❌ ERROR: ${message}\n`);
  return EXIT.error;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`❌ ERROR: ${describeError(error)}\n`);
      process.exitCode = 1;
    },
  );
}
