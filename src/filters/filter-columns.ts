// Which columns a filter looks at: a client may only filter on columns its grants let it see,
// otherwise matching or not would reveal a hidden column's value.

import type { FilterNode } from './filter-ast.ts';

/** The column names a filter references. */
export function filterColumns<Value, List>(filter: FilterNode<Value, List>): Set<string> {
  const columns = new Set<string>();
  const visit = (node: FilterNode<Value, List>): void => {
    switch (node.kind) {
      case 'and':
      case 'or':
        node.children.forEach(visit);
        return;
      case 'not':
        visit(node.child);
        return;
      case 'compare':
      case 'in':
        columns.add(node.column);
        return;
      case 'all':
        return;
    }
  };
  visit(filter);
  return columns;
}
