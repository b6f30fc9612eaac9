"""Scoring on a user's own pairs (score.py, registration.py): generated pairs with known answers."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from dae_lib.scoring import registration, score
from dae_lib.cli import main as cli_main
from dae_lib.errors import InputError
from dae_lib.phantom import chest_phantom, gaussian_blur
from helpers import tiny_run_folder
from test_suppress import _dicom


@pytest.fixture(scope="module")
def phantom():
    x, s, _ = chest_phantom(384, seed=4)
    return x, s


def _expected(k, d):
    """What register reports for S' = warp(S, k, d): X's pixel p appears in S' at c + (p - c - d) / k."""
    return 1 / k, (-d[0] / k, -d[1] / k)


@pytest.mark.parametrize(
    "k, d, render",
    [(1.0, (3.3, -2.7), "gamma"), (1.012, (1.5, 4.0), "affine"), (0.99, (-5.0, 0.5), "edges"), (1.004, (0.0, 0.0), "gamma")],
)
def test_registration_finds_known_scale_and_shift_whatever_the_rendering(phantom, k, d, render):
    x, s = phantom
    rendered = {"gamma": s**0.6, "affine": 0.25 + 0.5 * s, "edges": (s + 1.5 * (s - gaussian_blur(s.double(), 3).float())).clamp(0, 1)}[render]
    moved = torch.nan_to_num(registration.warp(rendered, k, d), nan=0.0)
    reg = registration.register(x, moved)
    scale, shift = _expected(k, d)
    assert abs(reg.scale / scale - 1) < 0.002, (reg.scale, scale)
    assert max(abs(a - b) for a, b in zip(reg.shift, shift)) < 0.5, (reg.shift, shift)
    aligned = registration.align(moved, reg)
    inner = (slice(40, -40), slice(40, -40))
    assert float((aligned[inner] - rendered[inner]).abs().mean()) < 0.6 * float((moved[inner] - rendered[inner]).abs().mean())  # what is left: two bilinear resamplings


def test_fitted_scores_do_not_change_with_an_affine_change_of_s(phantom):
    x, s = phantom
    s_hat = (x - 0.6 * (x - s)).clamp(0, 1)
    plain = score.pair_metrics(x, s, s_hat)
    other = score.pair_metrics(x, 0.2 + 0.55 * s, s_hat)
    for key in ("psnr_fit_identity", "psnr_fit_model", "bsr_fit_model"):
        assert other[key] == pytest.approx(plain[key], abs=1e-6), key
    assert abs(other["psnr_identity"] - plain["psnr_identity"]) > 3  # raw PSNR measures the rendering
    assert plain["bsr_model"] == pytest.approx(1 - 0.4**2, abs=1e-6)


def _png(path, a, bits=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    top = 255 if bits == 8 else 65535
    Image.fromarray(np.round(np.asarray(a) * top).astype(np.uint8 if bits == 8 else np.uint16)).save(path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("run") / "ae", variant="r_ae", image_size=64)


def _pairs(root, n=3, shift=(0.0, 0.0), k=1.0):
    for i in range(n):
        x, s, _ = chest_phantom(256, seed=10 + i)
        moved = torch.nan_to_num(registration.warp(s**0.8, k, shift), nan=0.0)
        _png(root / "X" / f"case{i}.png", x)
        _png(root / "S" / f"case{i}.png", moved)
    return root / "X", root / "S"


def test_score_writes_its_table_summary_and_montages_only_to_out(tmp_path, weights):
    xd, sd = _pairs(tmp_path / "in", shift=(2.0, -3.0))
    before = sorted(p.relative_to(tmp_path / "in") for p in (tmp_path / "in").rglob("*"))
    out = tmp_path / "out"
    assert cli_main(["score", str(xd), str(sd), "--out", str(out), "--weights", str(weights), "--register"]) == 0
    assert sorted(p.relative_to(tmp_path / "in") for p in (tmp_path / "in").rglob("*")) == before  # nothing beside the inputs
    rows = list(csv.DictReader(open(out / score.SCORES_CSV)))
    assert [r["case"] for r in rows] == ["case0", "case1", "case2"]
    for r in rows:
        assert r["x_polarity"] == "clinical" and r["registered"] == "True"
        assert abs(float(r["shift_rows"]) + 2.0) < 0.5 and abs(float(r["shift_cols"]) - 3.0) < 0.5
    assert sorted(p.name for p in (out / score.MONTAGE_DIR).iterdir()) == ["case0.png", "case1.png", "case2.png"]
    md = (out / score.SCORES_MD).read_text()
    assert "model - doing nothing (95 % interval)" in md and "fitted PSNR" in md
    # Run again into the same folder: refused, nothing replaced.
    stamp = (out / score.SCORES_CSV).stat().st_mtime_ns
    assert cli_main(["score", str(xd), str(sd), "--out", str(out), "--weights", str(weights)]) == 2
    assert (out / score.SCORES_CSV).stat().st_mtime_ns == stamp


def test_a_pair_with_no_match_and_an_unpaired_file_are_named_and_skipped(tmp_path, weights, capsys):
    xd, sd = _pairs(tmp_path / "in", n=2)
    _png(sd / "case1.png", chest_phantom(256, seed=41)[1])  # another patient's soft tissue
    _png(xd / "lonely.png", chest_phantom(256, seed=30)[0])
    code = cli_main(["score", str(xd), str(sd), "--out", str(tmp_path / "out"), "--weights", str(weights)])
    err = capsys.readouterr().err
    assert code == 2
    assert "case1.png" in err and "do not match" in err and "lonely.png" in err
    rows = list(csv.DictReader(open(tmp_path / "out" / score.SCORES_CSV)))
    assert [r["case"] for r in rows] == ["case0"]


def test_a_16_bit_radiograph_inverted_with_an_8_bit_soft_tissue_is_scored(tmp_path, weights):
    x, s, _ = chest_phantom(256, seed=12)
    _png(tmp_path / "X" / "p.png", 1 - x, bits=16)  # stored inverted, 16 bits
    _png(tmp_path / "S" / "p.png", s)
    df, failed = score.score_folder(tmp_path / "X", tmp_path / "S", tmp_path / "out", weights=str(weights), log=lambda *a: None)
    assert not failed and df.loc[0, "x_polarity"] == "inverted" and df.loc[0, "s_polarity"] == "clinical"
    assert df.loc[0, "psnr_fit_identity"] > 20  # the pair read the right way round


def test_a_dicom_soft_tissue_image_is_read_with_its_header_polarity(tmp_path, weights):
    x, s, _ = chest_phantom(256, seed=13)
    _png(tmp_path / "X" / "d.png", x)
    _dicom(tmp_path / "S" / "d.dcm", (1 - s).numpy(), monochrome1=True)  # MONOCHROME1: stored inverted
    df, failed = score.score_folder(tmp_path / "X", tmp_path / "S", tmp_path / "out", weights=str(weights), log=lambda *a: None)
    assert not failed and df.loc[0, "s_polarity"] == "inverted" and "MONOCHROME1" in df.loc[0, "polarity_evidence"]
    assert df.loc[0, "psnr_fit_identity"] > 20


def test_out_inside_an_input_folder_is_refused_before_anything_is_written(tmp_path, weights, capsys):
    xd, sd = _pairs(tmp_path / "in", n=1)
    code = cli_main(["score", str(xd), str(sd), "--out", str(xd / "scores"), "--weights", str(weights)])
    err = capsys.readouterr().err
    assert code == 2 and "input folder" in err and "--allow-out-in-input" not in err  # a flag score does not have
    assert not (xd / "scores").exists()
    assert cli_main(["score", str(xd), str(sd), "--out", str(tmp_path / "o"), "--weights", str(weights), "--tolerance", "-1"]) == 2
    assert "--tolerance must be 0 or more" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_phantom_site_pairs_are_scored_with_their_drawn_misalignment_found(tmp_path, weights):
    from dae_lib.scoring.site_phantom import write_site_pairs

    drawn = write_site_pairs(tmp_path / "site", n=2, size=256, seed=1)
    df, failed = score.score_folder(tmp_path / "site", None, tmp_path / "out", weights=str(weights), settings=score.ScoreSettings(register=True), log=lambda *a: None)
    assert not failed and list(df["case"]) == sorted(drawn)
    for row in df.itertuples():
        k, d = drawn[row.case]
        assert abs(row.scale * k - 1) < 0.002 and abs(row.shift_rows + d[0] / k) < 0.5 and abs(row.shift_cols + d[1] / k) < 0.5
        assert row.registered and row.psnr_fit_identity > row.psnr_identity  # the grey curve differs: the fit recovers most of it


def test_scores_inside_a_lung_mask_are_those_of_its_pixels_only(phantom):
    x, s = phantom
    region = torch.zeros_like(x)
    region[80:300, 60:170] = 1
    s_hat = torch.where(region > 0, s + 0.5 * (x - s), x)  # half the bone removed inside, none outside
    inside = score.pair_metrics(x, s, s_hat, region)
    assert inside["bsr_model"] == pytest.approx(0.75, abs=1e-6)  # 1 - 0.5^2, whatever happens outside
    assert score.pair_metrics(x, s, s_hat)["bsr_model"] < 0.75
    r = region.bool()
    mse = float(((x[r].double() - s[r].double()) ** 2).mean())
    assert inside["psnr_identity"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-6)
    assert score.pair_metrics(x, 0.3 + 0.5 * s, s_hat, region)["psnr_fit_model"] == pytest.approx(inside["psnr_fit_model"], abs=1e-6)


def test_score_with_lung_masks_names_a_pair_without_one(tmp_path, weights, capsys):
    xd, sd = _pairs(tmp_path / "in", n=2)
    mask = np.zeros((128, 128))  # drawn at another size than X (256 px): resized onto X's grid
    mask[30:100, 15:55] = 1
    _png(tmp_path / "lungs" / "CASE0.png", mask)
    code = cli_main(["score", str(xd), str(sd), "--out", str(tmp_path / "out"), "--weights", str(weights), "--lungs", str(tmp_path / "lungs")])
    assert code == 2 and "case1.png: no lung mask of that name" in capsys.readouterr().err
    row = next(csv.DictReader(open(tmp_path / "out" / score.SCORES_CSV)))
    assert row["case"] == "case0" and row["lung_file"].endswith("CASE0.png")
    assert float(row["lung_fraction"]) == pytest.approx(140 * 80 / (224 * 224), abs=0.01)  # the overlap minus 16 px
    assert "inside the lung-field masks of lungs/" in (tmp_path / "out" / score.SCORES_MD).read_text()


def test_the_monotone_fit_sees_through_a_gamma_that_fools_the_affine_fit(phantom):
    """S rendered by a grey curve (0.15 + 0.7 S^0.7, as site_phantom draws it): a model that returns S
    exactly keeps an affine-fitted BSR near 0 (the curve's residual dwarfs the bone), its monotone-fitted
    BSR is 1; half the bone removed reads about 0.75 (1 - 0.5^2) monotone-fitted, as on the S as drawn."""
    x, s = phantom
    curved = 0.15 + 0.7 * s**0.7
    perfect = score.pair_metrics(x, curved, s)
    assert perfect["bsr_fit_model"] < 0.05 and perfect["bsr_mono_model"] > 0.99
    half = s + 0.5 * (x - s)
    assert score.pair_metrics(x, curved, half)["bsr_mono_model"] == pytest.approx(score.pair_metrics(x, s, half)["bsr_mono_model"], abs=0.03)
    assert score.pair_metrics(x, s, half)["bsr_mono_model"] == pytest.approx(0.75, abs=0.03)
    assert score.pair_metrics(x, curved, x)["bsr_mono_model"] == 0  # doing nothing against itself


def test_the_monotone_fit_is_the_isotonic_regression_on_a_small_case():
    c = torch.tensor([0.0, 1.0, 2.0, 3.0])
    t = torch.tensor([0.0, 2.0, 1.0, 3.0])  # one violation: 2, 1 pooled to 1.5
    assert score.monotone_fit(c, t, bins=4).tolist() == pytest.approx([0.0, 1.5, 1.5, 3.0])
    assert score.monotone_fit(c, -t, bins=4).tolist() == pytest.approx([0.0, -1.5, -1.5, -3.0])  # decreasing when anti-correlated


def test_lungs_must_be_a_folder_and_says_what_it_got_instead(tmp_path):
    with pytest.raises(InputError, match=r"no such folder \(--lungs takes a folder of lung masks"):
        score.attach_lungs([], tmp_path / "missing")
    a_file = tmp_path / "mask.png"
    a_file.write_bytes(b"x")
    with pytest.raises(InputError, match=r"mask.png: a file, not a folder of masks"):
        score.attach_lungs([], a_file)


def test_the_sharpness_matched_baseline_takes_the_gain_a_blur_earns():
    """Soft-tissue images smoother and less noisy than their radiographs (issue 39's source B):
    there a blur of X "gains" over doing nothing without removing any bone. The sharpness-matched
    baseline finds the blur S has and takes that gain: a model that only blurs gains nothing over
    it, while removing the bone still does."""
    x, s, _ = chest_phantom(256, seed=3)
    noise = 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    x_noisy = (x + noise).clamp(0, 1)  # the radiograph: sharp and noisy
    s_smooth = gaussian_blur(s.double(), 2.0).float()  # its soft tissue: bone removed, smoothed, no noise
    sigma, baseline = score.sharpness_matched_identity(x_noisy, s_smooth)
    assert 1.0 <= sigma <= 3.0  # the blur S has (2 px), found from the grid
    mono = lambda c: float(((score.monotone_fit(c.double(), s_smooth.double()) - s_smooth.double()) ** 2).mean())  # noqa: E731
    blur_only = gaussian_blur(x_noisy.double(), 2.0).float()  # a "model" that only blurs
    assert mono(blur_only) < 0.8 * mono(x_noisy)  # against plain doing nothing a blur looks like a gain
    assert mono(blur_only) >= 0.99 * mono(baseline)  # against the matched baseline it gains nothing
    removes_bone = gaussian_blur((x_noisy - (x - s)).double(), 2.0).float()  # the bone removed, then blurred like S
    assert mono(removes_bone) < 0.5 * mono(baseline)  # removing the bone still gains over the best blur
    assert score.sharpness_matched_identity(x, x)[0] == 0.0  # where no blur helps, the baseline is doing nothing itself
    # (on a sharp S a blur still earns something: it softens the ribs' edges, part of the bone's energy;
    # that is the share of a gain the baseline takes from every model)
