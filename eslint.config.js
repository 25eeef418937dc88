import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const APPS = ['api', 'cli', 'node', 'scheduler', 'worker'];

/** no-restricted-imports for the package boundaries; `apps` are app packages this file may not import at all. */
function boundaryRule(apps) {
  const patterns = [
    {
      group: ['**/packages/*/src', '**/packages/*/src/**', '../../schema/**', '../../engine/**', '../../fixtures/**'],
      message:
        'Import the package through its entry: @owui-sync/engine[/area], @owui-sync/schema, @owui-sync/fixtures.',
    },
    {
      group: ['@owui-sync/*/src', '@owui-sync/*/src/**'],
      message: "Import a package's entry (see its package.json exports), not its source files.",
    },
    {
      group: ['**/apps/*/src', '**/apps/*/src/**', ...APPS.flatMap((a) => [`../../${a}/**`, `../../../${a}/**`])],
      message: "Never import another app's files: move what is shared into a package.",
    },
  ];
  if (apps.length > 0) {
    patterns.push({
      group: apps.map((a) => `@owui-sync/${a}`),
      message:
        'Not from here: an app depends on no other app (apps/node on @owui-sync/api and syncctl on the process apps\n' +
        'only), and schema and fixtures on no other package.',
    });
  }
  return ['error', { patterns }];
}

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'coverage/**', 'artifacts/**', 'bench/.work/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` object instead of enum.' },
      ],
    },
  },
  {
    // Package boundaries. A package is entered only through its `exports` (@owui-sync/engine, @owui-sync/engine/sync,
    // @owui-sync/schema, @owui-sync/fixtures, …): never a relative path into packages/*/src nor a …/src/… subpath.
    // An app never reaches into another app's files. The one allowed link between apps is a package entry:
    // apps/node composes the engine's node runtime with the API server from @owui-sync/api, and syncctl
    // (apps/cli) starts @owui-sync/node, @owui-sync/worker, @owui-sync/scheduler and @owui-sync/api; the API's Hono app stays in
    // apps/api because the engine never serves HTTP. Inside a package, relative imports are the rule.
    files: ['apps/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'packages/**/*.ts'],
    rules: { 'no-restricted-imports': boundaryRule([]) },
  },
  {
    files: ['apps/node/**/*.ts'],
    rules: { 'no-restricted-imports': boundaryRule(['cli', 'node', 'scheduler', 'worker']) },
  },
  { files: ['apps/cli/**/*.ts'], rules: { 'no-restricted-imports': boundaryRule(['cli']) } },
  ...['api', 'scheduler', 'worker'].map((app) => ({
    files: [`apps/${app}/**/*.ts`],
    rules: { 'no-restricted-imports': boundaryRule(APPS) },
  })),
  {
    files: ['packages/**/*.ts'],
    rules: { 'no-restricted-imports': boundaryRule(APPS) },
  },
  {
    // The dependency direction between packages (madge sees cycles within a package, not through package names):
    // engine → schema; schema and fixtures depend on no other package.
    files: ['packages/schema/**/*.ts', 'packages/fixtures/**/*.ts'],
    rules: { 'no-restricted-imports': boundaryRule([...APPS, 'engine', 'engine/*', 'schema', 'fixtures']) },
  },
  {
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
