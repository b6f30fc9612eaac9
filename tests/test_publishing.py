"""What a public repository needs: the licence the package declares, one version everywhere, a valid
citation file (cffconvert --validate), a changelog, and the README's licence table and how to cite."""
import re
import subprocess
import sys
import venv

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import dae_lib
from dae_lib.runs import REPO_ROOT

#: cffconvert pins jsonschema < 4, which jupyterlab's server cannot share an environment with: it runs
#: from a virtual environment of its own, made once under .cache/ (git-ignored).
CFFCONVERT = "cffconvert==2.0.0"


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_the_licence_file_is_the_licence_the_package_declares():
    assert _project()["license"] == "MIT"
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_one_version_in_the_package_the_citation_and_the_changelog():
    version = _project()["version"]
    assert dae_lib.__version__ == version  # read from the installed package's metadata
    assert str(yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())["version"]) == version
    headings = re.findall(r"^## (\S+)", (REPO_ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == version or (headings[0] == "Unreleased" and headings[1] == version)  # changes not yet in a version come first


def test_the_citation_file_is_valid_cff():
    env_dir = REPO_ROOT / ".cache" / CFFCONVERT.replace("==", "-")
    exe = env_dir / "bin" / "cffconvert"
    if not exe.exists():
        venv.create(env_dir, with_pip=True, clear=True)
        r = subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", CFFCONVERT], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([exe, "--validate", "-i", REPO_ROOT / "CITATION.cff"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    broken = REPO_ROOT / ".cache" / "broken.cff"
    broken.write_text((REPO_ROOT / "CITATION.cff").read_text().replace("cff-version: 1.2.0", "cff-version: 1.2.0\nunknown-key: 1"))
    assert subprocess.run([exe, "--validate", "-i", broken], capture_output=True, text=True).returncode != 0  # the check can fail


def test_the_readme_has_the_licence_table_and_how_to_cite():
    readme = (REPO_ROOT / "README.md").read_text()
    licences = readme.split("## Licences", 1)[1].split("\n## ", 1)[0]
    for thing in ("Code", "phantom", "JSRT", "BSE-JSRT", "released weights", "Third-party"):
        assert thing in licences, thing
    cite = readme.split("## How to cite", 1)[1].split("\n## ", 1)[0]
    assert "CITATION.cff" in cite and "Shiraishi" in cite and "Juhász" in cite
