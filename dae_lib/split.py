"""The deterministic train / validation / test split by case ID.

Cases, not images, are split, and before any augmentation: every augmented copy of a case stays
on the side of its case. The rule:

1. group case IDs by their letter prefix (JSRT: JPCLN = with nodule, JPCNN = without), so both
   groups are represented on each side in proportion;
2. within a group, sort the IDs and shuffle them with ``numpy.random.default_rng(seed)``;
3. the first round(test_fraction * n) go to test (the paper: 15 %), then round(val_fraction *
   rest) to validation (used for model selection only), the rest to training;
4. tiny sets, where a part rounds to nothing: the last ID (sorted) goes to test, the first to
   training, and, when a validation part is asked for (val_fraction > 0), the last training ID to
   validation, as long as a training case remains.

A split with an empty part is refused before anything runs (``checked_split``): training needs a
training and (when asked for) a validation case, Table 1 a test case.

The result depends on the set of IDs and the seed only, never on file order or on the machine.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import DataError

SPLITS = ("train", "val", "test")
_NAMES = {"train": "training", "val": "validation", "test": "test"}


def _group(case_id: str) -> str:
    return re.sub(r"\d+$", "", case_id)


def make_split(ids, test_fraction: float, val_fraction: float, seed: int) -> dict[str, str]:
    """Map each case ID to "train", "val" or "test" (see the module docstring for the rule)."""
    ids = sorted(set(ids))
    if len(ids) < 3:
        raise DataError(f"need at least 3 cases to split, got {len(ids)}")
    return _assign(ids, test_fraction, val_fraction, seed)


def _assign(ids: list[str], test_fraction: float, val_fraction: float, seed: int) -> dict[str, str]:
    """The rule of the module docstring on sorted, distinct ``ids`` (any number of them)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(_group(i), []).append(i)
    out: dict[str, str] = {}
    for g in sorted(groups):
        members = [groups[g][k] for k in rng.permutation(len(groups[g]))]
        n_test = int(round(test_fraction * len(members)))
        rest = members[n_test:]
        n_val = int(round(val_fraction * len(rest)))
        for i in members[:n_test]:
            out[i] = "test"
        for i in rest[:n_val]:
            out[i] = "val"
        for i in rest[n_val:]:
            out[i] = "train"
    if not ids:
        return out
    # Tiny sets: make sure test and train are never empty, nor validation when it is asked for.
    if "test" not in out.values():
        out[ids[-1]] = "test"
    if "train" not in out.values():
        out[ids[0]] = "train"
    train = [i for i in ids if out[i] == "train"]
    if val_fraction > 0 and "val" not in out.values() and len(train) > 1:
        out[train[-1]] = "val"
    return out


def part_sizes(split: dict[str, str]) -> dict[str, int]:
    """How many cases each part of a split holds: {"train": ..., "val": ..., "test": ...}."""
    return {name: sum(p == name for p in split.values()) for name in SPLITS}


def checked_split(ids, test_fraction: float, val_fraction: float, seed: int, where) -> dict[str, str]:
    """``make_split``, refused before anything runs when a part would be empty: a DataError naming
    ``where`` (the data folder) and the counts. Validation may be empty only when val_fraction is 0."""
    ids = sorted(set(ids))
    split = _assign(ids, test_fraction, val_fraction, seed)
    n = part_sizes(split)
    needed = [p for p in SPLITS if p != "val" or val_fraction > 0]
    if any(n[p] == 0 for p in needed):
        words = [f"one {_NAMES[p]}" for p in needed]
        raise DataError(
            f"{where}: {len(ids)} case(s) give {n['train']} training, {n['val']} validation and {n['test']} test case(s); "
            f"at least {', '.join(words[:-1])} and {words[-1]} case are needed: add cases (or change test_fraction / val_fraction)"
        )
    return split


def split_indices(ids, split: dict[str, str]) -> dict[str, list[int]]:
    """Positions of each part's cases in ``ids`` (cases the split does not list are in no part)."""
    return {name: [k for k, i in enumerate(ids) if split.get(i) == name] for name in SPLITS}


def write_split_csv(path: str | Path, ids, split: dict[str, str], files, hashes) -> Path:
    """Write case_id, split, x_file, x_sha256, s_file, s_sha256 (atomically: no half-written file)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "split", "x_file", "x_sha256", "s_file", "s_sha256"])
        for k, i in enumerate(ids):
            xf, sf = files[k] if files else ("phantom", "phantom")
            w.writerow([i, split[i], xf, hashes[k][0], sf, hashes[k][1]])
    return path


def read_split_csv(path: str | Path) -> dict[str, str]:
    with open(path, newline="") as f:
        return {row["case_id"]: row["split"] for row in csv.DictReader(f)}


def read_split_records(path: str | Path) -> list[dict]:
    """The rows of a run's split.csv: case_id, split, x_file, x_sha256, s_file, s_sha256."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_split(path: str | Path, ids, hashes_of, parts=SPLITS) -> list[str]:
    """Check the cases of ``parts`` in a run's split.csv against the data now: every one present
    (``ids``) with the file hashes recorded when the run started (``hashes_of(case_ids)`` gives
    {case_id: (x_sha256, s_sha256)}). A DataError naming the cases otherwise. Returns the case IDs
    of the data that the split does not list (new cases: never used by this run)."""
    rows = [r for r in read_split_records(path) if r["split"] in parts]
    have = set(ids)
    missing = sorted(r["case_id"] for r in rows if r["case_id"] not in have)
    present = [r for r in rows if r["case_id"] in have]
    now = hashes_of([r["case_id"] for r in present])
    changed = sorted(r["case_id"] for r in present if tuple(now[r["case_id"]]) != (r["x_sha256"], r["s_sha256"]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} case(s) missing from the data: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if changed:
        problems.append(f"{len(changed)} case(s) whose files changed since the run started: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}")
    if problems:
        raise DataError(f"{path}: the data no longer match this run's split ({'; '.join(problems)}); use the data the run was trained on, or start a new run")
    listed = {r["case_id"] for r in read_split_records(path)}
    return sorted(have - listed)
