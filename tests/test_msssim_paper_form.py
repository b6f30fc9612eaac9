"""The paper's per-pixel MS-SSIM, eq. (5)-(6), against a plain NumPy transcription of its formula."""
import json

import numpy as np
import pytest
import torch

from dae_lib import losses
from dae_lib.config import Config, config_from_dict, load_config, resume_conflicts
from dae_lib.msssim import ALPHA, BETAS, FLOOR, ms_ssim, ms_ssim_map
from dae_lib.phantom import chest_phantom


def _np_maps(x, y, c1=1e-4, c2=9e-4):
    """l(j), cs(j) with an explicit 11 x 11 Gaussian window (sigma 1.5), reflect padding."""
    d = np.arange(11) - 5.0
    g = np.exp(-(d / 1.5) ** 2 / 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    h, wd = x.shape

    def filt(a):
        p = np.pad(a, 5, mode="reflect")
        out = np.zeros_like(a)
        for i in range(11):
            for j in range(11):
                out += w[i, j] * p[i:i + h, j:j + wd]
        return out

    mx, my = filt(x), filt(y)
    vx, vy = np.maximum(filt(x * x) - mx**2, 0), np.maximum(filt(y * y) - my**2, 0)
    cov = filt(x * y) - mx * my
    return (2 * mx * my + c1) / (mx**2 + my**2 + c1), (2 * cov + c2) / (vx + vy + c2)


def _np_upsample(a, shape):
    """Bilinear interpolation on pixel centres (half-pixel convention), edges clamped."""
    def coords(n_out, n_in):
        c = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(c).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, c - lo

    r0, r1, fr = coords(shape[0], a.shape[0])
    k0, k1, fc = coords(shape[1], a.shape[1])
    rows = a[r0] * (1 - fr)[:, None] + a[r1] * fr[:, None]
    return rows[:, k0] * (1 - fc) + rows[:, k1] * fc


#: The exponents as the paper's eq. (5) gives them (beta_1 as Wang et al. 2003; the paper prints 0.0048),
#: written here, not imported, so that the transcription is independent of the library's constants.
PAPER_BETAS, PAPER_ALPHA = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 1.0


def _np_ms_ssim_map(x, y, alpha=PAPER_ALPHA):
    out = np.ones_like(x)
    for k, beta in enumerate(PAPER_BETAS):
        if k:
            h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        lum, cs = _np_maps(x, y)
        cs, lum = _np_upsample(cs, out.shape), _np_upsample(lum, out.shape)
        out = out * np.maximum(cs, FLOOR) ** beta
        if k == len(PAPER_BETAS) - 1:
            out = out * np.maximum(lum, FLOOR) ** alpha
    return out


def test_library_constants_are_the_papers():
    assert tuple(BETAS) == PAPER_BETAS and ALPHA == PAPER_ALPHA


@pytest.mark.parametrize("size", [176, 200])
def test_paper_form_equals_numpy_transcription(size):
    _, s, _ = chest_phantom(size, seed=2)
    g = torch.Generator().manual_seed(3)
    pred = (s + 0.05 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    ref = _np_ms_ssim_map(pred.double().numpy(), s.double().numpy())
    ours = ms_ssim_map(pred[None, None], s[None, None])[0, 0].double().numpy()
    assert ours.shape == (size, size)
    np.testing.assert_allclose(ours, ref, atol=2e-4)  # float32 against float64
    assert ref.min() < 0.9  # the noise is visible in the map, so the comparison is not of ones


def test_paper_form_equals_numpy_transcription_where_luminance_differs():
    """A darker, lower-contrast estimate: the coarsest luminance is far from 1 here (unlike the
    phantom's), so a wrong luminance exponent (beta_5 instead of alpha = 1) shows in the map."""
    _, s, _ = chest_phantom(192, seed=4)
    g = torch.Generator().manual_seed(5)
    pred = (0.6 * s + 0.02 + 0.03 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    ref = _np_ms_ssim_map(pred.double().numpy(), s.double().numpy())
    wrong = _np_ms_ssim_map(pred.double().numpy(), s.double().numpy(), alpha=PAPER_BETAS[-1])
    assert np.abs(ref - wrong).max() > 0.05  # the comparison below can tell the exponents apart
    ours = ms_ssim_map(pred[None, None], s[None, None])[0, 0].double().numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_luminance_exponent_is_alpha_one_not_beta5():
    """Two flat images: every cs is 1, so the paper's form is l itself and Wang's is l^0.1333."""
    a, b = torch.full((1, 1, 192, 192), 0.3), torch.full((1, 1, 192, 192), 0.6)
    lum = (2 * 0.3 * 0.6 + 1e-4) / (0.3**2 + 0.6**2 + 1e-4)
    assert ms_ssim_map(a, b).mean().item() == pytest.approx(lum, abs=1e-4)
    assert ms_ssim(a, b).item() == pytest.approx(lum ** BETAS[-1], abs=1e-4)


def test_paper_form_is_per_pixel_local():
    """An error in one corner lowers MS-SSIM(j) near it and leaves it 1 far away (the coarsest
    window is 11 * 16 = 176 px wide); Wang's per-image value has no map."""
    s = chest_phantom(512, seed=1)[1][None, None]
    pred = s.clone()
    pred[..., :32, :32] = (pred[..., :32, :32] + 0.3).clamp(0, 1)
    m = ms_ssim_map(pred, s)[0, 0]
    assert m[:32, :32].mean() < 0.9
    assert torch.allclose(m[300:, 300:], torch.ones(212, 212), atol=1e-5)


def test_paper_form_gradients_finite_for_anticorrelated_images():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 1, 192, 192, generator=g)
    p = (1 - t).clone().requires_grad_(True)
    loss = losses.msssim_loss(p, t, "paper")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all()
    assert 0 < loss.item() <= 1.0
    assert losses.msssim_loss(t, t, "paper").item() == pytest.approx(0.0, abs=1e-5)


def test_loss_form_is_chosen_by_config_and_differs():
    _, s, _ = chest_phantom(192, seed=5)
    p = (s * 0.8 + 0.1)[None, None]
    t = s[None, None]
    paper, wang = losses.msssim_loss(p, t, "paper"), losses.msssim_loss(p, t, "wang")
    assert paper.item() == pytest.approx(1 - ms_ssim_map(p, t).mean().item())
    assert wang.item() == pytest.approx(1 - ms_ssim(p, t).item())
    assert abs(paper.item() - wang.item()) > 1e-3
    with pytest.raises(ValueError, match="form"):
        losses.msssim_loss(p, t, "other")


def test_reproduced_four_use_paper_form_improved_family_keeps_wang():
    assert load_config("quick", variant="dae_msssim").msssim_form == "paper"
    assert load_config("quick", variant="r_ae_msssim").msssim_form == "wang"
    with pytest.raises(Exception, match="msssim_form"):
        Config(msssim_form="torchmetrics")


def test_runs_recorded_before_the_option_read_as_wang():
    old = load_config("quick", variant="ae_msssim").to_dict()
    old.pop("msssim_form")  # a config.json written before the field existed
    assert config_from_dict(json.loads(json.dumps(old))).msssim_form == "wang"
    assert "msssim_form" in resume_conflicts(old, load_config("quick", variant="ae_msssim"))
    assert resume_conflicts(old, load_config("quick", variant="ae_msssim", msssim_form="wang")) == []
