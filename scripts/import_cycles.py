"""List the import cycles between telehealth's packages and between its modules.

Reads the import graph with grimp (import-linter's graph library), which counts every import
statement: at the top of a module, inside a function, and under ``if TYPE_CHECKING``.
A "package" is a direct child of ``telehealth`` (``telehealth.consults``, ``telehealth.db``).
Prints each strongly connected group of packages with the imports that tie it, then the
largest cycle of modules. Exit status 1 if any package cycle exists.

    PYTHONPATH=. .venv/bin/python scripts/import_cycles.py [IMPORTER->IMPORTED ...]

Each argument leaves out the imports from modules starting with IMPORTER of modules starting
with IMPORTED, to see what remains once those are gone (``telehealth.db->telehealth.fhir``).
"""

from __future__ import annotations

import sys
from collections import defaultdict

import grimp

ROOT = "telehealth"


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the groups of nodes that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return [group for group in groups if len(group) > 1]


def main(left_out: list[str]) -> int:
    dropped = [tuple(pair.split("->", 1)) for pair in left_out]
    graph = grimp.build_graph(ROOT, include_external_packages=False, cache_dir=None)
    modules = {m for m in graph.modules if m.startswith(ROOT + ".")}
    module_edges: dict[str, set[str]] = defaultdict(set)
    package_edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer in modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if not imported.startswith(ROOT + "."):
                continue
            if any(importer.startswith(a) and imported.startswith(b) for a, b in dropped):
                continue
            module_edges[importer].add(imported)
            source, target = package_of(importer), package_of(imported)
            if source != target:
                package_edges[source].add(target)
                why[(source, target)].append(f"{importer} -> {imported}")
    packages = {package_of(m) for m in modules}
    package_groups = strongly_connected(packages, package_edges)
    print(f"package cycles: {len(package_groups)} group(s)")
    for group in package_groups:
        names = sorted(p.removeprefix(ROOT + ".") for p in group)
        print(f"  {len(group)} packages: {', '.join(names)}")
        for source in sorted(group):
            for target in sorted(package_edges[source] & group):
                first = sorted(why[(source, target)])
                more = f" (+{len(first) - 1})" if len(first) > 1 else ""
                print(f"    {source} -> {target}: {first[0]}{more}")
    module_groups = strongly_connected(modules, module_edges)
    largest = max((len(g) for g in module_groups), default=0)
    print(f"module cycles: {len(module_groups)} group(s), largest {largest} modules")
    for group in sorted(module_groups, key=len, reverse=True):
        print(f"  {len(group)}: {', '.join(sorted(group))}")
    return 1 if package_groups else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
