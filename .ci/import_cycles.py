"""Fail on any import cycle among our modules (``make lint``).

Builds the import graph of our packages with grimp (import-linter's engine),
leaving out imports under ``if TYPE_CHECKING:``, and prints every strongly
connected group of more than one module with one import of each edge.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
PACKAGES = ("crews", "roles", "bus", "inference", "bench")


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def main() -> int:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    found = cycles(graph)
    for group in found:
        members = set(group)
        edges = [
            f"  {a} -> {b}"
            for a in group
            for b in sorted(graph.find_modules_directly_imported_by(a) & members)
        ]
        print(f"import cycle among {len(group)} modules:\n" + "\n".join(edges))  # noqa: T201
    if not found:
        print(f"no import cycles among the modules of {', '.join(PACKAGES)}")  # noqa: T201
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
