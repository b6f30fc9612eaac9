"""Packaging: a non-editable install carries every data file the library reads."""
import fnmatch
import subprocess

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from dae_lib.runs import REPO_ROOT


def test_every_data_file_of_the_package_is_in_package_data():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    # patterns of every package, as paths under dae_lib/ ("dae_lib.reporting": ["x.yaml"] -> "reporting/x.yaml")
    patterns = [
        "/".join([*pkg.split(".")[1:], pattern])
        for pkg, pats in meta["tool"]["setuptools"]["package-data"].items()
        for pattern in pats
    ]
    packages = meta["tool"]["setuptools"]["packages"]
    found = {".".join(["dae_lib", *p.relative_to(REPO_ROOT / "dae_lib").parts[:-1]]) for p in (REPO_ROOT / "dae_lib").rglob("__init__.py")}
    assert sorted(found) == sorted(packages), "[tool.setuptools] packages must list every sub-package"
    tracked = subprocess.run(["git", "ls-files", "dae_lib"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    data_files = [f.removeprefix("dae_lib/") for f in tracked if not f.endswith(".py")]
    assert data_files, "git ls-files found nothing: not a checkout?"
    unshipped = [f for f in data_files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unshipped == [], f"add to [tool.setuptools.package-data]: {unshipped}"


def test_the_build_backend_understands_the_license_field():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    if isinstance(meta["project"].get("license"), str):  # an SPDX expression (PEP 639) needs setuptools >= 77
        req = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
        assert req.replace(" ", "").startswith("setuptools>="), req
        major = int(req.split(">=")[1].split(".")[0])
        assert major >= 77, req
