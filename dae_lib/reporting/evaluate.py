"""Evaluation on the held-out test cases: per-image Table 1 metrics, with the identity baseline.

The identity baseline (S_hat = X: suppress nothing) is evaluated on the same cases with the same
metrics and always reported beside the models: on BSE-JSRT it already scores about 37 dB PSNR
(results/table1.md), so a model is only useful where it beats it. Metrics are computed on the images
as the model sees them (clinical polarity, [0, 1], the configured size), with the model in float32
(no autocast). The test cases are those of the run's own split.csv, written when it started.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .. import metrics
from ..atomic import atomic_path
from ..data import PairedImages, hashes_by_case, load_data
from ..device import pick_device
from ..errors import RunDirError
from ..models import REPRODUCED, get_variant, label_of
from ..inference import predict, predict_masks
from ..runs import LOG_FILE, TEST_METRICS, config_from_run, finished_runs, load_model, run_split_file
from ..split import check_split, read_split_csv

IDENTITY = "Identity (S_hat = X)"


def metric_rows(method: str, data: PairedImages, pred: torch.Tensor) -> pd.DataFrame:
    """One row per image: case_id, method, the Table 1 metrics of ``pred`` against ``data.s`` and
    the per-region ones (inside / outside the bone mask ``data.m``), as metrics.REGISTRY lists them."""
    m = {k.name: k.fn(pred, data.s, data.x, data.m) for k in metrics.registered(metrics.TABLE1, metrics.REGION)}
    return pd.DataFrame({"case_id": data.ids, "method": method, **{k: v.numpy() for k, v in m.items()}})


def identity_rows(data: PairedImages) -> pd.DataFrame:
    """The metric rows of the do-nothing baseline S_hat = X."""
    return metric_rows(IDENTITY, data, data.x)


def model_rows(model, data: PairedImages, method: str, batch_size: int | None = None) -> pd.DataFrame:
    """The metric rows of a model's estimates; for a model with a segmentation head also the head's
    metrics (Dice against the test masks M; the head is run for this only, never at inference)."""
    df = metric_rows(method, data, predict(model, data.x, "off", batch_size))
    masks = predict_masks(model, data.x, batch_size)
    if masks is not None:
        for k in metrics.registered(metrics.HEAD):
            df[k.name] = k.fn(masks, data.s, data.x, data.m).numpy()
    return df


def run_part(data: PairedImages, run_dir: str | Path, part: str = "test") -> PairedImages:
    """The cases of ``part`` ("train", "val", "test") in the run's split.csv, taken from ``data``
    (in data order). Cases the split lists but the data lack are an error naming them."""
    path = run_split_file(run_dir)
    check_split(path, data.ids, hashes_by_case(data), parts=(part,))  # present and unchanged, else named
    split = read_split_csv(path)
    return data.subset([k for k, cid in enumerate(data.ids) if split.get(cid) == part])


def evaluate_run(run_dir: str | Path, data: PairedImages | None = None, which: str = "best", device: str = "auto") -> pd.DataFrame:
    """Per-image test metrics of a trained run and of the identity baseline; writes test_metrics.csv.
    ``device``: where to run the model ("auto": CUDA if present, else the CPU), whatever the run
    was trained on."""
    run_dir = Path(run_dir)
    cfg = config_from_run(run_dir)
    data = data if data is not None else load_data(cfg)
    test = run_part(data, run_dir)
    model = load_model(run_dir, which, pick_device(device))
    df = pd.concat([identity_rows(test), model_rows(model, test, label_of(cfg.variant))], ignore_index=True)
    with atomic_path(run_dir / TEST_METRICS) as tmp:
        df.to_csv(tmp, index=False)
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of each metric per method, in the order methods first appear.

    One seed: over the test images (``n`` images). Several seeds (a ``seed`` column): each seed's
    mean over the images first, then the mean and standard deviation of those over the seeds
    (``n_seeds``), so the spread is the seed-to-seed one that every claim is judged against."""
    order = list(dict.fromkeys(df["method"]))
    cols = [k.name for k in metrics.registered() if k.name in df]
    n_seeds = df.groupby("method", sort=False)["seed"].nunique() if "seed" in df else pd.Series(1, index=order)
    if (n_seeds > 1).any():
        per_seed = df.groupby(["method", "seed"], sort=False)[cols].mean()
        g = per_seed.groupby(level="method", sort=False)
        n = df.groupby("method", sort=False).size() // n_seeds
    else:
        g = df.groupby("method", sort=False)[cols]
        n = g.size()
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_std")).join(n.rename("n")).join(n_seeds.rename("n_seeds"))
    return out.loc[order]


def format_table(summary: pd.DataFrame) -> str:
    """A plain-text table: mean +- std per Table 1 metric (metrics.REGISTRY's headers and formats)."""
    columns = metrics.registered(metrics.TABLE1)
    rows = []
    for method, r in summary.iterrows():
        cells = [k.mean_sd(r.get(f"{k.name}_mean"), r.get(f"{k.name}_std")).rjust(20) for k in columns]
        rows.append(f"{method:<24}" + "".join(cells))
    head = f"{'method':<24}" + "".join(k.label.rjust(20) for k in columns)
    return "\n".join([head, *rows])


def validation_psnr(run_dir: str | Path) -> float:
    """Validation PSNR of the epoch a run kept (lowest validation loss, as ``fit`` keeps it): how a
    variant is picked, never by its test cases."""
    log = pd.read_csv(Path(run_dir) / LOG_FILE)
    if "val_loss" not in log or "val_psnr" not in log:
        return float("nan")
    return float(log.loc[log["val_loss"].idxmin(), "val_psnr"])


def figure_runs(runs_dir: str | Path) -> dict[str, Path]:
    """The finished runs the figures show: every variant of the reproduced family (the paper's network), and of each other
    family the one with the best validation PSNR (its best improved variant)."""
    done = finished_runs(runs_dir)[0]
    shown = {v: d for v, d in done.items() if get_variant(v).family == REPRODUCED}
    for family in dict.fromkeys(get_variant(v).family for v in done):
        if family != REPRODUCED:
            members = {v: d for v, d in done.items() if get_variant(v).family == family}
            best = max(members, key=lambda v: validation_psnr(members[v]))
            shown[best] = members[best]
    return shown


def _best_model(run: Path) -> torch.nn.Module:
    """A run's best weights on the device its config names (as it was trained to run)."""
    return load_model(run, "best", pick_device(config_from_run(run).device))


def predict_test_cases(runs: dict[str, Path], data: PairedImages) -> tuple[PairedImages | None, dict]:
    """The test cases and the estimates of each run in ``runs`` ({variant: folder}, e.g.
    ``finished_runs(...)[0]`` or ``figure_runs(...)``) for them ({label: (N,1,H,W)})."""
    test, preds = None, {}
    for variant, run in runs.items():
        cfg = config_from_run(run)
        part = run_part(data, run)
        if test is not None and part.ids != test.ids:
            raise RunDirError(f"{run}: its test cases differ from those of the other runs")
        test = part
        model = _best_model(run)
        preds[label_of(variant)] = predict(model, test.x, "off", cfg.eval_batch_size or None)
    return test, preds


def head_masks(runs: dict[str, Path], test: PairedImages) -> dict[str, torch.Tensor]:
    """The segmentation head's binary bone masks for the test cases ``test`` ({label: (N,1,H,W)}),
    of each run in ``runs`` whose variant has a head (for showing it beside M; never used to suppress)."""
    out = {}
    for variant, run in runs.items():
        if get_variant(variant).seg_head:
            out[label_of(variant)] = predict_masks(_best_model(run), test.x)
    return out
