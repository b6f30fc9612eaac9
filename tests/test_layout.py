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


#: The most lines and parameters a library function may have: longer ones are split, parameters
#: that travel together are grouped in a small dataclass (train._Plan, suppress.Settings, pipeline.Request).
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8
#: The one module whose functions import the package's own modules: the command line imports a
#: subcommand's modules when it runs, so that `suppress` and --help start in ~2 s instead of ~6 s
#: (cli.py's docstring).
LAZY_IMPORTS = {"cli.py"}
#: Third-party imports inside a function, each for a measured or platform reason: pandas (0.5 s) and
#: pydicom (0.5 s) only when a CSV is appended or a DICOM read/written (suppress starts without
#: them); fcntl exists on POSIX only.
LAZY_THIRD_PARTY = {("atomic.py", "pandas"), ("radiograph.py", "pydicom"), ("runs.py", "fcntl")}


def _functions():
    for p in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield str(p.relative_to(PACKAGE)), node


def _n_parameters(fn) -> int:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return len(names) - (names[:1] in (["self"], ["cls"]))


def _long_or_wide(functions) -> list[str]:
    return [
        f"{where}:{fn.name} ({fn.end_lineno - fn.lineno + 1} lines, {_n_parameters(fn)} parameters)"
        for where, fn in functions
        if fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES or _n_parameters(fn) > MAX_PARAMETERS
    ]


def test_no_function_over_60_lines_or_with_more_than_8_parameters():
    functions = list(_functions())
    assert len(functions) > 300  # the package is read
    assert _long_or_wide(functions) == []


def test_the_size_check_finds_a_long_and_a_wide_function():
    code = "def wide(a, b, c, d, e, f, g, h, i):\n    pass\n\ndef long():\n" + "    x = 1\n" * 60 + "\nclass C:\n    def m(self, a, b, c, d, e, f, g, h):\n        pass\n"
    found = _long_or_wide(("x.py", n) for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef))
    assert found == ["x.py:wide (2 lines, 9 parameters)", "x.py:long (61 lines, 0 parameters)"]


def test_imports_are_at_module_top_but_the_command_lines_lazy_subcommands():
    own, other = set(), set()
    for where, fn in _functions():
        for n in ast.walk(fn):
            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("dae_lib")):
                own.add(where)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                top = (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name).split(".")[0]
                other.add((where.split("/")[-1], top))
    assert own - LAZY_IMPORTS == set() and other - LAZY_THIRD_PARTY == set()


def test_no_test_run_leaves_a_suppress_report_in_the_repository():
    """Reports belong in --out: one in the checkout's root came from a test writing into the cwd."""
    assert list(PACKAGE.parent.glob("suppress-report-*.csv")) == []
