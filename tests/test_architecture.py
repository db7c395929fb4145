"""The package's layers, read from its imports with the standard library's ``ast`` (issue 14).

Every module of ``exacttransformer`` imports only modules of its own layer or of layers
below it, no import circle exists (imports inside functions count too), no module imports a
private (``_underscore``) name from another module, and no module is much over 700 lines.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "exacttransformer"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "progress", "version"),                    # 0 foundation
    ("exact",),                                           # 1 exact numbers
    ("steps",),                                           # 2 pure steps
    ("graph",),                                           # 3 the named graph
    ("io",),                                              # 4 files in and out
    ("check", "render", "problems", "commands", "cli",    # 5 front ends
     "audit", "testing", "modelfiles"),
    ("__init__", "__main__", "numbers"),                  # 6 the public facades
)
"""The layers, lowest first, each by its folders or top-level modules under the package."""

MAX_LINES = 750


def layer_of(module: str) -> int:
    """The layer of a dotted module name below the package (``graph.model`` -> 3)."""
    top = module.split(".")[0] if module else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {module!r} is in no layer: add its folder to LAYERS")


def modules(root: Path) -> dict[str, Path]:
    """Every module under ``root``, by dotted name relative to it (``""`` is the package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str, int]]:
    """``(module imported, name imported or "", line)`` for every import in the file,
    inside functions too; only imports of the package itself."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    package = here if is_package else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "exacttransformer":
                    yield alias.name.partition(".")[2], "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "exacttransformer":
                target = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in known:  # ``from . import lazy``: the submodule itself
                    yield sub, "", node.lineno
                else:
                    yield target, alias.name, node.lineno


def problems(root: Path) -> list[str]:
    """Every upward import, private name imported across modules, circle and long module."""
    known = modules(root)
    found: list[str] = []
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        where = path.relative_to(root.parent)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found.append(f"{where}: {lines} lines (at most {MAX_LINES})")
        for target, imported, line in imports(name, path, known):
            if target not in known:
                found.append(f"{where}:{line}: imports {target!r}, which is not a module")
                continue
            if target != name:
                edges[name].add(target)
            if layer_of(target) > layer_of(name):
                found.append(f"{where}:{line}: upward import of {target} (layer "
                             f"{layer_of(target)}) from layer {layer_of(name)}")
            private = imported.startswith("_") and not imported.endswith("__")
            if private and target != name:
                found.append(f"{where}:{line}: imports the private name {imported} from {target}")
    found += [f"import circle: {' -> '.join(c)}" for c in circles(edges)]
    return found


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One closed path for every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group) + [min(group)])

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_the_package_imports_only_downward_without_circles_or_private_names() -> None:
    assert problems(PACKAGE) == []


def test_every_module_is_in_a_layer() -> None:
    for name in modules(PACKAGE):
        layer_of(name)


def _write(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "exacttransformer"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_the_checker_finds_upward_imports_private_names_circles_and_long_modules(
        tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "exact/__init__.py": "",
        "exact/a.py": "def f():\n    from ..graph.model import build\n",
        "exact/b.py": "from .c import x\n",
        "exact/c.py": "from . import b\nfrom .a import _hidden\n",
        "graph/__init__.py": "",
        "graph/model.py": "import exacttransformer.errors\n" + "x = 1\n" * MAX_LINES,
    })
    found = problems(pkg)
    assert any("exact/a.py:2: upward import of graph.model" in p for p in found), found
    assert any("exact/c.py:2: imports the private name _hidden from exact.a" in p for p in found)
    assert "import circle: exact.b -> exact.c -> exact.b" in found
    assert any(p.startswith("exacttransformer/graph/model.py: ") for p in found)
    assert len(found) == 4
