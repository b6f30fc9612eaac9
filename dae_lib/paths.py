"""Paths resolved from the repository root, so papermill, nbval, the CLI and tests agree.

papermill and nbval start kernels in different working directories; every relative path the
library is given is resolved against ``REPO_ROOT`` (the folder holding ``pyproject.toml`` above
this package), never against the current directory.
"""
from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    here = Path(__file__).resolve().parent
    for p in (here.parent, *here.parents):
        if (p / "pyproject.toml").is_file() and (p / "dae_lib").is_dir():
            return p
    return Path.cwd()


REPO_ROOT = _find_root()
RESULTS_DIR = REPO_ROOT / "results"
FIGURES_DIR = REPO_ROOT / "figures"
CACHE_DIR = Path(os.environ.get("DAE_CACHE", REPO_ROOT / ".cache"))
#: Where the shared BSE-JSRT copy lies beside a checkout (override with DAE_REAL_DATA).
SHARED_DATA = Path(os.environ.get("DAE_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "bse-jsrt-512"))


def portable(path) -> str | None:
    """A path as committed results may show it: relative to the repository (the shared data read as
    ../shared/...), never an absolute path of the machine that made them. Anything that is not an
    absolute path (None, "phantom(seed=...)", a relative path) is returned as it is."""
    if path is None or not Path(str(path)).is_absolute():
        return path
    # The path as given first (a data folder reached through a symbolic link, say ../shared linked
    # elsewhere, keeps its short form), then resolved (the checkout itself reached through a link):
    # the shorter relative path wins, so no machine-specific folder leaks in.
    ways = [os.path.relpath(os.path.abspath(path), REPO_ROOT), os.path.relpath(Path(path).resolve(), REPO_ROOT)]
    return min(ways, key=lambda rel: (rel.count(".."), len(rel)))


def resolve(path: str | Path | None) -> Path | None:
    """An absolute path: relative paths are taken from the repository root; ~ is expanded."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p
