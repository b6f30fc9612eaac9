"""The package's shape (issue 19): no import cycle, a small flat core, sub-packages for the rest."""
import ast
from pathlib import Path

import dae_lib

PACKAGE = Path(dae_lib.__file__).parent


def _import_graph() -> dict[str, set[str]]:
    """Each dae_lib module and the dae_lib modules it imports (anywhere in it, in functions too)."""
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = ("dae_lib", *p.relative_to(PACKAGE).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for name, p in mods.items():
        pkg = name if p.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                deps.update(f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycles(graph) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_no_import_cycle_among_the_library_modules():
    graph = _import_graph()
    assert len(graph) > 30 and graph["dae_lib.cli"]  # the graph is read, not empty
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_layout_has_its_sub_packages():
    for sub in ("models", "reporting", "studies"):
        assert (PACKAGE / sub / "__init__.py").is_file()
    assert not any((PACKAGE / f"{m}.py").exists() for m in ("families", "model", "residual", "evaluate", "table1", "bench", "release"))
