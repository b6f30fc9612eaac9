"""Table 1 metrics against independent references (scikit-image, NumPy) and the pitfalls list."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from dae_lib import metrics
from dae_lib.phantom import chest_phantom


@pytest.fixture(scope="module")
def pair():
    x, s, _ = chest_phantom(128, seed=5)
    g = torch.Generator().manual_seed(0)
    noisy = (s + 0.02 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    return x[None, None], s[None, None], noisy[None, None]


def _np(t):
    return t[0, 0].double().numpy()


def test_shapes_are_one_value_per_image(pair):
    x, s, p = pair
    batch = torch.cat([p, x, s])
    for name, v in metrics.all_metrics(batch, torch.cat([s] * 3), torch.cat([x] * 3)).items():
        assert v.shape == (3,), name


def test_psnr_matches_scikit_image(pair):
    x, s, p = pair
    for pred in (p, x):
        assert metrics.psnr(pred, s).item() == pytest.approx(sk_psnr(_np(s), _np(pred), data_range=1.0), abs=1e-5)


def test_ssim_matches_scikit_image_with_wang_2004_settings(pair):
    x, s, p = pair
    for pred in (p, x):
        ref = sk_ssim(_np(pred), _np(s), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert metrics.ssim(pred, s).item() == pytest.approx(ref, abs=1e-5)


def test_ssim_is_not_the_7x7_uniform_default(pair):
    _, s, p = pair
    default = sk_ssim(_np(p), _np(s), data_range=1.0)  # 7x7 uniform window, sample covariance
    assert abs(metrics.ssim(p, s).item() - default) > 1e-3


def test_bsr_is_one_for_perfect_and_zero_for_identity(pair):
    x, s, p = pair
    assert metrics.bsr(s, s, x).item() == pytest.approx(1.0)
    assert metrics.bsr(x, s, x).item() == pytest.approx(0.0, abs=1e-12)
    half = s + 0.5 * (x - s)  # half the bone left: residual energy 1/4
    assert metrics.bsr(half, s, x).item() == pytest.approx(0.75, abs=1e-6)


def test_rmae_formula(pair):
    x, s, p = pair
    ref = np.abs(_np(p) - _np(s)).sum() / np.abs(_np(s)).sum()
    assert metrics.rmae(p, s).item() == pytest.approx(ref, rel=1e-9)
    assert metrics.rmae(s, s).item() == 0


def test_data_range_is_fixed_not_inferred(pair):
    """Scaling both images by 1/2 quarters the MSE: +6.02 dB with data range 1 (inferred would give 0)."""
    _, s, p = pair
    assert metrics.psnr(p / 2, s / 2).item() - metrics.psnr(p, s).item() == pytest.approx(20 * np.log10(2), abs=1e-6)


def test_integer_images_are_rejected():
    """uint8 arithmetic wraps around (5 - 7 = 254): metrics refuse integer tensors outright."""
    a = torch.full((1, 1, 32, 32), 5, dtype=torch.uint8)
    b = torch.full((1, 1, 32, 32), 7, dtype=torch.uint8)
    with pytest.raises(TypeError, match="float"):
        metrics.psnr(a, b)


def test_shape_errors():
    with pytest.raises(ValueError, match="N, 1, H, W"):
        metrics.psnr(torch.rand(32, 32), torch.rand(32, 32))


def test_region_metrics_against_a_hand_count():
    from dae_lib.metrics import region_metrics

    t = torch.zeros(1, 1, 4, 4, dtype=torch.float32)
    p = t.clone()
    m = torch.zeros_like(t)
    m[..., :2, :] = 1  # 8 pixels in the bone mask
    p[..., 0, 0] = 0.1  # one error inside: MSE 0.01 / 8, MAE 0.1 / 8
    p[..., 3, :] = 0.2  # four errors outside: MSE 4 * 0.04 / 8, MAE 0.8 / 8
    r = {k: float(v) for k, v in region_metrics(p, t, m).items()}
    assert r["mae_bone"] == pytest.approx(0.1 / 8) and r["mae_outside"] == pytest.approx(0.8 / 8)
    assert r["psnr_bone"] == pytest.approx(10 * np.log10(8 / 0.01)) and r["psnr_outside"] == pytest.approx(10 * np.log10(8 / 0.16))
    empty = region_metrics(p, t, torch.zeros_like(t))
    assert torch.isnan(empty["psnr_bone"]).all() and torch.isfinite(empty["psnr_outside"]).all()


def test_dice_against_a_hand_count():
    from dae_lib.metrics import dice

    m = torch.zeros(2, 1, 4, 4)
    p = torch.zeros(2, 1, 4, 4)
    m[0, 0, :2] = 1  # 8 pixels
    p[0, 0, 1:3] = 1  # 8 pixels, 4 shared
    assert dice(p, m).tolist() == [pytest.approx(2 * 4 / 16), 1.0]  # the second: both empty


def test_region_ssim_is_scikit_images_map_averaged_over_the_region(pair):
    x, s, p = pair
    _, full = sk_ssim(_np(p), _np(s), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, full=True)
    region = torch.zeros_like(s)
    region[..., 20:70, 30:110] = 1
    assert metrics.region_ssim(p, s, region).item() == pytest.approx(full[20:70, 30:110].mean(), abs=1e-5)
    assert metrics.region_ssim(p, s, torch.ones_like(s)).item() == pytest.approx(metrics.ssim(p, s).item(), abs=1e-12)
