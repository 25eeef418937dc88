import { readFileSync } from 'node:fs';

/** The product's version (the repository's package.json), recorded in the host registry. */
export function productVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
