"""Table 1's metrics against their independent NumPy references (dae_lib.reporting.metric_checks),
and wrong metrics that the checks catch."""
import pytest
import torch

from dae_lib import metrics
from dae_lib.phantom import chest_phantom
from dae_lib.reporting import metric_checks


@pytest.fixture(scope="module")
def images():
    """Two phantom pairs and estimates: one that removes 70 % of the bone (plus noise), and X itself."""
    x, s, _ = chest_phantom(96, seed=5)
    x, s = x[None, None], s[None, None]
    g = torch.Generator().manual_seed(0)
    partly = (s + 0.3 * (x - s) + 0.01 * torch.randn(s.shape, generator=g)).clamp(0, 1)
    return torch.cat([partly, x]), torch.cat([s, s]), torch.cat([x, x])


def test_every_table1_metric_agrees_with_its_reference(images):
    checks = metric_checks.table1_checks(*images)
    assert [c.metric for c in checks] == ["BSR", "RMAE", "PSNR", "SSIM"]
    assert all(c.holds for c in checks), [str(c) for c in checks]
    assert "agree" in str(checks[0])


@pytest.mark.parametrize("name, wrong", [
    ("psnr", lambda p, s, x: 10 * torch.log10(255.0**2 / ((p.double() - s.double()) ** 2).mean(dim=(1, 2, 3)))),  # peak 255
    ("bsr", lambda p, s, x: metrics.bsr(x, s, p)),  # the roles of X and S_hat swapped
    ("bsr", lambda p, s, x: metrics.bsr(p, x, s)),  # the roles of X and S swapped
    ("rmae", lambda p, s, x: metrics.rmae(p, s) * s.double().mean(dim=(1, 2, 3))),  # mean absolute error, not relative
    ("ssim", lambda p, s, x: metrics.ssim(p, s) + 0.01),  # e.g. the padded frame counted (~0.01 higher)
])  # fmt: skip
def test_a_wrong_metric_fails_its_check(images, name, wrong):
    assert not metric_checks.check(name, *images, fn=wrong).holds


def test_numpy_ssim_of_an_image_with_itself_is_one(images):
    _, s, _ = images
    assert metric_checks.np_ssim(s.double().numpy()[:, 0], s.double().numpy()[:, 0]) == pytest.approx(1.0)
    assert metric_checks.gaussian_window().sum() == pytest.approx(1.0)
