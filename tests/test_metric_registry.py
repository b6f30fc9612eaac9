"""metrics.REGISTRY: each metric's name, header, format and direction in one place, and every table
taking its columns from there (a stand-in metric, registered here only, reaches them all)."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dae_lib.reporting import evaluate, table1

from dae_lib import metrics

from dae_lib.studies import msssim_forms, release
from dae_lib.reporting.evaluate import IDENTITY, format_table, summarize
from dae_lib.runs import DEFAULT_RELEASE
from dae_lib.train import fit
from helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]


def _mean_value(pred, target, radiograph, mask):
    """The stand-in metric: the mean of the estimate, per image."""
    return pred.double().mean(dim=(1, 2, 3))


STAND_IN = metrics.Metric("mean_value", "Mean value", ".3f", True, _mean_value, unit="a.u.")


@pytest.fixture
def stand_in(monkeypatch):
    """STAND_IN registered after Table 1's metrics for one test (monkeypatch restores the registry)."""
    monkeypatch.setattr(metrics, "REGISTRY", (*metrics.REGISTRY, STAND_IN))
    return STAND_IN


def test_the_registry_as_shipped():
    r = {m.name: m for m in metrics.REGISTRY}
    assert list(r) == ["bsr", "rmae", "psnr", "ssim", "psnr_bone", "mae_bone", "psnr_outside", "mae_outside", "dice"]
    assert [m.name for m in metrics.registered(metrics.TABLE1)] == list(metrics.METRICS) == ["bsr", "rmae", "psnr", "ssim"]
    assert [m.label for m in metrics.registered(metrics.TABLE1)] == ["BSR", "RMAE", "PSNR (dB)", "SSIM"]
    assert [m.name for m in metrics.registered(metrics.HEAD)] == ["dice"]
    assert [m.name for m in metrics.REGISTRY if not m.higher_is_better] == ["rmae", "mae_bone", "mae_outside"]
    assert r["psnr"].format(36.271) == "36.27" and r["ssim"].mean_sd(0.97126, 0.0012) == "0.9713 +- 0.0012"
    assert r["rmae"].format(None) == "n/a"
    assert r["rmae"].better(0.01, 0.02) and not r["psnr"].better(30.0, 31.0)
    assert "mean_value" not in r  # the stand-in below never leaks out of its test


def test_an_unknown_metric_is_named():
    with pytest.raises(KeyError, match="registered"):
        metrics.by_name("psnr_db")


def test_registry_functions_give_the_metric_functions_values(tiny_data):
    pred = (tiny_data.s + 0.5 * (tiny_data.x - tiny_data.s)).clamp(0, 1)
    rows = evaluate.metric_rows("half", tiny_data, pred)
    assert rows["psnr"].tolist() == metrics.psnr(pred, tiny_data.s).tolist()
    assert rows["bsr"].tolist() == metrics.bsr(pred, tiny_data.s, tiny_data.x).tolist()
    region = metrics.region_metrics(pred, tiny_data.s, tiny_data.m)
    assert rows["mae_outside"].tolist() == region["mae_outside"].tolist()


def test_the_paper_column_is_read_by_metric_name(stand_in, tmp_path, monkeypatch):
    assert table1.paper_row("DAE + MS-SSIM") == {"bsr": 0.91, "rmae": 0.0091, "psnr": 30.8, "ssim": 0.970, "mean_value": None}
    assert set(table1.paper_row(IDENTITY).values()) == {None}
    untranscribed = tmp_path / "paper.yaml"
    untranscribed.write_text("source: x\ntranscribed: false\nvalues:\n  AE: {bsr: 0.5}\n")
    monkeypatch.setattr(table1, "PAPER_FILE", untranscribed)
    assert set(table1.paper_row("AE").values()) == {None}


def _trained_run(tiny_data, folder):
    """A one-epoch AE run, evaluated before the stand-in exists (its test_metrics.csv lacks it)."""
    fit(tiny_config(variant="ae", epochs=1), folder, data=tiny_data, progress=False)
    assert "mean_value" not in evaluate.evaluate_run(folder, tiny_data)
    return folder


def test_a_registered_metric_reaches_the_evaluate_printout_and_table1(tiny_data, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    _trained_run(tiny_data, runs / "ae")
    monkeypatch.setattr(metrics, "REGISTRY", (*metrics.REGISTRY, STAND_IN))
    per_image, _ = table1.collect(runs, tiny_data)  # the cached metrics lack it: evaluated again
    assert "mean_value" in pd.read_csv(runs / "ae" / "test_metrics.csv")
    ident = per_image[per_image["method"] == IDENTITY]
    test = tiny_data.subset([tiny_data.ids.index(c) for c in ident["case_id"]])
    assert ident["mean_value"].to_numpy() == pytest.approx(test.x.double().mean(dim=(1, 2, 3)).numpy())

    summary = summarize(per_image)
    mean, sd = summary.loc[IDENTITY, "mean_value_mean"], summary.loc[IDENTITY, "mean_value_std"]
    cell = f"{mean:.3f} +- {sd:.3f}"
    printout = format_table(summary).splitlines()
    assert printout[0].endswith("SSIM" + "Mean value (a.u.)".rjust(20))
    assert printout[1].endswith(cell.rjust(20))

    csv_path, md_path = table1.write_table1(summary, tmp_path / "results", "phantom", "smoke", {}, table1.claims(per_image))
    csv = pd.read_csv(csv_path)
    assert {"mean_value_mean", "mean_value_std", "paper_mean_value"} <= set(csv.columns)
    assert csv.loc[csv["method"] == IDENTITY, "mean_value_mean"].item() == pytest.approx(mean)
    assert csv["paper_mean_value"].isna().all()
    md = md_path.read_text()
    assert "| method | BSR | RMAE | PSNR (dB) | SSIM | Mean value (a.u.) | paper BSR | paper RMAE | paper PSNR | paper SSIM | paper Mean value | train s |" in md
    assert f"| {IDENTITY} | " in md and f" | {cell} | " in md
    assert "| paper row | BSR | RMAE | PSNR (dB) | SSIM | Mean value (a.u.) | implied identity PSNR (dB) |" in md
    notebook = table1.summary_markdown(summary)
    assert "| SSIM | Mean value | paper BSR |" in notebook and f" | {cell} | " in notebook


def test_a_registered_metric_reaches_the_model_card_and_the_msssim_table(stand_in):
    card = json.loads((REPO / "dae_lib" / "released" / DEFAULT_RELEASE / "model_card.json").read_text())  # v1: before mean_value
    md = release.model_card_markdown(card)  # a card written before the metric existed: n/a
    assert "| method | BSR | RMAE | PSNR (dB) | SSIM | Mean value (a.u.) |\n| --- | --- | --- | --- | --- | --- |" in md
    assert "| n/a +- n/a |" in md
    summary = pd.DataFrame({f"{m.name}_{s}": [0.5] for m in metrics.registered(metrics.TABLE1) for s in ("mean", "std")}, index=["AE"])
    assert release.card_metrics(summary, ["AE"])["AE"]["mean_value"] == {"mean": 0.5, "sd": 0.5}
    forms = msssim_forms.markdown(pd.read_csv(REPO / "results" / "msssim_forms.csv"))
    assert "| SSIM | Mean value (a.u.) | PSNR paper - wang (dB) |" in forms and "\n|" + "---|" * 9 + "\n" in forms


def test_a_lower_is_better_metric_turns_the_paired_difference(monkeypatch):
    lower = metrics.Metric("mean_value", "Mean value", ".3f", False, _mean_value)
    monkeypatch.setattr(metrics, "REGISTRY", (*metrics.REGISTRY, lower))
    df = pd.DataFrame({"case_id": ["a", "b", "a", "b"], "method": ["A", "A", "B", "B"], "mean_value": [1.0, 2.0, 0.5, 1.0]})
    d = table1.paired_difference(df, "B", "A", "mean_value")
    assert d["mean"] == pytest.approx(0.75) and d["wins"] == 2 and not math.isnan(d["half"])
