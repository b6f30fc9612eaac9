"""Table 1's metrics (dae_lib.metrics) against independent references (notebook 03).

Each check computes one metric twice on the same images: with the library's function, and with a
float64 NumPy re-derivation written from the definition (the paper names BSR, RMAE, PSNR and SSIM,
section 3.2, and writes out only SSIM, eq. (3)-(4); the others follow the common definitions quoted
in dae_lib/metrics.py). A check holds when the two agree to within its tolerance, so a metric with
a wrong peak, swapped roles or another window fails it (tests/test_metric_checks.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from .. import metrics

#: Wang et al. (2004)'s SSIM settings, as the reference uses them (the library's own are in
#: dae_lib/metrics.py: SSIM_WINDOW, and the arguments to torchmetrics there).
SIGMA, K1, K2 = 1.5, 0.01, 0.03


@dataclass(frozen=True)
class MetricCheck:
    """One metric on one set of images: the library's mean value, the reference's, a tolerance."""

    metric: str  # "BSR", ...
    reference: str  # what the reference is, in words
    value: float  # the library's value (mean over the images)
    expected: float  # the reference's value
    tolerance: float

    @property
    def holds(self) -> bool:
        return abs(self.value - self.expected) <= self.tolerance

    def __str__(self) -> str:
        """One line: both values in Table 1's format (metrics.REGISTRY), their difference, the verdict."""
        fmt = next(m.fmt for m in metrics.REGISTRY if m.short == self.metric)
        verdict = "agree" if self.holds else "DISAGREE"
        within = "<=" if self.holds else ">"
        return (f"{self.metric}: library {self.value:{fmt}}, reference {self.expected:{fmt}} ({self.reference}); "
                f"|difference| {within} {self.tolerance:g} -> {verdict}")


def _np(t: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) tensor -> (N, H, W) float64 array."""
    return t.detach().to(torch.float64).numpy()[:, 0]


def np_bsr(s_hat: np.ndarray, s: np.ndarray, x: np.ndarray) -> np.ndarray:
    """BSR per image, 1 - sum (S_hat - S)^2 / sum (X - S)^2, in float64 NumPy."""
    return 1 - ((s_hat - s) ** 2).sum(axis=(1, 2)) / ((x - s) ** 2).sum(axis=(1, 2))


def np_rmae(s_hat: np.ndarray, s: np.ndarray) -> np.ndarray:
    """RMAE per image, sum |S_hat - S| / sum |S|, in float64 NumPy."""
    return np.abs(s_hat - s).sum(axis=(1, 2)) / np.abs(s).sum(axis=(1, 2))


def np_psnr(s_hat: np.ndarray, s: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """PSNR per image, 10 log10(peak^2 / MSE), in float64 NumPy (data range ``peak``)."""
    return 10 * np.log10(peak**2 / ((s_hat - s) ** 2).mean(axis=(1, 2)))


def gaussian_window(size: int = metrics.SSIM_WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """The normalised size x size Gaussian window of SSIM."""
    r = np.arange(size) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def np_ssim(s_hat: np.ndarray, s: np.ndarray, window: np.ndarray | None = None) -> np.ndarray:
    """SSIM per image as eq. (3)-(4) write it, with Wang's constants C1 = (K1)^2, C2 = (K2)^2
    (data range 1) in the denominators: local Gaussian-weighted means, population variances and
    covariance, averaged over the pixels whose window lies inside the image; float64 NumPy."""
    w = gaussian_window() if window is None else window

    def local(a):  # Gaussian-weighted mean of every window inside the image
        return np.einsum("nijkl,kl->nij", sliding_window_view(a, w.shape, axis=(1, 2)), w)

    mu_a, mu_b = local(s_hat), local(s)
    var_a, var_b = local(s_hat**2) - mu_a**2, local(s**2) - mu_b**2
    cov = local(s_hat * s) - mu_a * mu_b
    c1, c2 = K1**2, K2**2
    lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    return (lum * cs).mean(axis=(1, 2))


#: Each Table 1 metric's reference: (what it is, the reference as fn(s_hat, s, x) on arrays, tolerance).
REFERENCES: dict[str, tuple[str, Callable, float]] = {
    "bsr": ("NumPy float64, 1 - sum (S_hat - S)^2 / sum (X - S)^2", lambda p, s, x: np_bsr(p, s, x), 1e-9),
    "rmae": ("NumPy float64, sum |S_hat - S| / sum |S|", lambda p, s, x: np_rmae(p, s), 1e-9),
    "psnr": ("NumPy float64, 10 log10(1 / MSE)", lambda p, s, x: np_psnr(p, s), 1e-5),
    "ssim": ("NumPy float64 Gaussian-window SSIM (Wang 2004)", lambda p, s, x: np_ssim(p, s), 1e-4),
}


def check(name: str, s_hat: torch.Tensor, s: torch.Tensor, x: torch.Tensor, fn: Callable | None = None) -> MetricCheck:
    """The Table 1 metric ``name`` (metrics.REGISTRY) on images (N, 1, H, W) against its reference:
    both as means over the images. ``fn(s_hat, s, x)`` replaces the library's function (to show
    that a wrong one fails)."""
    metric = metrics.by_name(name)
    what, reference, tolerance = REFERENCES[name]
    value = (fn or (lambda p, t, r: metric.fn(p, t, r, None)))(s_hat, s, x)
    expected = reference(_np(s_hat), _np(s), _np(x))
    return MetricCheck(metric.short, what, float(torch.as_tensor(value).double().mean()), float(expected.mean()), tolerance)


def table1_checks(s_hat: torch.Tensor, s: torch.Tensor, x: torch.Tensor) -> list[MetricCheck]:
    """One check per Table 1 metric (BSR, RMAE, PSNR, SSIM) on the same images."""
    return [check(name, s_hat, s, x) for name in REFERENCES]
