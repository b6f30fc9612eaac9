"""What the MS-SSIM form does to Table 1: the paper's per-pixel eq. (5) against Wang's per-image form.

    python -m dae_lib.studies.msssim_forms [--data DIR] [--profile quick] [--seeds 3] [--out-root DIR]

The pipeline (notebook 02, ``make reproduce``) trains the reproduced four with the paper's form
(``msssim_form: paper``, msssim.ms_ssim_map). This command trains the two of them that have the
MS-SSIM term again with Wang's form (``msssim_form: wang``, msssim.ms_ssim, torchmetrics'
numbers), same seeds, same split, into runs/<profile>/<data>-msssim-wang/ (seed<k>/ as the
pipeline; finished runs are kept, unfinished ones resume), and writes results/msssim_forms.csv:
each variant under each form as mean and sd over seeds, and on the paper-form row the paired
difference paper - wang (seed as the unit, 95 % interval), with provenance. Notebook 03 shows it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..config import load_config
from ..data import load_data
from ..errors import run_guarded
from ..metrics import TABLE1, by_name, registered
from ..models import REPRODUCED, variants
from ..reporting.evaluate import summarize
from ..reporting.table1 import collect, paired_difference
from ..runs import PROVENANCE_FILE, normalise_data_dir, outputs, portable, seed_folder
from ..train import fit

#: The reproduced variants whose loss has the MS-SSIM term (the others do not depend on its form).
VARIANTS = tuple(name for name, v in variants(REPRODUCED).items() if v.msssim)
WANG = " (Wang's form)"
#: The paired differences paper - wang that the Markdown shows, with their format: PSNR to
#: 0.01 dB, BSR to 0.001 (the CSV holds every Table 1 metric's).
DIFFS_SHOWN = {"psnr": ".2f", "bsr": ".3f"}


def wang_runs_dir(profile: str, data_dir=None, out_root=None) -> Path:
    """runs/<profile>/<data>-msssim-wang: the Wang-form runs beside the pipeline's."""
    runs = outputs(profile, data_dir, out_root).runs
    return runs.with_name(runs.name + "-msssim-wang")


def train_wang(profile: str, data_dir=None, seeds: int = 3, out_root=None, device: str = "auto", log=print) -> Path:
    """Train (or finish) VARIANTS with msssim_form = wang for seeds 0 .. seeds-1."""
    data_dir = normalise_data_dir(data_dir)
    root = wang_runs_dir(profile, data_dir, out_root)
    data = None
    for seed in range(seeds):
        for variant in VARIANTS:
            cfg = load_config(profile, variant=variant, data_dir=data_dir, seed=seed, device=device, msssim_form="wang")
            data = data if data is not None else load_data(cfg)
            out = seed_folder(root, seed) / variant
            log(f"{variant}, seed {seed}, Wang's form -> {out}")
            fit(cfg, out, data=data, progress=False, profile=profile)
    return root


def _provenance(runs_dir: Path) -> dict:
    """What the CSV records of one form's runs: total training time, commits, devices, data source."""
    provs = [json.loads(p.read_text()) for p in sorted(Path(runs_dir).glob(f"**/{PROVENANCE_FILE}"))]
    provs = [p for p in provs if p.get("variant") in VARIANTS] or provs
    return {
        "train_seconds": round(sum(float(p.get("train_seconds_total") or 0) for p in provs), 1),  # all runs of the form
        "commits": " ".join(sorted({str(p.get("commit")) for p in provs})),
        "device": "; ".join(sorted({str(p.get("device")) for p in provs})),
        "data_source": portable(provs[0].get("data")) if provs else None,
    }


def compare(paper_runs: str | Path, wang_runs: str | Path, data=None) -> pd.DataFrame:
    """One row per (variant, form): metrics as mean / sd over seeds (test images averaged within a
    seed); the paper-form rows also hold ``diff_<metric>`` and ``diff_<metric>_half``: the paired
    difference paper - wang (> 0: the paper's form better), over the seeds both forms have."""
    labels = {variants()[v].label for v in VARIANTS}
    paper, _ = collect(paper_runs, data)
    wang, _ = collect(wang_runs, data)
    paper = paper[paper["method"].isin(labels)]
    wang = wang[wang["method"].isin(labels)].assign(method=lambda d: d["method"] + WANG)
    seeds = sorted(set(paper["seed"]) & set(wang["seed"]))
    both = pd.concat([paper, wang], ignore_index=True)
    both = both[both["seed"].isin(seeds)]
    if both.empty:
        return pd.DataFrame()
    summary = summarize(both)
    rows, names = [], [m.name for m in registered(TABLE1)]
    provs = {"paper": _provenance(Path(paper_runs)), "wang": _provenance(Path(wang_runs))}
    for method, r in summary.iterrows():
        form = "wang" if method.endswith(WANG) else "paper"
        base = method.removesuffix(WANG)
        row = {"method": base, "form": form, "n_seeds": int(r.get("n_seeds", 1)), "n_test": int(r["n"])}
        for k in names:
            row[f"{k}_mean"], row[f"{k}_std"] = r[f"{k}_mean"], r[f"{k}_std"]
        if form == "paper" and base + WANG in summary.index:
            for k in names:
                d = paired_difference(both, base, base + WANG, k)
                row[f"diff_{k}"], row[f"diff_{k}_half"] = d["mean"], d["half"]
        rows.append({**row, "seeds": " ".join(map(str, seeds)), **provs[form]})
    return pd.DataFrame(rows)


def write(table: pd.DataFrame, results_dir, data: str, profile: str) -> Path:
    """Replace this (data, profile) block of results/msssim_forms.csv (other blocks are kept)."""
    path = Path(results_dir) / "msssim_forms.csv"
    block = table.assign(data=data, profile=profile)
    block = block[["data", "profile", *[c for c in block if c not in ("data", "profile")]]]
    if path.exists() and path.stat().st_size > 0:
        old = pd.read_csv(path)
        block = pd.concat([old[~((old["data"] == data) & (old["profile"] == profile))], block], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        block.to_csv(tmp, index=False)
    return path


def markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (what notebook 03 shows)."""
    if table is None or table.empty:
        return "_No comparison of the MS-SSIM forms yet: `python -m dae_lib.studies.msssim_forms` makes one._"
    lines = []
    table = table.assign(**{k: table[k] if k in table else "" for k in ("data", "profile")})
    columns = registered(TABLE1)
    head = ["Method", "MS-SSIM form", *(m.label for m in columns), *map(_diff_header, DIFFS_SHOWN)]
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        n = int(block["n_seeds"].max())
        lines += [
            f"**{data}, {profile} profile, {n} seed(s)** (mean +- sd over seeds; difference paper - wang paired by seed, 95 % interval)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for _, r in block.iterrows():
            cells = [m.mean_sd(r.get(f"{m.name}_mean"), r.get(f"{m.name}_std")) for m in columns]
            form = "paper (per pixel)" if r["form"] == "paper" else "Wang (per image)"
            lines.append(f"| {r['method']} | {form} | " + " | ".join(cells + _diff_cells(r)) + " |")
        lines.append("")
    return "\n".join(lines)


def _diff_header(name: str) -> str:
    """The header of a paired-difference column: "PSNR paper - wang (dB)"."""
    m = by_name(name)
    return f"{m.short} paper - wang ({m.unit})" if m.unit else f"{m.short} paper - wang"


def _diff_cells(r: pd.Series) -> list[str]:
    """The DIFFS_SHOWN cells of one row: "+2.49 +- 2.18" on a paper-form row that has them, else ""."""
    cells = []
    for k, fmt in DIFFS_SHOWN.items():
        shown = r["form"] == "paper" and pd.notna(r.get(f"diff_{k}"))
        cells.append(f"{r[f'diff_{k}']:+{fmt}} +- {r[f'diff_{k}_half']:{fmt}}" if shown else "")
    return cells


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.msssim_forms", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="data folder (default: the phantom)")
    p.add_argument("--profile", default="quick")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--out-root", default=None, help="where runs/ and results/ are (default: the repository)")
    a = p.parse_args(argv)

    def go():
        out = outputs(a.profile, normalise_data_dir(a.data), a.out_root)
        wang = train_wang(a.profile, a.data, a.seeds, a.out_root, a.device)
        table = compare(out.runs, wang)
        if table.empty:
            print(f"no paper-form runs of {', '.join(VARIANTS)} in {out.runs}: run the pipeline (make reproduce) first")
            return 1
        path = write(table, out.results, out.data, a.profile)
        print(markdown(table.assign(data=out.data, profile=a.profile)))
        print(f"-> {path}")
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    raise SystemExit(main())
