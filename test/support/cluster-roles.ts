import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { addClusterRole, type AddClusterRoleResult } from '@owui-sync/schema';
import { withUser, type TestDatabase } from './db.ts';

export type TestClusterRole = AddClusterRoleResult & { readonly url: string };

/**
 * Creates a cluster's own login role in the test database (named for this run, so the global teardown drops it),
 * with its queue schema and the cluster's tenant schemas.
 */
export async function createClusterRole(db: TestDatabase, cluster: string, tag: string): Promise<TestClusterRole> {
  const { runId, groupRole } = inject('pg');
  const role = `owui_c${tag}_${runId}_${randomBytes(2).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const result = await addClusterRole({ adminUrl: db.adminUrl, cluster, role, password, groupRole });
  return { ...result, url: withUser(db.adminUrl, role, password) };
}
