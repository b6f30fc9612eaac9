"""The comparison of the two MS-SSIM forms (results/msssim_forms.csv), on hand-built run folders."""
import json

import numpy as np
import pandas as pd
import pytest

from dae_lib.studies import msssim_forms
from dae_lib.reporting.evaluate import IDENTITY
from dae_lib.models import label_of


def _fake_run(folder, variant, seed, psnr_shift, rmae_scale, n=6):
    """A finished run as collect() reads it: config.json, weights, a cached test_metrics.csv."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"variant": variant}))
    (folder / "best.safetensors").write_bytes(b"")
    (folder / "provenance.json").write_text(json.dumps({"variant": variant, "commit": f"c-{variant}", "device": "cpu", "data": "data/x"}))
    rng = np.random.default_rng(seed)
    ids = [f"case{i}" for i in range(n)]
    base = 30 + rng.normal(0, 1, n)
    rows = [dict(case_id=c, method=IDENTITY, bsr=0.0, rmae=0.02, psnr=37.0, ssim=0.98) for c in ids]
    rows += [
        dict(case_id=c, method=label_of(variant), bsr=0.5, rmae=0.02 * rmae_scale, psnr=p + psnr_shift + 0.1 * seed, ssim=0.95)
        for c, p in zip(ids, base)
    ]
    df = pd.DataFrame(rows)
    for k in ("psnr_bone", "mae_bone", "psnr_outside", "mae_outside", "dice"):
        df[k] = 1.0  # a complete evaluation: collect() reuses it instead of evaluating again
    df.to_csv(folder / "test_metrics.csv", index=False)


def _runs(root, psnr_shift, rmae_scale, seeds=3):
    for seed in range(seeds):
        for v in msssim_forms.VARIANTS:
            _fake_run(root / (v if seed == 0 else f"seed{seed}/{v}"), v, seed, psnr_shift, rmae_scale)
    return root


def test_only_the_variants_with_the_msssim_term_are_compared():
    assert msssim_forms.VARIANTS == ("ae_msssim", "dae_msssim")


def test_difference_is_paper_minus_wang_and_signed_for_better(tmp_path):
    paper = _runs(tmp_path / "p", psnr_shift=1.0, rmae_scale=0.5)  # the paper's form better on both
    wang = _runs(tmp_path / "w", psnr_shift=0.0, rmae_scale=1.0)
    t = msssim_forms.compare(paper, wang)
    assert list(t["form"]) == ["paper", "paper", "wang", "wang"]
    assert set(t["n_seeds"]) == {3}
    p = t[t["form"] == "paper"].iloc[0]
    assert p["diff_psnr"] == pytest.approx(1.0)
    assert p["diff_rmae"] == pytest.approx(0.01)  # lower RMAE is better: positive difference
    assert p["commits"] == "c-ae_msssim c-dae_msssim"
    assert t[t["form"] == "wang"]["diff_psnr"].isna().all()
    md = msssim_forms.markdown(t)
    assert "| AE + MS-SSIM | paper (per pixel) |" in md and "+1.00 +- 0.00" in md


def test_seeds_only_one_form_has_are_left_out(tmp_path):
    paper = _runs(tmp_path / "p", 1.0, 1.0, seeds=3)
    wang = _runs(tmp_path / "w", 0.0, 1.0, seeds=2)
    t = msssim_forms.compare(paper, wang)
    assert set(t["n_seeds"]) == {2} and set(t["seeds"]) == {"0 1"}


def test_write_replaces_only_its_block(tmp_path):
    t = msssim_forms.compare(_runs(tmp_path / "p", 1.0, 1.0), _runs(tmp_path / "w", 0.0, 1.0))
    msssim_forms.write(t, tmp_path / "results", "bse", "quick")
    msssim_forms.write(t, tmp_path / "results", "phantom", "quick")
    path = msssim_forms.write(t.assign(psnr_mean=0.0), tmp_path / "results", "bse", "quick")
    out = pd.read_csv(path)
    assert len(out) == 8
    assert (out[out["data"] == "bse"]["psnr_mean"] == 0).all() and (out[out["data"] == "phantom"]["psnr_mean"] > 0).all()
