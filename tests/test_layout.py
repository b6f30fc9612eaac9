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


#: The run folder's file names: each written as a literal in runs.py alone, every other module uses
#: its constant (runs.CONFIG_FILE, runs.SPLIT_FILE, runs.BEST_WEIGHTS).
RUN_FILE_NAMES = {"config.json": "CONFIG_FILE", "split.csv": "SPLIT_FILE", "best.safetensors": "BEST_WEIGHTS"}
#: At most this many modules directly in dae_lib/ (__init__ and __main__ included): the flat core.
MAX_TOP_MODULES = 20


def _modules_with_literal(text: str) -> list[str]:
    """The library modules holding the string constant ``text`` (the whole string, not a mention in prose)."""
    found = []
    for p in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(p.read_text())
        if any(isinstance(n, ast.Constant) and n.value == text for n in ast.walk(tree)):
            found.append(str(p.relative_to(PACKAGE)))
    return found


def test_the_run_folder_file_names_are_written_in_runs_py_only():
    from dae_lib import runs

    for name, constant in RUN_FILE_NAMES.items():
        assert _modules_with_literal(name) == ["runs.py"], name
        assert getattr(runs, constant) == name


def test_the_literal_check_finds_a_literal():
    assert _modules_with_literal("dae_lib.fingerprint") == ["runs.py"]  # runs.METADATA_KEY
    assert _modules_with_literal("a string no module holds, 8f3a") == []


def test_at_most_twenty_modules_directly_in_the_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    assert not any((PACKAGE / f"{m}.py").exists() for m in ("outputs", "paths", "provenance", "masks"))
