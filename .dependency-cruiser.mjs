/**
 * Layer rules for src/, checked by `npm run lint:layers` (part of `npm run lint`).
 *
 * The rules below are dependency-cruiser's own. One rule is not expressible in them: "no import
 * cycle between top-level units of src/" (each folder src/X/ is one unit, each root file such as
 * src/app.ts is one). dependency-cruiser's `scope: 'folder'` cycles group a dependency by the
 * imported file's own folder (src/fhir/search, not src/fhir), so they miss a cycle like
 * src/fhir/a.ts → src/store/sqlite/b.ts, src/store/c.ts → src/fhir/search/d.ts. That rule
 * (`no-top-level-cycle`) is computed from the same cruise by the reporter in
 * .dependency-cruiser-report.mjs, which also prints the violations of the rules here.
 *
 * Type-only imports count (tsPreCompilationDeps): they couple two folders at compile time just
 * as much, so a type-only import back into a folder still makes a cycle.
 */

/** Anything HTTP: the framework, its middleware, node's servers, the test client, src/http. */
const HTTP = [
  '^src/http/',
  '^(node:)?(http|https|http2)$',
  '(^|/)node_modules/(@types/)?(express|helmet|supertest)/',
];

/** A storage dialect: its implementation folder, or its driver. */
const DIALECT = [
  '^src/store/(sqlite|postgres)/',
  '(^|/)node_modules/(@types/)?(better-sqlite3|pg|pg-[^/]+)/',
];

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'fhir-store-no-http',
      severity: 'error',
      comment:
        'src/fhir and src/store know nothing of HTTP: they are used by the REST layer, not part of it.',
      from: { path: '^src/(fhir|store)/' },
      to: { path: HTTP },
    },
    {
      name: 'progress-pure',
      severity: 'error',
      comment:
        'src/progress is pure functions over FHIR resources: it may import src/fhir, its own folder and ' +
        '@medplum types only (no store, no node: modules, no rest/referral/delivery).',
      from: { path: '^src/progress/' },
      to: { pathNot: ['^src/(progress|fhir)/', '(^|/)node_modules/@medplum/'] },
    },
    {
      name: 'progress-medplum-type-only',
      severity: 'error',
      comment: 'src/progress takes only types from @medplum packages (`import type`), no runtime code.',
      from: { path: '^src/progress/' },
      to: { path: '(^|/)node_modules/@medplum/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'dialect-only-in-store',
      severity: 'error',
      comment:
        'Only src/store chooses and imports a storage dialect; everything else sees the FhirStore interface.',
      from: { path: '^src/', pathNot: '^src/store/' },
      to: { path: DIALECT },
    },
    {
      name: 'config-imports-no-src',
      severity: 'error',
      comment: 'src/config is read by everything, so it imports nothing from src/ but its own folder.',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: '^src/config/' },
    },
    {
      name: 'src-not-to-test-or-bench',
      severity: 'error',
      comment: 'Production code never depends on tests, test support or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'src-resolvable',
      severity: 'error',
      comment:
        'Every import of src/ resolves (.js specifiers to .ts files): an import the cruiser cannot ' +
        'resolve would escape every rule above.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only packages such as @medplum/fhirtypes have no runtime entry point, only `types`.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
