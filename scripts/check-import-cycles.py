"""Fail when modules of the product import each other in a cycle, directly or through others.

The import-linter contracts in pyproject.toml order the layers; this finds a cycle inside
a layer too. Lazy imports (inside a function) count: they are imports all the same.

    .venv/bin/python scripts/check-import-cycles.py [--allow MODULE ...]

``--allow MODULE`` lets the cycles through that MODULE is part of (name it with the reason
in the Makefile, and remove it when the reason is gone).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grimp

PACKAGES = ("app", "forms", "workflows")


def find_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One shortest cycle for every group of modules that import each other."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)
    found: list[list[str]] = []
    seen: set[str] = set()
    for module in modules:
        if module in seen:
            continue
        shortest: tuple[str, ...] | None = None
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.split(".")[0] not in PACKAGES:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None and (shortest is None or len(back) < len(shortest)):
                shortest = back
        if shortest is not None:
            cycle = [module, *shortest]
            seen.update(cycle)
            found.append(cycle)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--allow", action="append", default=[], metavar="MODULE")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=True)
    for module in args.allow:
        if module not in graph.modules:
            print(f"note: --allow {module}: no such module any more, remove the --allow")
    cycles = [c for c in find_cycles(graph) if not set(args.allow) & set(c)]
    for cycle in cycles:
        print("import cycle: " + " -> ".join(cycle))
    if cycles:
        return 1
    print(f"No import cycles among {len(graph.modules)} modules of {', '.join(PACKAGES)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
