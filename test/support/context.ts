/** What the global setup hands every test file (vitest `inject('pg')`). */
export type TestDatabaseContext = {
  /** Superuser URL on the `postgres` database. */
  readonly adminUrl: string;
  /** Template database with sync_metadata, pg-boss and grants installed. */
  readonly templateDb: string;
  /** Service role created for this run (dropped at the end). */
  readonly serviceRole: string;
  readonly servicePassword: string;
  /** NOLOGIN group role of the cluster roles, created for this run. */
  readonly groupRole: string;
  /** Unique id of this run; every database and role the run creates carries it. */
  readonly runId: string;
};

declare module 'vitest' {
  export interface ProvidedContext {
    pg: TestDatabaseContext;
  }
}
