#!/usr/bin/env node
// syncctl: runs the TypeScript sources directly (tsx), so `npx syncctl …` works from a checkout without a build.
import { register } from 'tsx/esm/api';

register();
// `syncctl jobs | head -3`: a reader that goes away early is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}
const { run } = await import('../src/main.ts');
process.exitCode = await run(process.argv.slice(2));
// Every command has finished here (long-running ones return on shutdown); do not let a stray handle keep us alive.
setTimeout(() => process.exit(), 3000).unref();
