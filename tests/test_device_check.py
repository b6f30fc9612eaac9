"""scripts/device_check.sh names what is missing and stops (its GPU steps run only on a GPU)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_check.sh"
#: The script's knobs: `make test JOBS=4` exports JOBS to the tests, which must not reach the script.
KNOBS = ("PY", "STEPS", "SKIP_PAPER", "JOBS", "JOBS_V2", "MINUTES", "V2_CANDIDATES")


def _environ() -> dict:
    """The test's environment without the script's knobs (each test sets the ones it checks)."""
    return {k: v for k, v in os.environ.items() if k not in KNOBS}


def _run(py, tmp_path, skip_paper="1"):
    env = {**_environ(), "PY": str(py), "SKIP_PAPER": skip_paper}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_a_missing_package_is_named_and_stops_the_check(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\ncase "$2" in *"\'kornia\'"*|*"\'papermill\'"*) exit 1;; esac\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    r = _run(fake, tmp_path, skip_paper="")
    assert r.returncode == 2
    assert "missing Python packages" in r.stderr and "kornia papermill" in r.stderr and "--find-links" in r.stderr
    r = _run(fake, tmp_path)  # without the paper profile, papermill is not needed
    assert "missing Python packages" in r.stderr and "papermill" not in r.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_stops(tmp_path):
    r = _run(sys.executable, tmp_path)
    assert r.returncode == 3 and "sees no CUDA device" in r.stderr


def test_a_failing_step_does_not_hide_the_others(tmp_path):
    fake = tmp_path / "python"  # a "GPU" python: the CUDA tests fail, the benchmark and the pipeline pass
    fake.write_text('#!/bin/sh\ncase "$1 $2" in\n "-m pytest") exit 1;;\n "-m dae_lib.studies.bench") echo bench ran;;\n'
                    ' "-m dae_lib") echo "pipeline ran: $*";;\nesac\nexit 0\n')
    fake.chmod(0o755)
    r = _run(fake, tmp_path, skip_paper="")
    assert r.returncode == 1
    assert "1. CUDA tests: FAILED" in r.stdout and "bench ran" in r.stdout and "2. benchmark (256 and 512 px): ok" in r.stdout
    assert "--profile paper" in r.stdout and "--jobs 8" in r.stdout and "failed: 1. CUDA tests" in r.stderr


def test_steps_names_the_steps_to_run(tmp_path):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\ncase "$1 $2" in\n "-m pytest") echo tests ran;;\n "-m dae_lib.studies.bench") echo bench ran;;\n'
                    ' "-m dae_lib") echo "pipeline ran: $*";;\nesac\nexit 0\n')
    fake.chmod(0o755)
    env = {**_environ(), "PY": str(fake), "STEPS": "3", "JOBS": "2"}
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "pipeline ran" in r.stdout and "--jobs 2" in r.stdout
    assert "tests ran" not in r.stdout and "bench ran" not in r.stdout


def test_step_4_trains_the_v2_candidates_only_when_named(tmp_path):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\ncase "$1 $2" in\n "-m dae_lib.studies.v2") echo "v2 ran: $*";;\n "-m dae_lib") echo "pipeline ran";;\nesac\nexit 0\n')
    fake.chmod(0o755)
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env={**_environ(), "PY": str(fake), "STEPS": "4", "MINUTES": "3"},
                       cwd=tmp_path, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "v2 ran: -m dae_lib.studies.v2 train --data" in r.stdout and "--device cuda --jobs 4 --minutes 3" in r.stdout
    assert "pipeline ran" not in r.stdout
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                       env={**_environ(), "PY": str(fake), "STEPS": "4", "V2_CANDIDATES": "render-aspect longer", "JOBS_V2": "2"})  # fmt: skip
    assert "--device cuda --jobs 2 --minutes 6 --candidates render-aspect longer" in r.stdout
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env={**_environ(), "PY": str(fake), "STEPS": "1 2 3"}, cwd=tmp_path, timeout=60)
    assert "v2 ran" not in r.stdout


def test_the_cuda_tests_collect_without_papermill_or_jupyter(tmp_path):
    """Step 1 on a GPU image that has neither papermill nor jupyter_client (device_check does not ask
    for them below step 3): the test session's set-up (conftest.py -> dae_lib.pipeline) and
    tests/test_cuda.py must import without them. Both are made unimportable here."""
    blocked = tmp_path / "blocked"
    for name in ("papermill", "jupyter_client"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked by this test')\n")
    root = SCRIPT.parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(root)])}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", "-o", "addopts=",
                        "--collect-only", "-m", "cuda", "tests/test_cuda.py"],
                       capture_output=True, text=True, env=env, cwd=root, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "test_cuda.py" in r.stdout
