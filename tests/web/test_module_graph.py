"""The web pages' ES modules import one another without a circle.

A circle of imports works in a browser only by the accident of evaluation order (a
module reads a binding of another that has not run yet), and makes a page's modules
hard to take apart: lower modules reach higher ones through ``hooks.js`` instead.
Fast and without a browser: it reads the ``import ... from "./x.js"`` lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import ROOT

STATIC = ROOT / "api" / "web" / "static"
IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}/[^"']+)["']""", re.M | re.S
)


def imports_of(path: Path) -> list[Path]:
    text = path.read_text(encoding="utf-8")
    return [(path.parent / target).resolve() for target in IMPORT.findall(text)]


def module_graph(root: Path) -> dict[Path, list[Path]]:
    return {path.resolve(): imports_of(path) for path in sorted(root.rglob("*.js"))}


def find_cycle(graph: dict[Path, list[Path]]) -> list[Path] | None:
    """One circle of imports (its modules in order, the first repeated last), or None."""
    done: set[Path] = set()
    path: list[Path] = []
    on_path: set[Path] = set()

    def visit(node: Path) -> list[Path] | None:
        if node in on_path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        on_path.add(node)
        for target in graph.get(node, []):
            found = visit(target)
            if found:
                return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in graph:
        found = visit(start)
        if found:
            return found
    return None


def test_the_finder_sees_a_circle_and_a_chain(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\n')
    (tmp_path / "b.js").write_text('import {\n  c,\n} from "./c.js";\n')
    (tmp_path / "c.js").write_text("export const c = 1;\n")
    assert find_cycle(module_graph(tmp_path)) is None
    (tmp_path / "c.js").write_text('import { a } from "./a.js";\nexport const c = a;\n')
    cycle = find_cycle(module_graph(tmp_path))
    assert cycle is not None
    assert [p.name for p in cycle] == ["a.js", "b.js", "c.js", "a.js"]


SERVED = {STATIC / "inbox" / "text.js"}
"""Modules the app makes (api/web/router.py serves the dictionary as text.js)."""


def test_every_imported_module_exists() -> None:
    graph = module_graph(STATIC)
    missing = [
        (src.name, dst.name)
        for src, targets in graph.items()
        for dst in targets
        if dst not in graph and dst not in SERVED
    ]
    assert not missing


def test_the_web_modules_import_one_another_without_a_circle() -> None:
    graph = module_graph(STATIC)
    assert len(graph) > 10
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(str(p.relative_to(STATIC)) for p in cycle or [])
