"""Choosing settings on the validation part: train a small grid, compare best-epoch validation metrics.

    python -m dae_lib.studies.sweep --variant r_ae --profile quick --data DIR --grid lr=1e-3,2e-3 unet_width=8,16

Every combination of the grid is trained (``fit``, resumable, runs under
runs/<profile>/<data>-sweep/<variant>-<setting>/) and reported by the validation metrics of the
epoch ``fit`` keeps, next to the identity baseline on the same validation cases. The test cases
are never scored here: a setting chosen on them would overstate what it does on new radiographs.
Rows are appended to results/sweep.csv with their provenance.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import pandas as pd
import yaml

from .. import metrics
from ..atomic import append_csv
from ..config import load_config
from ..data import load_data
from ..device import describe, pick_device
from ..errors import ConfigError, run_guarded
from ..metrics import METRICS
from ..reporting.evaluate import run_part
from ..runs import normalise_data_dir, outputs, record
from ..train import fit


def grid(items: list[str]) -> list[dict]:
    """``["lr=1e-3,2e-3", "ls=0.01"]`` -> every combination as a dict (values read as YAML)."""
    axes = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep:
            raise ConfigError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        axes.append([(key.strip(), yaml.safe_load(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def validation_identity(data, run_dir) -> dict:
    """Identity (S_hat = X) metrics on the run's validation cases."""
    val = run_part(data, run_dir, "val")
    return {f"identity_val_{k}": float(v.mean()) for k, v in metrics.all_metrics(val.x, val.s, val.x).items()}


def run_sweep(variant: str, settings: list[dict], profile: str = "quick", data_dir=None, out_root=None, log=print, **fixed) -> pd.DataFrame:
    out = outputs(profile, data_dir, out_root)
    root = out.runs.with_name(out.data + "-sweep")
    data, rows = None, []
    for setting in settings:
        cfg = load_config(profile, variant=variant, data_dir=data_dir, **{**fixed, **setting})
        data = data if data is not None else load_data(cfg)
        tag = "-".join(f"{k}{v}" for k, v in {**fixed, **setting}.items()) or "default"
        run = root / f"{variant}-{tag}"
        t0 = time.perf_counter()
        res = fit(cfg, run, data=data, progress=False, profile=profile)
        best = res.history[res.best_epoch - 1]
        row = {"variant": variant, "setting": json.dumps({**fixed, **setting}), "best_epoch": res.best_epoch, "epochs": len(res.history)}
        row.update({f"val_{k}": best[f"val_{k}"] for k in METRICS})
        row.update(validation_identity(data, run))
        row.update(train_seconds=round(sum(r["seconds"] for r in res.history), 1), wall_seconds=round(time.perf_counter() - t0, 1))
        rows.append(row)
        log(f"{variant} {row['setting']}: val PSNR {row['val_psnr']:.2f} dB (identity {row['identity_val_psnr']:.2f}), "
            f"BSR {row['val_bsr']:.3f}, best epoch {res.best_epoch}/{len(res.history)}")  # fmt: skip
    prov = record(profile=profile, data=out.data, device=describe(pick_device(cfg.device)))
    prov = {k: json.dumps(v) if isinstance(v, list) else v for k, v in prov.items()}
    table = pd.DataFrame(rows).assign(**prov)
    append_csv(out.results / "sweep.csv", table)
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.sweep", description=__doc__.split("\n")[0])
    p.add_argument("--variant", required=True)
    p.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2", help="settings to vary")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="settings fixed for every run")
    p.add_argument("--profile", default="quick")
    p.add_argument("--data", default=None, help="data folder (default: the phantom)")
    p.add_argument("--out-root", default=None)
    args = p.parse_args(argv)

    def go():
        fixed = grid(args.set)[0] if args.set else {}
        run_sweep(args.variant, grid(args.grid), args.profile, normalise_data_dir(args.data), args.out_root, **fixed)
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
