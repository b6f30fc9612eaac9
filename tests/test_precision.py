"""The bf16-versus-fp32 comparison: seed-level statistics and the runs it trains."""
import json

import pandas as pd
import pytest
import torch

from dae_lib.device import bf16_supported
from dae_lib.studies.precision import compare_precision, seed_comparison
from dae_lib.reporting.stats import t95


def _per_run(bf16, fp32):
    rows = []
    for name, vals in (("bf16", bf16), ("fp32", fp32)):
        for seed, v in enumerate(vals):
            rows.append({"precision": name, "seed": seed, **{f"{p}_{m}": v for p in ("test", "val") for m in ("bsr", "rmae", "psnr", "ssim")}})
    return pd.DataFrame(rows)


def test_seed_comparison_is_the_same_seed_difference_with_a_t_interval():
    bf16, fp32 = [36.0, 35.0, 37.5], [35.5, 35.2, 36.0]
    table = seed_comparison(_per_run(bf16, fp32)).set_index(["part", "metric"])
    r = table.loc[("test", "psnr")]
    d = pd.Series(bf16) - pd.Series(fp32)  # 0.5, -0.2, 1.5
    assert r["n_seeds"] == 3
    assert r["diff_mean"] == pytest.approx(0.6)
    assert r["diff_95"] == pytest.approx(t95(2) * d.std(ddof=1) / 3**0.5)
    assert r["bf16_mean"] == pytest.approx(36.1667, abs=1e-4)
    assert r["fp32_seed_sd"] == pytest.approx(pd.Series(fp32).std(ddof=1))
    assert set(table.index.get_level_values("part")) == {"test", "val"}


def test_seed_comparison_pairs_by_seed_not_by_position():
    per_run = _per_run([1.0, 2.0], [0.0, 2.0]).sample(frac=1, random_state=0)  # shuffled rows
    r = seed_comparison(per_run).set_index(["part", "metric"]).loc[("test", "bsr")]
    assert r["diff_mean"] == pytest.approx(0.5)


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16")
def test_compare_precision_trains_each_seed_in_both_precisions_and_resumes(tmp_path):
    kw = dict(image_size=64, n_phantom=12, phantom_seed=3, epochs=1, batch_size=4)
    for bad in ((0,), (1, 1)):
        with pytest.raises(ValueError, match="two different seeds"):
            compare_precision("dae", seeds=bad, profile="smoke", out_root=tmp_path, log=lambda *_: None, **kw)
    table = compare_precision("dae", seeds=(0, 1), profile="smoke", out_root=tmp_path, log=lambda *_: None, **kw)
    runs = tmp_path / "runs" / "smoke" / "phantom-precision"
    amps = {p.name: json.loads((p / "config.json").read_text()) for p in runs.iterdir()}
    assert sorted(amps) == ["dae-bf16-seed0", "dae-bf16-seed1", "dae-fp32-seed0", "dae-fp32-seed1"]
    assert {(c["amp"], c["seed"]) for c in amps.values()} == {("bf16", 0), ("bf16", 1), ("off", 0), ("off", 1)}
    assert len(table) == 8 and (table["n_seeds"] == 2).all()
    per_run = pd.read_csv(tmp_path / "results" / "precision_runs.csv")
    assert len(per_run) == 4 and per_run["commit"].notna().all() and (per_run["n_test"] > 0).all()
    # the validation metrics are those of the epoch fit kept, from its log
    for _, r in per_run.iterrows():
        log = pd.read_csv(runs / f"dae-{r['precision']}-seed{r['seed']}" / "log.csv").set_index("epoch")
        assert r["val_psnr"] == pytest.approx(log.loc[r["best_epoch"], "val_psnr"])
    # the two precisions really trained differently (bf16 rounding changes the weights)
    a = per_run.set_index(["precision", "seed"])["test_psnr"]
    assert a[("bf16", 0)] != a[("fp32", 0)]
    # a second call resumes the finished runs (no training) and appends a second table
    logs = {p: p.stat().st_mtime_ns for p in runs.glob("*/log.csv")}
    compare_precision("dae", seeds=(0, 1), profile="smoke", out_root=tmp_path, log=lambda *_: None, **kw)
    again = pd.read_csv(tmp_path / "results" / "precision_runs.csv")
    assert len(again) == 8
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/log.csv")} == logs
    assert list(again["test_psnr"][4:]) == list(again["test_psnr"][:4])
    assert len(pd.read_csv(tmp_path / "results" / "precision.csv")) == 16
