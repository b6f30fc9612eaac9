"""Does bf16 autocast cost accuracy? The same variant trained with several seeds in bf16 and in fp32.

    python -m dae_lib.studies.precision [--variant dae_msssim] [--seeds 0 1 2 3 4] [--profile quick] [--data DIR]

One training run differs from the next by far more than bf16 rounding: the best epoch is picked on a
handful of validation cases and the validation PSNR of a short profile jumps by dB between epochs.
A single bf16-versus-fp32 pair therefore says nothing (on the phantom, two same-seed pairs differed
by +0.26 dB and -1.32 dB). So each precision is trained with every seed, each run is scored on the
test cases, and the seed (not the image) is the unit of the comparison:

    d_s   = mean_test(bf16, seed s) - mean_test(fp32, seed s)      (same seed: same init and batches)
    diff  = mean_s d_s  +- t_{0.975, n-1} * sd_s(d_s) / sqrt(n)

next to the seed-to-seed standard deviation of each precision, the scale of "noise". bf16 "costs
accuracy" only where the interval excludes zero on the harmful side. The runs go to
runs/<profile>/<data>-precision/<variant>-<bf16|fp32>-seed<s>/ and resume like any run; the table
(one row per metric, with provenance) is appended to results/precision.csv, the per-run means to
results/precision_runs.csv. Validation metrics (best epoch) are reported too, as the selection
criterion the pipeline itself uses.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from ..atomic import append_csv
from ..config import load_config
from ..data import load_data
from ..device import describe, pick_device
from ..errors import ConfigError, run_guarded
from ..metrics import METRICS
from ..reporting.evaluate import evaluate_run
from ..reporting.stats import mean_interval
from ..runs import outputs, record
from ..train import fit

PRECISIONS = {"bf16": "bf16", "fp32": "off"}  # name -> Config.amp


def run_dir(runs_root: Path, variant: str, precision: str, seed: int) -> Path:
    return runs_root / f"{variant}-{precision}-seed{seed}"


def run_means(result, data) -> dict:
    """Mean test metrics of one trained run (a ``FitResult``; model rows only) and the validation
    metrics of the epoch it kept."""
    df = evaluate_run(result.out_dir, data)
    model = df[df["method"] != df["method"].iloc[0]]
    best = result.history[result.best_epoch - 1] if result.best_epoch > 0 else {}
    out = {f"test_{m}": float(model[m].mean()) for m in METRICS}
    out.update({f"val_{m}": float(best.get(f"val_{m}", float("nan"))) for m in METRICS})
    out.update(best_epoch=result.best_epoch, n_test=len(model))
    return out


def seed_comparison(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per metric: each precision's mean and seed sd, and the same-seed difference bf16 - fp32 with its 95 % t interval.

    ``per_run`` has one row per (precision, seed) with columns ``test_<metric>`` / ``val_<metric>``.
    """
    wide = per_run.pivot(index="seed", columns="precision")
    rows = []
    for part in ("test", "val"):
        for m in METRICS:
            col = f"{part}_{m}"
            b, f = wide[(col, "bf16")].dropna(), wide[(col, "fp32")].dropna()
            diff, half, n = mean_interval(b - f)
            rows.append({
                "part": part, "metric": m, "n_seeds": n,
                "bf16_mean": float(b.mean()), "bf16_seed_sd": float(b.std(ddof=1)) if len(b) > 1 else float("nan"),
                "fp32_mean": float(f.mean()), "fp32_seed_sd": float(f.std(ddof=1)) if len(f) > 1 else float("nan"),
                "diff_mean": diff, "diff_95": half,
            })  # fmt: skip
    return pd.DataFrame(rows)


def compare_precision(
    variant: str = "dae_msssim", seeds=(0, 1, 2, 3, 4), profile: str = "quick", data_dir=None,
    out_root=None, log=print, **overrides,
) -> pd.DataFrame:  # fmt: skip
    """Train ``variant`` once per seed and precision, score each run, write and return the comparison."""
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        raise ConfigError(f"compare_precision: give at least two different seeds, not {list(seeds)} (the seed is the unit of comparison)")
    out = outputs(profile, data_dir, out_root)
    runs_root = out.runs.with_name(out.data + "-precision")
    data, rows, t_all = None, [], time.perf_counter()
    for seed in seeds:
        for name, amp in PRECISIONS.items():
            cfg = load_config(profile, variant=variant, data_dir=data_dir, amp=amp, seed=seed, **overrides)
            data = data if data is not None else load_data(cfg)
            run = run_dir(runs_root, variant, name, seed)
            t0 = time.perf_counter()
            result = fit(cfg, run, data=data, progress=False, profile=profile)
            rows.append({"precision": name, "seed": seed, **run_means(result, data), "train_seconds": round(time.perf_counter() - t0, 1)})
            log(f"{name} seed {seed}: test PSNR {rows[-1]['test_psnr']:.2f} dB ({rows[-1]['train_seconds']:.0f} s) -> {run}")
    per_run = pd.DataFrame(rows)
    device = describe(pick_device(cfg.device))
    extra = record(profile=profile, data=out.data, variant=variant, device=device, wall_seconds=round(time.perf_counter() - t_all, 1))
    extra = {k: json.dumps(v) if isinstance(v, list) else v for k, v in extra.items()}
    table = seed_comparison(per_run)
    append_csv(out.results / "precision_runs.csv", per_run.assign(**extra))
    append_csv(out.results / "precision.csv", table.assign(**extra))
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.precision", description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="dae_msssim")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default=None, help="data folder (default: the phantom)")
    p.add_argument("--out-root", default=None, help="root for runs/ and results/ (default: the repository)")
    args = p.parse_args(argv)

    def go():
        table = compare_precision(args.variant, tuple(args.seeds), args.profile, args.data, args.out_root)
        with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
            print(table.to_string(index=False))
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
