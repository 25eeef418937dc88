import { existsSync } from 'node:fs';
import http from 'node:http';

/** Whether a Docker container runs, asked over the Docker socket (no docker CLI needed). */

export type ContainerCheck =
  | { readonly checked: false; readonly reason: string }
  | { readonly checked: true; readonly exists: boolean; readonly running: boolean; readonly state: string | null };

export function dockerSocketPath(env: Readonly<Record<string, string | undefined>>): string | null {
  const host = env.DOCKER_HOST;
  if (host) return host.startsWith('unix://') ? host.slice('unix://'.length) : null;
  return '/var/run/docker.sock';
}

export async function checkContainer(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs = 3000,
): Promise<ContainerCheck> {
  const socketPath = dockerSocketPath(env);
  if (!socketPath) return { checked: false, reason: `DOCKER_HOST ${env.DOCKER_HOST} is not a unix socket` };
  if (!existsSync(socketPath)) return { checked: false, reason: `no Docker socket at ${socketPath}` };
  return new Promise((resolve) => {
    const req = http.request(
      { socketPath, path: `/containers/${encodeURIComponent(name)}/json`, method: 'GET', timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 404) return resolve({ checked: true, exists: false, running: false, state: null });
          if (res.statusCode !== 200) {
            return resolve({ checked: false, reason: `Docker answered HTTP ${res.statusCode ?? '?'}` });
          }
          try {
            const state = (JSON.parse(body) as { State?: { Running?: boolean; Status?: string } }).State;
            resolve({ checked: true, exists: true, running: Boolean(state?.Running), state: state?.Status ?? null });
          } catch {
            resolve({ checked: false, reason: 'Docker answered with unreadable JSON' });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve({ checked: false, reason: `Docker socket ${socketPath}: ${error.message}` }));
    req.end();
  });
}
