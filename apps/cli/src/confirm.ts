import { InvalidInputError } from '@owui-sync/engine';
import type { CliContext } from './context.ts';

/**
 * Asks the operator to type `expected` to go ahead. `--yes` skips the question; without a terminal and without
 * `--yes` nothing destructive happens.
 */
export async function confirmTyped(
  ctx: CliContext,
  options: { question: string; expected: string; yes: boolean; flagHint: string },
): Promise<boolean> {
  if (options.yes) return true;
  if (!ctx.interactive) {
    throw new InvalidInputError(
      `refusing without confirmation: no terminal to ask on; re-run with ${options.flagHint} --yes to confirm`,
    );
  }
  const answer = await ctx.prompter.ask(options.question);
  return answer !== null && answer === options.expected;
}
