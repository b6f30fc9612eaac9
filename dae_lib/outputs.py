"""Where a pipeline's outputs go, from (profile, data, output root): one rule for notebooks and CLI.

    <root>/runs/<profile>/<data>/<variant>/     training runs, seed 0 (not committed)
    <root>/runs/<profile>/<data>/seed<k>/<variant>/   the same with seed k (several seeds per claim)
    <root>/results/table1.csv, table1.md         Table 1, one block per (data, profile)
    <root>/results/executed/<data>-<profile>/    executed notebooks (not committed)
    <root>/figures/                               figures of phantom runs (committed)
    <root>/figures/<data>/                        figures of real-data runs (never committed: they
                                                  show the radiographs)

<root> is the repository root unless an output root is given (tests and nbval use a temporary one
so they never overwrite the committed results). <data> is "phantom" or the data folder's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import PHANTOM, is_phantom
from .paths import REPO_ROOT, resolve


def data_tag(data_dir) -> str:
    return PHANTOM if is_phantom(data_dir) else Path(data_dir).name


def normalise_data_dir(data_dir) -> str | None:
    """None for the phantom, else an absolute path (relative paths from the repository root)."""
    if is_phantom(data_dir):
        return None
    return str(resolve(data_dir))


@dataclass(frozen=True)
class Outputs:
    root: Path
    profile: str
    data: str  # data tag

    @property
    def runs(self) -> Path:
        return self.root / "runs" / self.profile / self.data

    def run(self, variant: str, seed: int = 0) -> Path:
        """A variant's run folder: runs/<profile>/<data>/<variant> for seed 0, .../seed<k>/<variant> else."""
        return self.runs / variant if seed == 0 else self.runs / f"seed{seed}" / variant

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def executed(self) -> Path:
        return self.results / "executed" / f"{self.data}-{self.profile}"

    @property
    def figures(self) -> Path:
        base = self.root / "figures"
        return base if self.data == PHANTOM else base / self.data


def outputs(profile: str, data_dir=None, out_root=None) -> Outputs:
    root = resolve(out_root) if out_root else REPO_ROOT
    return Outputs(Path(root), profile, data_tag(data_dir))
