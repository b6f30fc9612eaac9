"""The measures the exercises use (reporting/anatomy.py, artifacts.py, regime.py, metrics.region_bsr,
pipeline.train_changed), each against an independent reference or a case whose answer is known."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dae_lib import metrics
from dae_lib.phantom import chest_phantom
from dae_lib.pipeline import EXERCISE_RUNS, notebook_setup, train_changed
from dae_lib.reporting import anatomy, artifacts, regime


@pytest.fixture(scope="module")
def pair():
    x, s, m = chest_phantom(128, seed=2)
    return x[None, None], s[None, None], m[None, None]


def test_region_bsr_matches_numpy_and_the_whole_image(pair):
    x, s, _ = pair
    g = torch.Generator().manual_seed(0)
    s_hat = (s + 0.5 * (x - s) + 0.01 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    region = torch.zeros_like(s)
    region[..., :, :64] = 1
    xn, sn, hn = (t[0, 0, :, :64].double().numpy() for t in (x, s, s_hat))
    ref = 1 - ((hn - sn) ** 2).sum() / ((xn - sn) ** 2).sum()
    assert metrics.region_bsr(s_hat, s, x, region).item() == pytest.approx(ref, abs=1e-12)
    assert metrics.region_bsr(s_hat, s, x, torch.ones_like(s)).item() == pytest.approx(metrics.bsr(s_hat, s, x).item(), abs=1e-12)
    assert torch.isnan(metrics.region_bsr(s_hat, s, s, region))  # no bone energy: undefined, not 1


def test_lung_fields_are_the_pixels_darker_than_the_median(pair):
    _, s, _ = pair
    lungs = anatomy.lung_fields(torch.cat([s, s.flip(-1)]))
    assert lungs.shape == (2, 1, 128, 128)
    assert float(lungs[0].mean()) == pytest.approx(0.5, abs=0.02)
    assert torch.equal(lungs[1], lungs[0].flip(-1))
    values = np.sort(s[0, 0].numpy().ravel())
    assert torch.equal(lungs[0, 0].bool(), s[0, 0] < values[(values.size - 1) // 2])  # the lower median


def test_shares_of_removed_bone_and_of_error(pair):
    x, s, m = pair
    lungs = anatomy.lung_fields(s)
    only_lungs = x - (x - s) * lungs  # the bone removed over the lungs only
    assert anatomy.removed_bone_in_lungs(x, only_lungs, lungs).item() == pytest.approx(1.0)
    assert anatomy.removed_bone_in_lungs(x, x - (x - s) * (1 - lungs), lungs).item() == pytest.approx(0.0)
    by_region = anatomy.bone_suppressed_by_region(x, s, only_lungs, lungs)
    assert by_region["lungs"].item() == pytest.approx(1.0) and by_region["outside the lungs"].item() == pytest.approx(0.0)
    # Doing nothing errs only where the bone is; a constant offset errs everywhere alike.
    strict = (x - s > 0).to(s.dtype)
    assert anatomy.error_outside_mask(x, s, strict).item() == pytest.approx(0.0)
    assert anatomy.error_outside_mask((s + 0.05).clamp(0, 1), s, m).item() == pytest.approx(1 - float(m.mean()), abs=0.05)


def test_worse_than_identity_counts_the_pixels_where_doing_nothing_is_closer(pair):
    x, s, _ = pair
    assert anatomy.worse_than_identity(x, s, x).item() == 0.0
    assert anatomy.worse_than_identity(s, s, x).item() == 0.0
    offset = (s + 0.01).clamp(max=1)
    ref = float(((offset - s).abs() > (x - s).abs()).double().mean())
    assert anatomy.worse_than_identity(offset, s, x).item() == pytest.approx(ref)
    assert 0.3 < ref < 1  # the pixels without bone (X = S there) all lose to doing nothing


def test_a_checkerboard_is_measured_with_its_amplitude_and_smooth_errors_are_not(pair):
    _, s, _ = pair
    board = 0.02 * (torch.arange(128)[:, None] + torch.arange(128)[None, :]).remainder(2).mul(2).sub(1).to(s.dtype)
    assert artifacts.periodic_rms(s + board, s).item() == pytest.approx(0.02, rel=1e-6)
    assert artifacts.periodic_share(s + board, s).item() == pytest.approx(1.0, rel=1e-6)
    g = torch.Generator().manual_seed(1)
    smooth = F.avg_pool2d(torch.randn(1, 1, 128, 128, generator=g), 9, stride=1, padding=4) * 0.05
    assert artifacts.periodic_share(s + smooth, s).item() < 0.02


def test_strided_transposed_convolution_leaves_a_grid_and_bilinear_upsampling_none():
    g = torch.Generator().manual_seed(0)
    f = F.avg_pool2d(torch.rand(1, 1, 66, 66, generator=g), 3, stride=1)  # smooth features, 64 x 64
    deconv = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    torch.nn.init.constant_(deconv.weight, 1.0)
    with torch.no_grad():
        grid = deconv(f)
    bilinear = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)
    zero = torch.zeros_like(grid)
    assert artifacts.periodic_share(grid / grid.max(), zero).item() > 0.01
    assert artifacts.periodic_share(bilinear, zero).item() < 1e-3 * artifacts.periodic_share(grid / grid.max(), zero).item()


def test_regime_preprocessings_do_what_they_say(pair):
    x, s, _ = pair
    s_hat = s + 0.3 * (x - s)
    fx, fs, fh = regime.zscore(x, s, s_hat)
    sd = x.std()
    assert torch.allclose(fs - fx, (s - x) / sd, atol=1e-6)
    _, moved, _ = regime.shift_s(x, s, s_hat, fraction=4 / 128)
    assert torch.equal(moved[..., 4:], s[..., :-4]) and torch.equal(moved[..., :4], s[..., :1].expand(-1, -1, -1, 4))
    _, bright, _ = regime.gamma_on_s(x, s, s_hat, gamma=0.8)
    assert torch.allclose(bright, s**0.8)
    table = regime.effects(x, s, s_hat).set_index("preprocessing")
    none, z = table.loc["none"], table.loc["z-score (all three, by X)"]
    # BSR is a ratio of errors of the same images: an affine change of all three leaves it; PSNR on range 1 drops by 20 log10(1/sd).
    assert z["bsr"] == pytest.approx(none["bsr"], abs=1e-6)
    assert none["psnr"] - z["psnr"] == pytest.approx(-20 * np.log10(float(sd)), abs=1e-3)
    assert none["bsr"] == pytest.approx(1 - 0.3**2, abs=1e-6) and none["gain_db"] == pytest.approx(-20 * np.log10(0.3), abs=1e-4)
    # A change to S alone adds the same error to the estimate and to doing nothing: BSR falls.
    assert table.loc["S shifted by 1/32 of the width", "bsr"] < none["bsr"] - 0.1


def test_train_changed_trains_apart_from_the_table_runs_and_ls_0_is_the_ae(tmp_path):
    setup = notebook_setup("smoke", "phantom", str(tmp_path), False)
    tiny = dict(image_size=64, n_phantom=12, epochs=1, batch_size=4)
    ae, ae_metrics = train_changed(setup, "ae", log=lambda *a: None, **tiny)
    dae0, dae0_metrics = train_changed(setup, "dae", log=lambda *a: None, ls=0.0, **tiny)
    assert EXERCISE_RUNS in dae0.out_dir.parts and "scratch" in dae0.out_dir.parts
    assert not (tmp_path / "runs").exists()  # never where Table 1 looks
    assert dae0.history[-1]["train_loss"] == ae.history[-1]["train_loss"]  # L_seg weighted 0 changes nothing the AE has
    assert np.array_equal(ae_metrics["psnr"].to_numpy(), dae0_metrics["psnr"].to_numpy())
    again, _ = train_changed(setup, "dae", log=lambda *a: None, ls=0.0, **tiny)
    assert again.out_dir == dae0.out_dir and again.history == dae0.history  # a finished run is reused
