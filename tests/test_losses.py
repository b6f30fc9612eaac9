"""The loss, eq. (2)-(7)."""
import pytest
import torch

from dae_lib import losses
from dae_lib.config import Config
from dae_lib.msssim import BETAS as MS_SSIM_BETAS
from dae_lib.msssim import ms_ssim
from dae_lib.phantom import chest_phantom


def test_betas_are_wang_2003_not_the_typo():
    assert MS_SSIM_BETAS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert sum(MS_SSIM_BETAS) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("size", [176, 192, 256])
def test_ms_ssim_never_nan_even_for_anticorrelated_images(size):
    x, s, _ = chest_phantom(size, seed=1)
    a, b = s[None, None], (1 - s)[None, None]
    for p, t in ((a, b), (torch.zeros_like(a), a), (a, a)):
        v = ms_ssim(p, t)
        assert torch.isfinite(v).all()
    assert ms_ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)


def test_ms_ssim_decreases_with_noise():
    _, s, _ = chest_phantom(192, seed=2)
    s = s[None, None]
    g = torch.Generator().manual_seed(0)
    vals = [ms_ssim((s + sd * torch.randn(s.shape, generator=g)).clamp(0, 1), s).item() for sd in (0.01, 0.05, 0.2)]
    assert vals[0] > vals[1] > vals[2]


def test_ms_ssim_too_small_is_a_clear_config_error():
    with pytest.raises(ValueError, match="176"):
        Config(variant="ae_msssim", image_size=128)
    Config(variant="ae", image_size=64)  # plain MSE works at any size


def test_total_loss_terms_per_variant():
    _, s, _ = chest_phantom(192, seed=3)
    s = s[None, None]
    p = (s * 0.9).clamp(0, 1)
    logits = torch.zeros_like(s)
    mask = (s > 0.5).float()
    l_ae, t_ae = losses.total_loss(p, s, Config(variant="ae", image_size=192))
    t_ae = {k: float(v) for k, v in t_ae.items()}
    assert set(t_ae) == {"mse"} and l_ae.item() == pytest.approx(t_ae["mse"])
    cfg = Config(variant="dae_msssim", image_size=192, lm=2.0, ls=0.5)
    l_all, t_all = losses.total_loss(p, s, cfg, logits, mask)
    t_all = {k: float(v) for k, v in t_all.items()}
    assert set(t_all) == {"mse", "msssim", "seg"}
    assert t_all["seg"] == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-5)  # BCE of logit 0
    assert l_all.item() == pytest.approx(t_all["msssim"] + 2.0 * t_all["mse"] + 0.5 * t_all["seg"], rel=1e-6)
    with pytest.raises(ValueError, match="mask logits"):
        losses.total_loss(p, s, Config(variant="dae", image_size=192), None, mask)
    l_val, t_val = losses.total_loss(p, s, cfg, seg=False)  # validation: eq. (1) without L_seg
    assert set(t_val) == {"mse", "msssim"} and l_val.item() == pytest.approx(t_all["msssim"] + 2.0 * t_all["mse"], rel=1e-6)


@pytest.mark.parametrize("size", [176, 256])
def test_separable_ms_ssim_equals_torchmetrics_values_and_gradients(size):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim

    x, s, _ = chest_phantom(size, seed=4)
    g = torch.Generator().manual_seed(1)
    noisy = (s + 0.03 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    pred = torch.stack([noisy, x, 1 - s, torch.zeros_like(s)])[:, None].clone().requires_grad_(True)
    target = torch.stack([s, s, s, s])[:, None]
    ref = tm_ms_ssim(pred, target, data_range=1.0, betas=MS_SSIM_BETAS, normalize="relu", reduction="none")
    ours = ms_ssim(pred, target)
    assert torch.allclose(ours, ref, atol=1e-6)
    g_ref, = torch.autograd.grad(ref.sum(), pred)
    g_ours, = torch.autograd.grad(ours.sum(), pred)
    assert torch.allclose(g_ours, g_ref, atol=1e-7, rtol=1e-4)
