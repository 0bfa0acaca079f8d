/**
 * dependency-cruiser reporter plugin for `npm run lint:layers` (rules: .dependency-cruiser.mjs).
 *
 * Prints the violations of the configured rules, then checks `no-top-level-cycle`: the imports
 * between top-level units of src/ (a folder src/X/ or a root file src/x.ts) must form no cycle.
 * Every import between two units of one strongly connected component lies on a cycle, so each is
 * listed (importer → imported); removing one direction of each loop breaks the cycle.
 * Exit code 1 if anything of severity error was found.
 */

const CYCLE_RULE = 'no-top-level-cycle';

/** The top-level unit of a path in src/, or undefined for a path outside src/. */
function unitOf(path) {
  return /^src\/[^/]+/.exec(path)?.[0];
}

/** Strongly connected components with more than one node (Tarjan). */
function cyclicComponents(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (node) => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node), low.get(to)));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node), index.get(to)));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) {
    if (!index.has(node)) visit(node);
  }
  return components;
}

/** `no-top-level-cycle` violations: one entry per import between units of one cycle. */
function topLevelCycles(modules) {
  /** "from unit → to unit" → the imports behind it */
  const imports = new Map();
  const graph = new Map();
  for (const module of modules) {
    const from = unitOf(module.source);
    if (!from) continue;
    for (const dependency of module.dependencies) {
      const to = unitOf(dependency.resolved);
      if (!to || to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from).add(to);
      const key = `${from} → ${to}`;
      if (!imports.has(key)) imports.set(key, []);
      const typeOnly = dependency.dependencyTypes.includes('type-only') ? ' (type-only)' : '';
      imports.get(key).push(`${module.source} → ${dependency.resolved}${typeOnly}`);
    }
  }
  return cyclicComponents(graph).map((units) => ({
    units,
    edges: [...imports]
      .filter(([key]) => {
        const [from, to] = key.split(' → ');
        return units.includes(from) && units.includes(to);
      })
      .sort(([a], [b]) => a.localeCompare(b)),
  }));
}

/** @param {import('dependency-cruiser').ICruiseResult} result */
export default function report(result) {
  const lines = [];
  const { violations, totalCruised, totalDependenciesCruised } = result.summary;
  for (const violation of violations) {
    const to = violation.to === violation.from ? '' : ` → ${violation.to}`;
    lines.push(`  ${violation.rule.severity} ${violation.rule.name}: ${violation.from}${to}`);
  }
  const cycles = topLevelCycles(result.modules);
  for (const { units, edges } of cycles) {
    lines.push(`  error ${CYCLE_RULE}: ${units.join(', ')} import one another`);
    for (const [pair, found] of edges) {
      lines.push(`      ${pair}`);
      for (const line of found) lines.push(`          ${line}`);
    }
  }
  const errors = result.summary.error + cycles.length;
  const counts =
    `${result.summary.error} rule violation(s) of severity error, ${result.summary.warn} warning(s), ` +
    `${cycles.length} top-level cycle(s); ${totalCruised} modules, ${totalDependenciesCruised ?? 0} dependencies cruised.`;
  lines.push(
    '',
    errors > 0 || result.summary.warn > 0 ? `✘ ${counts}` : `✔ no layer violations: ${counts}`,
    '',
  );
  return { output: lines.join('\n'), exitCode: errors > 0 ? 1 : 0 };
}
