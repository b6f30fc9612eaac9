"""The package as a user installs it: a wheel built from this checkout, installed into a fresh virtual
environment outside it, works on its own: the `dae-suppress` entry point, the released model on a
phantom radiograph, and `python -m dae_lib reproduce --profile smoke` into a temporary folder, with
the profiles, the paper's Table 1 and the weights read from the installed package.

It takes minutes (a wheel, a venv and the smoke pipeline), so it runs where DAE_WHEEL_TEST=1 is set:
the GitHub workflow's wheel job sets it; `DAE_WHEEL_TEST=1 make test` (or pytest tests/test_wheel.py)
runs it by hand. The new environment borrows the installed dependencies of the running one (a .pth
file) instead of downloading torch again; the package itself comes only from the wheel."""
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from dae_lib.runs import REPO_ROOT

pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(os.environ.get("DAE_WHEEL_TEST") != "1", reason="minutes: set DAE_WHEEL_TEST=1 (the GitHub workflow's wheel job does)"),
]


def _run(args, cwd, timeout=900, env=None):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", root / "dist", REPO_ROOT], cwd=root)
    wheel = next((root / "dist").glob("dae_lib-*.whl"))
    env_dir = root / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    py = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--quiet", "--disable-pip-version-check", wheel], cwd=root)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip())
    (site / "zz_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co., not dae_lib
    return root, env_dir, site


def test_the_installed_package_reads_its_data_from_the_install_not_the_checkout(installed):
    root, env_dir, site = installed
    code = (
        "import dae_lib, dae_lib.config as c, dae_lib.runs as r, dae_lib.reporting.table1 as t;"
        "print(dae_lib.__file__); print(c.PROFILE_DIR); print(r.released_folder()); print(t.PAPER_FILE); print(dae_lib.__version__)"
    )
    lines = _run([env_dir / "bin" / "python", "-c", code], cwd=root).split("\n")
    for line in lines[:4]:
        assert Path(line).resolve().is_relative_to(site.resolve()), line
    assert lines[4] not in ("", "unknown")


def test_the_suppress_entry_point_and_the_released_model_work(installed):
    root, env_dir, _ = installed
    assert "usage" in _run([env_dir / "bin" / "dae-suppress", "--help"], cwd=root).lower()
    code = (
        "from dae_lib.runs import load_released; from dae_lib.inference import predict; from dae_lib.phantom import chest_phantom;"
        "x, s, _ = chest_phantom(512, seed=3); out = predict(load_released(), x[None, None])[0, 0];"
        "print(float(((out - s) ** 2).mean()) < float(((x - s) ** 2).mean()))"
    )
    assert _run([env_dir / "bin" / "python", "-c", code], cwd=root).strip() == "True"  # it removes bone from a phantom


def test_reproduce_runs_from_the_installed_package(installed):
    root, env_dir, _ = installed
    work = root / "work"  # a folder of the user's with the notebooks (not package data), outside the checkout
    shutil.copytree(REPO_ROOT / "notebooks", work / "notebooks")
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    for name in ("DAE_PROFILE", "DAE_DATA", "DAE_OUT"):  # the test session's nbval settings must not leak in
        env.pop(name, None)
    _run([env_dir / "bin" / "python", "-m", "dae_lib", "reproduce", "--profile", "smoke", "--out-root", work / "out"], cwd=work, timeout=1800, env=env)
    out = work / "out"
    assert list((out / "results").rglob("table1*.csv")) and list((out / "figures").rglob("*.png"))
    assert list((out / "results" / "executed").rglob("06_*.ipynb"))
