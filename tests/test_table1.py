"""Table 1: the paper's values, the identity PSNR they imply, and claims judged in the right direction."""
import numpy as np
import pandas as pd
import pytest
import torch

from dae_lib import metrics

from dae_lib.reporting import table1
from dae_lib.reporting.evaluate import IDENTITY
from dae_lib.reporting.stats import t95


def test_paper_table_is_transcribed_with_ssim_as_a_fraction():
    paper = table1.paper_values()
    assert paper["transcribed"]
    v = paper["values"]
    assert list(v) == ["AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM"]
    assert v["DAE + MS-SSIM"] == {"bsr": 0.91, "rmae": 0.0091, "psnr": 30.8, "ssim": 0.970}
    assert all(0 < r["ssim"] < 1 for r in v.values())  # printed in percent, stored as a fraction


def test_implied_identity_psnr_equals_the_measured_one_for_an_image():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(1, 1, 64, 64, generator=g) * 0.5
    x = (s + 0.1 * torch.rand(1, 1, 64, 64, generator=g)).clamp(0, 1)  # "bone" added
    s_hat = (s + 0.3 * (x - s)).clamp(0, 1)  # removes 70 % of it
    implied = table1.implied_identity_psnr(float(metrics.psnr(s_hat, s)), float(metrics.bsr(s_hat, s, x)))
    assert implied == pytest.approx(float(metrics.psnr(x, s)), abs=1e-5)  # (torchmetrics: float32 inside)


def _table(a_better_by: float, metric: str, a="B", b="A", n=8):
    """Per-image values where ``a`` is better than ``b`` by about ``a_better_by`` (in the metric's good direction)."""
    rng = np.random.default_rng(0)
    base = 30 + rng.normal(0, 1, n)
    sign = 1 if metrics.by_name(metric).higher_is_better else -1
    rows = []
    for i in range(n):
        for method, v in ((IDENTITY, base[i] - 5 * sign), (b, base[i]), (a, base[i] + sign * (a_better_by + rng.normal(0, 0.05)))):
            rows.append({"case_id": f"C{i}", "method": method, metric: v})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("metric", ["psnr", "rmae"])
def test_paired_difference_is_signed_so_that_positive_means_better(metric):
    better = table1.paired_difference(_table(1.0, metric), "B", "A", metric)
    assert better["mean"] == pytest.approx(1.0, abs=0.1) and better["wins"] == 8 and better["mean"] - better["half"] > 0
    worse = table1.paired_difference(_table(-1.0, metric), "B", "A", metric)
    assert worse["mean"] < 0 and worse["wins"] == 0


def test_claims_say_holds_or_is_contradicted_in_the_right_direction():
    def table(dae_minus_ae):
        rows = []
        for i in range(8):
            for method, d in ((IDENTITY, -3.0), ("AE", 0.0), ("DAE", dae_minus_ae)):
                rows.append({"case_id": f"C{i}", "method": method, "psnr": 30 + 0.1 * i + d + 0.01 * (i % 3), "ssim": 0.9 + 0.001 * d + 0.0001 * (i % 2)})
        return pd.DataFrame(rows)

    up = [c for c in table1.claims(table(+1.0)) if "improves the AE" in c][0]
    down = [c for c in table1.claims(table(-1.0)) if "improves the AE" in c][0]
    assert "improves the AE: holds here (DAE vs AE" in up and "better on 8/8" in up
    assert "improves the AE: is contradicted here" in down and "better on 0/8" in down
    best = [c for c in table1.claims(table(+1.0)) if "best variant" in c][0]
    assert "highest mean PSNR: DAE" in best
    beat = [c for c in table1.claims(table(-1.0)) if "beats doing nothing" in c][0]
    assert "holds here" in beat  # both AE and DAE (30.x, 29.x) beat the identity (27.x)


def test_with_several_seeds_the_seed_is_the_unit_of_summary_and_claims():
    from dae_lib.reporting.evaluate import summarize

    rows = []
    seed_effect = {0: 1.0, 1: 0.2, 2: 0.6}  # DAE - AE per seed: varies by seed, same sign
    for seed, eff in seed_effect.items():
        for i in range(6):
            for method, d in ((IDENTITY, -3.0), ("AE", 0.0), ("DAE", eff + 0.01 * i)):
                rows.append({"case_id": f"C{i}", "seed": seed, "method": method, "psnr": 30 + i + d, "ssim": 0.9 + 0.01 * d})
    df = pd.DataFrame(rows)
    r = table1.paired_difference(df, "DAE", "AE", "psnr")
    per_seed = pd.Series([eff + 0.025 for eff in seed_effect.values()])  # mean over i of 0.01 * i = 0.025
    assert r["unit"] == "seeds" and r["n"] == 3 and r["wins"] == 3
    assert r["mean"] == pytest.approx(per_seed.mean())
    assert r["half"] == pytest.approx(t95(2) * per_seed.std(ddof=1) / 3**0.5)
    s = summarize(df)
    assert s.loc["DAE", "n_seeds"] == 3 and s.loc["DAE", "n"] == 6
    assert s.loc["DAE", "psnr_std"] == pytest.approx(per_seed.std(ddof=1))  # sd over seeds, not over images
    claim = [c for c in table1.claims(df) if "improves the AE" in c][0]
    assert "better on 3/3 seeds" in claim
    one = df[df["seed"] == 0]
    assert table1.paired_difference(one, "DAE", "AE", "psnr")["unit"] == "images"


def test_notebook_table_and_gain_chart_show_ours_beside_the_paper(tmp_path):
    from dae_lib.reporting import figures
    from dae_lib.reporting.evaluate import summarize

    rows = []
    for i in range(5):
        for method, d in ((IDENTITY, 0.0), ("AE", 2.0), ("R-AE", 6.0)):
            rows.append({"case_id": f"C{i}", "method": method, "psnr": 30 + d + 0.1 * i, "bsr": d / 10, "rmae": 0.01, "ssim": 0.9})
    df = pd.DataFrame(rows)
    md = table1.summary_markdown(summarize(df))
    assert "| AE | 0.2000 +- 0.0000 | 0.0100 +- 0.0000 | 32.20 +- 0.16 | 0.9000 +- 0.0000 | 0.7500 | 0.0309 | 25.90 | 0.9350 |" in md
    assert "| R-AE |" in md and md.count("n/a") >= 8  # no paper values for identity and R-AE
    fig = figures.gain_chart(df, path=tmp_path / "gains.png", footer="data test | profile smoke | 1 seed (0) | commit x")
    psnr_ax = fig.axes[0]
    ours = psnr_ax.lines[0].get_xdata() if psnr_ax.lines else None
    assert (tmp_path / "gains.png").stat().st_size > 5000
    marks = [l for l in psnr_ax.lines if l.get_marker() == "x"]
    assert marks and marks[0].get_xdata()[0] == pytest.approx(-10 * np.log10(1 - 0.75))  # the paper's AE: BSR 0.75
    assert ours is not None


def _csv_block(data: str, profile: str, n_seeds: int, psnr: dict, bsr: dict) -> pd.DataFrame:
    """A table1.csv block of the methods in ``psnr`` (their mean PSNR and BSR), trained with ``n_seeds`` seeds."""
    rows = []
    for method in psnr:
        row = {"data": data, "profile": profile, "method": method, "n_test": 10, "n_seeds": n_seeds, "seed": 0, "epochs": 2,
               "device": "cpu", "commit": "abcdef1234", "data_source": data, "utc": "2026-12-07T00:00:00+00:00",
               "train_seconds": None if method == IDENTITY else 5.0}  # fmt: skip
        for m in metrics.registered(metrics.TABLE1):
            row[f"{m.name}_mean"], row[f"{m.name}_std"] = {"psnr": psnr[method], "bsr": bsr[method]}.get(m.name, 0.5), 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_one_seed_block_labels_its_verdicts_and_points_to_the_seed_as_unit_block():
    four = ["AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM"]
    phantom = _csv_block("phantom", "smoke", 1, {IDENTITY: 30.0, **dict.fromkeys(four, 33.0)}, {IDENTITY: 0.0, **dict.fromkeys(four, 0.5)})
    real = _csv_block("bse-jsrt-512", "quick", 3, {IDENTITY: 37.0, **dict.fromkeys(four, 34.0)}, {IDENTITY: 0.0, **dict.fromkeys(four, -1.0)})
    table = pd.concat([phantom, real], ignore_index=True)
    claim = ["- The MS-SSIM loss improves the plain AE: holds here (...)."]
    md = table1.render_markdown(table, {"phantom/smoke": claim, "bse-jsrt-512/quick": claim})
    one, three = md.split("## phantom, profile smoke")[1].split("## bse-jsrt-512, profile quick")
    assert table1.ONE_SEED in one and "bse-jsrt-512, profile quick (3 seeds)" in one
    assert table1.ONE_SEED not in three and "3 seeds" in three
    assert table1.seed_note(3) == "" and "SEEDS=3" in table1.seed_note(1)


def test_against_identity_says_which_blocks_beat_doing_nothing():
    four = ["AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM"]
    phantom = _csv_block("phantom", "quick", 1, {IDENTITY: 30.0, **dict.fromkeys(four, 33.0)}, {IDENTITY: 0.0, **dict.fromkeys(four, 0.5)})
    real = _csv_block("bse-jsrt-512", "quick", 3, {IDENTITY: 37.0, **dict.fromkeys(four, 34.123)}, {IDENTITY: 0.0, **dict.fromkeys(four, -1.0)})
    rows = table1.against_identity(pd.concat([phantom, real], ignore_index=True)).set_index("data")
    assert rows.loc["phantom", "beat"] == 4 and rows.loc["bse-jsrt-512", "beat"] == 0
    assert rows.loc["bse-jsrt-512", "bsr_negative"] == 4 and rows.loc["bse-jsrt-512", "n_seeds"] == 3
    md = table1.against_identity_markdown(pd.concat([phantom, real], ignore_index=True))
    assert "| bse-jsrt-512, quick | 37.00 | 34.12 / -1.0000 |" in md  # 2-decimal dB, as Table 1
    assert "3 seeds, commit abcdef1): 0 of 4 beat" in md and "one seed, commit abcdef1): 4 of 4 beat" in md
