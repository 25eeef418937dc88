import { createInterface, type Interface } from 'node:readline';

/** Streams and environment a command runs with (the real process, or a test's buffers). */
export type CliIo = {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
};

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

/**
 * Line-by-line questions on one readline interface. Lines that arrive before a question is asked are queued, so
 * piped answers are never lost; end of input answers every pending and later question with null.
 */
export class Prompter {
  readonly #rl: Interface;
  readonly #lines: string[] = [];
  readonly #waiting: ((line: string | null) => void)[] = [];
  #closed = false;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
  ) {
    this.#rl = createInterface({ input, terminal: false });
    this.#rl.on('line', (line) => {
      const next = this.#waiting.shift();
      if (next) next(line);
      else this.#lines.push(line);
    });
    this.#rl.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiting.splice(0)) w(null);
    });
  }

  /** Writes `question` and resolves with the next line (trimmed), or null at end of input. */
  ask(question: string): Promise<string | null> {
    this.output.write(question);
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued.trim());
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting.push((line) => resolve(line === null ? null : line.trim())));
  }

  close(): void {
    this.#rl.close();
  }
}
