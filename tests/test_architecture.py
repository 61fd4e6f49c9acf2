"""The import rules of docs/architecture.md, read from the source with ``ast`` (nothing imported).

Fails on: an import circle between modules of this repository (module-level imports), a package
importing one above it, measurement code importing the reporting libraries or ``report/``, and an
import inside a function that does not say why it is deferred (a ``# deferred:`` comment), and
report's tables, plots or discussion importing one another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# which first-party packages each package may import (itself always)
ALLOWED: dict[str, set[str]] = {
    "setting_defs": set(),
    "runstore": {"setting_defs"},
    "host": {"setting_defs"},
    "models": {"setting_defs"},
    "export": {"setting_defs", "models"},
    "flops": {"setting_defs", "models", "export"},
    "energy": {"setting_defs", "host"},
    "runners": {"setting_defs", "runstore", "host", "models", "export", "flops", "energy"},
    "bench": {"setting_defs", "runstore", "host", "models", "export", "flops", "energy", "runners"},
    "worker": {"setting_defs", "runstore", "host", "models", "export", "flops", "energy", "runners", "bench"},
    "report": {"setting_defs", "runstore"},
    "compare": {"setting_defs", "runstore"},
    "evaluation": {"setting_defs", "runstore", "host", "models", "export", "flops", "energy", "runners", "bench"},
    "fleet": {"setting_defs", "runstore", "bench", "compare"},
}
# orchestration calls the report at the end of a run (deferred: it pulls matplotlib);
# ``python -m runners`` (the contract's command line) is the orchestration's entry point; ``python -m
# export`` (make export's) reaches bench for the edge runtimes' artifacts (a profile's cell shapes)
EXCEPTIONS = {("bench.suite", "report"), ("runners.__main__", "bench"), ("export.__main__", "bench")}
# the worker process talks to the parent through the job only: the parent imports no worker module
NEVER = {("bench", "worker")}
# code that runs while a cell is measured, or that measures: no reporting libraries
MEASUREMENT = ("setting_defs", "runners.harness", "runners.stats", "runners.memory", "runners.runtimes", "runners.audio",
               "runners.reference", "worker", "runners.gemm_peak", "energy", "flops.graph", "flops.formulas", "flops.cache",
               "export", "models", "host", "runstore")
REPORTING_LIBS = {"matplotlib", "tabulate", "report"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    for node in tree.body:  # imports under a module-level try/if still run at import time
        if isinstance(node, (ast.Try, ast.If)):
            top_level.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, node.lineno, id(node) in top_level))
    return out


def _first_party(module: str) -> str | None:
    """The repository module an import names (its longest known prefix), or None."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def test_the_rules_cover_every_package():
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED), "a new package needs a line in ALLOWED (and in docs/architecture.md)"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_packages_import_only_below_them(name):
    own = name.split(".")[0]
    bad = []
    for module, line, _ in _imports(name, MODULES[name]):
        target = _first_party(module)
        if target is None:
            continue
        other = target.split(".")[0]
        if (own, other) in NEVER or (other != own and other not in ALLOWED[own] and (name, other) not in EXCEPTIONS):
            bad.append(f"{MODULES[name].relative_to(REPO)}:{line} imports {module}")
    assert not bad, "imports against docs/architecture.md: " + "; ".join(bad)


# inside report/: the three views of a run read cells and series from their own modules, not from each other
REPORT_VIEWS = ("report.tables", "report.plots", "report.discussion")


@pytest.mark.parametrize("name", REPORT_VIEWS)
def test_report_views_do_not_import_each_other(name):
    bad = [f"{MODULES[name].relative_to(REPO)}:{line} imports {module}"
           for module, line, _ in _imports(name, MODULES[name])
           if _first_party(module) in REPORT_VIEWS and _first_party(module) != name]
    assert not bad, "tables, plots and discussion share report/cells.py and report/series.py: " + "; ".join(bad)

@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(MEASUREMENT)))
def test_measurement_code_never_imports_reporting(name):
    bad = [f"{MODULES[name].relative_to(REPO)}:{line} imports {module}"
           for module, line, _ in _imports(name, MODULES[name]) if module.split(".")[0] in REPORTING_LIBS]
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_inside_functions_say_why(name):
    lines = MODULES[name].read_text(encoding="utf-8").splitlines()
    bad = []
    for module, line, top in _imports(name, MODULES[name]):
        if top:
            continue
        above = [lines[i].strip() for i in range(line - 2, max(line - 6, -1), -1)]
        said = "# deferred:" in lines[line - 1]
        for text in above:  # a comment heading this block of imports
            if text.startswith("# deferred:"):
                said = True
                break
            if not text.startswith(("from ", "import ", "#")):
                break
        if not said:
            bad.append(f"{MODULES[name].relative_to(REPO)}:{line} imports {module} inside a function")
    assert not bad, "move it to the top or say why it is deferred (# deferred: ...): " + "; ".join(bad)


def find_cycles(graph: dict[str, list[str]]) -> list[str]:
    """Each import circle once, as ``a -> b -> a`` (depth-first search over module-level imports)."""
    cycles: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    return cycles


def module_graph() -> dict[str, list[str]]:
    return {name: sorted({t for m, _, top in _imports(name, path) if top
                          for t in [_first_party(m)] if t is not None and t != name})
            for name, path in MODULES.items()}


def test_no_import_circles():
    cycles = find_cycles(module_graph())
    assert not cycles, "import circles: " + "; ".join(cycles)


def test_the_parent_never_imports_the_worker():
    bad = [f"{MODULES[name].relative_to(REPO)}:{line} imports {module}"
           for name in MODULES if name.startswith("bench")
           for module, line, _ in _imports(name, MODULES[name])
           if (_first_party(module) or "").split(".")[0] == "worker"]
    assert not bad, "the parent (bench/) talks to workers through bench/job.py only: " + "; ".join(bad)


def test_runtimes_are_one_module_each_behind_the_registry():
    """A new runtime is one module in runners/runtimes/ that make_runtime knows."""
    modules = {n.rsplit(".", 1)[1] for n in MODULES if n.startswith("runners.runtimes.")}
    from runners.runtimes import RUNTIME_NAMES
    assert set(RUNTIME_NAMES) <= modules, f"runtimes without their own module: {set(RUNTIME_NAMES) - modules}"
    assert "runners.runtimes.base" in MODULES


def test_the_checker_finds_a_circle_and_reads_relative_imports():
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a -> b -> c -> a"]
    assert find_cycles({"a": ["b"], "b": []}) == []
    graph = module_graph()
    assert "energy.tegrastats" in graph["energy.discover"]  # `from . import tegrastats`
    assert "host.sysfs" in graph["energy.rapl"]
    assert _first_party("report.tables") == "report.tables" and _first_party("matplotlib.pyplot") is None
