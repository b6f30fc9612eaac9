"""Evaluation on the held-out test cases: per-image Table 1 metrics, with the identity baseline.

The identity baseline (S_hat = X: suppress nothing) is evaluated on the same cases with the same
metrics and always reported beside the models: on BSE-JSRT it already scores ~37.8 dB PSNR, so a
model is only useful where it beats it. Metrics are computed on the images as the model sees them
(clinical polarity, [0, 1], the configured size), in float32 (no autocast).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from . import metrics
from .atomic import atomic_path
from .config import VARIANT_LABELS
from .data import PairedImages, load_data
from .device import pick_device
from .split import make_split, split_indices
from .train import config_from_run, load_model, predict

IDENTITY = "Identity (S_hat = X)"


def metric_rows(method: str, data: PairedImages, pred: torch.Tensor) -> pd.DataFrame:
    """One row per image: case_id, method and the four metrics of ``pred`` against ``data.s``."""
    m = metrics.all_metrics(pred, data.s, data.x)
    return pd.DataFrame({"case_id": data.ids, "method": method, **{k: v.numpy() for k, v in m.items()}})


def identity_rows(data: PairedImages) -> pd.DataFrame:
    return metric_rows(IDENTITY, data, data.x)


def model_rows(model, data: PairedImages, method: str, device=None, batch_size: int = 8) -> pd.DataFrame:
    device = device or next(model.parameters()).device
    pred = predict(model, data.x, device, None, batch_size)
    return metric_rows(method, data, pred)


def test_part(data: PairedImages, cfg) -> PairedImages:
    split = make_split(data.ids, cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    return data.subset(split_indices(data.ids, split)["test"])


def evaluate_run(run_dir: str | Path, data: PairedImages | None = None, which: str = "best") -> pd.DataFrame:
    """Per-image test metrics of a trained run and of the identity baseline; writes test_metrics.csv."""
    run_dir = Path(run_dir)
    cfg = config_from_run(run_dir)
    data = data if data is not None else load_data(cfg)
    test = test_part(data, cfg)
    device = pick_device(cfg.device)
    model = load_model(run_dir, which, device)
    df = pd.concat([identity_rows(test), model_rows(model, test, VARIANT_LABELS[cfg.variant], device)], ignore_index=True)
    with atomic_path(run_dir / "test_metrics.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of each metric per method, in the order methods first appear."""
    order = list(dict.fromkeys(df["method"]))
    g = df.groupby("method", sort=False)[list(metrics.METRICS)]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_std")).join(g.size().rename("n"))
    return out.loc[order]


def format_table(summary: pd.DataFrame) -> str:
    """A plain-text table: mean +- std per metric."""
    rows = []
    for method, r in summary.iterrows():
        cells = [f"{method:<24}"]
        for k, fmt in (("bsr", "{:.4f}"), ("rmae", "{:.4f}"), ("psnr", "{:.2f}"), ("ssim", "{:.4f}")):
            cells.append(f"{fmt.format(r[k + '_mean'])} +- {fmt.format(r[k + '_std'])}".rjust(20))
        rows.append("".join(cells))
    head = f"{'method':<24}" + "".join(h.rjust(20) for h in ("BSR", "RMAE", "PSNR (dB)", "SSIM"))
    return "\n".join([head, *rows])


def test_predictions(runs_dir: str | Path, data: PairedImages) -> tuple[PairedImages, dict]:
    """The test cases and each finished variant's estimates for them ({label: (N,1,H,W)})."""
    from .config import VARIANTS

    runs_dir = Path(runs_dir)
    test, preds = None, {}
    for variant in VARIANTS:
        run = runs_dir / variant
        if not (run / "best.safetensors").exists():
            continue
        cfg = config_from_run(run)
        test = test if test is not None else test_part(data, cfg)
        model = load_model(run, "best", pick_device(cfg.device))
        preds[VARIANT_LABELS[variant]] = predict(model, test.x, next(model.parameters()).device, None, cfg.eval_batch_size)
    return test, preds
