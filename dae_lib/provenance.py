"""Where a number came from: data, profile, device, seed, commit, wall time."""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import torch

from .paths import REPO_ROOT


#: Folders of outputs: the pipeline itself rewrites them, so their changes do not make code dirty.
OUTPUT_DIRS = ("results/", "figures/", "runs/")


def _own_checkout() -> bool:
    """Whether the repository root is the top of a git checkout (not a copy of the package lying
    inside some other repository, whose commit would say nothing about this code)."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return False
    return top.returncode == 0 and Path(top.stdout.strip()).resolve() == REPO_ROOT.resolve()


def dirty_files() -> list[str]:
    """Tracked files outside the output folders with uncommitted changes (what "-dirty" means)."""
    if not _own_checkout():
        return []
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout
    except OSError:
        return []
    files = [line[3:] for line in out.splitlines() if line.strip()]
    return [f for f in files if not f.startswith(OUTPUT_DIRS)]


def git_commit() -> str:
    """The checked-out commit, with "-dirty" when tracked files have uncommitted changes; "unknown"
    when the code is not in its own git checkout."""
    if not _own_checkout():
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty_files() else "")


def sha256_file(path) -> str:
    """The sha256 of a file's bytes (data files, weights, split records)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus"


def record(**fields) -> dict:
    """A provenance record: the given fields plus commit, torch version, machine and UTC time."""
    return {
        **fields,
        "commit": git_commit(),
        "uncommitted": dirty_files(),
        "torch": torch.__version__,
        "machine": machine(),
        "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }

