"""The layering rules, read from the source: numeric imports nothing from the command line; only
symgeo/cli imports numeric (and only its numerical module, which the CLI loads when a numeric command
runs); no circle of imports between modules."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("symgeo", "numeric")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool, nodes=None) -> set[str]:
    """Modules `path` imports (absolute names), all of them or only those run at import time (or those of
    the given import `nodes`)."""
    tree = ast.parse(path.read_text())
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    if nodes is None:
        nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # if/try bodies at the top level run too, `if TYPE_CHECKING:` ones do not
        nodes = [n for stmt in tree.body for n in _top_level(stmt)]
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = {f"{module}.{alias.name}" for alias in node.names}
            out.update(names)
            if not names & set(MODULES):  # `from . import cache` imports the module, not the package's names
                out.add(module)
    return out


def _top_level(stmt):
    if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
        return []
    if isinstance(stmt, (ast.If, ast.Try)):
        return [n for s in stmt.body + getattr(stmt, "orelse", []) for n in _top_level(s)]
    return [stmt]


SOURCES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
MODULES = {_module_name(p): p for p in SOURCES}


@pytest.mark.parametrize("path", [p for p in SOURCES if p.parts[-2] == "numeric" or "numeric" in
                                  p.relative_to(ROOT).parts[:1]], ids=lambda p: str(p.relative_to(ROOT)))
def test_numeric_never_imports_the_command_line(path):
    assert not {m for m in _imports(path, False) if m.startswith("symgeo.cli")}


@pytest.mark.parametrize("path", [p for p in SOURCES if p.relative_to(ROOT).parts[0] == "symgeo"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_command_line_imports_numeric(path):
    numeric = {m for m in _imports(path, False) if m == "numeric" or m.startswith("numeric.")}
    if _module_name(path) == "symgeo.cli.numerical":
        assert numeric  # the one place
    else:
        assert not numeric, f"{path.name} imports {sorted(numeric)}"


def test_numeric_commands_are_loaded_lazily():
    for name in ("symgeo.cli", "symgeo.cli.arguments", "symgeo.cli.symbolic"):
        assert "symgeo.cli.numerical" not in _imports(MODULES[name], True)


def _runtime_imports(path: Path) -> set[str]:
    """Every import that can run, at the top or inside a function (a lazy import still ties two modules),
    except those under `if TYPE_CHECKING:` and a bare `import symgeo` (a worker's preload of the whole
    package, not a use of one module)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    kept = [node for node in ast.walk(tree) if id(node) not in typing_only
            and not (isinstance(node, ast.Import) and [a.name for a in node.names] == ["symgeo"])]
    return _imports(path, False, kept)


@pytest.mark.parametrize("lazy", [False, True], ids=["at import time", "lazy imports too"])
def test_no_import_circle(lazy):
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in (_runtime_imports(path) if lazy else _imports(path, True)):
            while imported and imported not in MODULES:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    circles = []

    def visit(node, trail):
        for nxt in graph[node]:
            if nxt in trail:
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        done.add(node)

    done: set = set()
    for start in graph:
        if start not in done:
            visit(start, [start])
    assert not circles, circles[:3]
