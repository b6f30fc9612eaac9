"""Table 1's metrics, one value per image.

Every function takes float tensors of shape (N, 1, H, W) in [0, 1], clinical polarity, exactly as
the model sees and produces them (no display transform, no equalisation), and returns a float64
tensor of shape (N,). Inputs are converted to float64 before any arithmetic (no uint8 wrap-around).

- BSR, bone suppression ratio: 1 - sum (S_hat - S)^2 / sum (X - S)^2. 1 for a perfect estimate,
  0 for the identity S_hat = X (nothing suppressed), negative when worse than doing nothing.
- RMAE, relative mean absolute error: sum |S_hat - S| / sum |S|.
- PSNR with data range 1: 10 log10(1 / MSE).
- SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1,
  population (co)variances; the SSIM map from torchmetrics averaged over the pixels whose window
  lies inside the image (a 5 px frame excluded), as in Wang's reference code (``filter2(...,
  'valid')``) and scikit-image. torchmetrics' own mean also counts the reflect-padded frame, which
  reads ~0.01 higher on radiographs with a uniform background.

``REGISTRY`` holds each metric (these four, the per-region ones and the segmentation head's Dice)
with its name, table header, number format and direction: every table (evaluate.format_table,
Table 1's CSV and Markdown, the model card, the MS-SSIM form comparison) takes its columns from
there, so a new metric is one ``Metric`` entry here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

SSIM_WINDOW = 11


def _check(*ts):
    """The tensors ``ts`` as float64, after checking they are float (N, 1, H, W) images of one shape."""
    for t in ts:
        if not t.is_floating_point():
            raise TypeError(f"expected float images in [0, 1], got {t.dtype}: convert (and scale) before any arithmetic")
        if t.ndim != 4 or t.shape[1] != 1:
            raise ValueError(f"expected (N, 1, H, W) tensors, got shape {tuple(t.shape)}")
        if t.shape != ts[0].shape:
            raise ValueError(f"shape mismatch: {tuple(t.shape)} vs {tuple(ts[0].shape)}")
    return [t.detach().to(torch.float64) for t in ts]


def bsr(pred: torch.Tensor, target: torch.Tensor, radiograph: torch.Tensor) -> torch.Tensor:
    """Bone suppression ratio: 1 - ||S_hat - S||^2 / ||X - S||^2, per image."""
    p, t, x = _check(pred, target, radiograph)
    return 1.0 - ((p - t) ** 2).sum(dim=(1, 2, 3)) / ((x - t) ** 2).sum(dim=(1, 2, 3))


def rmae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative mean absolute error: sum |S_hat - S| / sum |S|, per image."""
    p, t = _check(pred, target)
    return (p - t).abs().sum(dim=(1, 2, 3)) / t.abs().sum(dim=(1, 2, 3))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB with data range 1, per image."""
    p, t = _check(pred, target)
    return peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))


def _ssim_maps(pred: torch.Tensor, target: torch.Tensor, chunk: int = 16):
    """SSIM maps (Wang 2004 settings), ``chunk`` images at a time, without the border of half a
    window where the Gaussian window runs off the image: (N, 1, H - 10, W - 10), float64."""
    p, t = _check(pred, target)
    r = SSIM_WINDOW // 2
    for i in range(0, len(p), chunk):
        _, ssim_map = structural_similarity_index_measure(
            p[i : i + chunk].float(), t[i : i + chunk].float(), gaussian_kernel=True, sigma=1.5,
            kernel_size=SSIM_WINDOW, k1=0.01, k2=0.03, data_range=1.0, reduction="none", return_full_image=True,
        )  # fmt: skip
        yield ssim_map[..., r:-r, r:-r].double()


def ssim(pred: torch.Tensor, target: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """SSIM (Wang 2004 settings: Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1), per image.

    Computed in float32 (float64 convolutions on the CPU are ~30x slower and need GBs of scratch
    memory at 512 px; the float32 result agrees with a float64 reference to ~1e-5), ``chunk``
    images at a time.
    """
    return torch.cat([m.mean(dim=(1, 2, 3)) for m in _ssim_maps(pred, target, chunk)])


def region_ssim(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """SSIM (as ``ssim``) averaged over the pixels where ``region`` is 1 (the map's centres; the
    border of half a window left out as there), per image (NaN if empty)."""
    r = SSIM_WINDOW // 2
    maps = torch.cat(list(_ssim_maps(pred, target)))
    return _region_mean(maps, _check(region.to(pred.dtype))[0][..., r:-r, r:-r])


def _region_mean(values: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the pixels where ``region`` is 1, per image; NaN where it is empty."""
    n = region.sum(dim=(1, 2, 3))
    return torch.where(n > 0, (values * region).sum(dim=(1, 2, 3)) / n.clamp(min=1), torch.full_like(n, float("nan")))


def region_mse(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the pixels where ``region`` (N,1,H,W, 0/1) is 1, per image; NaN
    for an image whose region is empty."""
    p, t, r = _check(pred, target, region.to(pred.dtype))
    return _region_mean((p - t) ** 2, r)


def region_mae(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the pixels where ``region`` is 1, per image (NaN if empty)."""
    p, t, r = _check(pred, target, region.to(pred.dtype))
    return _region_mean((p - t).abs(), r)


def region_psnr(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (data range 1) over the pixels where ``region`` is 1, per image (NaN if empty)."""
    return 10 * torch.log10(1 / region_mse(pred, target, region))


def region_bsr(pred: torch.Tensor, target: torch.Tensor, radiograph: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """BSR over the pixels where ``region`` is 1: 1 - sum_region (S_hat - S)^2 / sum_region (X - S)^2,
    per image (NaN where the region holds no bone energy)."""
    p, t, x, r = _check(pred, target, radiograph, region.to(pred.dtype))
    bone = ((x - t) ** 2 * r).sum(dim=(1, 2, 3))
    left = ((p - t) ** 2 * r).sum(dim=(1, 2, 3))
    return torch.where(bone > 0, 1.0 - left / bone.clamp(min=1e-300), torch.full_like(bone, float("nan")))


def dice(pred_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Dice coefficient 2 |P & M| / (|P| + |M|) of binary masks (N,1,H,W), per image; 1 when both are empty."""
    p, m = _check(pred_mask.float(), mask.float())
    inter = (p * m).sum(dim=(1, 2, 3))
    total = p.sum(dim=(1, 2, 3)) + m.sum(dim=(1, 2, 3))
    return torch.where(total > 0, 2 * inter / total.clamp(min=1e-12), torch.ones_like(total))


#: The groups of the registry: the columns of Table 1 (the paper's metrics), of the per-region
#: table beside it, and the segmentation head's score (models with a head only).
TABLE1, REGION, HEAD = "table1", "region", "head"


@dataclass(frozen=True)
class Metric:
    """One metric, as every table, summary and claim shows it.

    ``name`` keys its columns (``<name>`` per image, ``<name>_mean`` / ``<name>_std`` in summaries,
    ``paper_<name>`` for the paper's value); ``short`` is what text calls it and ``unit`` its unit
    ("" for none), together the table header ``label``; ``fmt`` is the format spec of its values;
    ``fn(pred, target, radiograph, mask)`` gives one value per image (for a HEAD metric ``pred``
    is the segmentation head's mask; ``mask`` is None where no bone mask is at hand, which TABLE1
    metrics never need); ``group`` says which table it is a column of.
    """

    name: str
    short: str
    fmt: str
    higher_is_better: bool
    fn: Callable[..., torch.Tensor]
    unit: str = ""
    group: str = TABLE1

    @property
    def label(self) -> str:
        """The column header: "PSNR (dB)", "BSR"."""
        return f"{self.short} ({self.unit})" if self.unit else self.short

    def format(self, value) -> str:
        """``value`` in this metric's format; "n/a" for a value that is missing (None)."""
        return "n/a" if value is None else format(value, self.fmt)

    def mean_sd(self, mean, sd) -> str:
        """A table cell "mean +- sd", both in this metric's format."""
        return f"{self.format(mean)} +- {self.format(sd)}"

    def better(self, a: float, b: float) -> bool:
        """Whether the value ``a`` is strictly better than ``b`` in this metric's direction."""
        return a > b if self.higher_is_better else a < b


#: Every metric, in table order (Table 1's four as the paper prints them, then the per-region
#: ones, then the head's). The one place that says a metric's name, header, format and direction:
#: every table takes its columns from here (read at call time, so a test may add one).
REGISTRY: tuple[Metric, ...] = (
    Metric("bsr", "BSR", ".4f", True, lambda p, t, x, m: bsr(p, t, x)),
    Metric("rmae", "RMAE", ".4f", False, lambda p, t, x, m: rmae(p, t)),
    Metric("psnr", "PSNR", ".2f", True, lambda p, t, x, m: psnr(p, t), unit="dB"),
    Metric("ssim", "SSIM", ".4f", True, lambda p, t, x, m: ssim(p, t)),
    Metric("psnr_bone", "PSNR in bone mask", ".2f", True, lambda p, t, x, m: region_psnr(p, t, m), "dB", REGION),
    Metric("mae_bone", "MAE in bone mask", ".4f", False, lambda p, t, x, m: region_mae(p, t, m), group=REGION),
    Metric("psnr_outside", "PSNR outside", ".2f", True, lambda p, t, x, m: region_psnr(p, t, 1 - m), "dB", REGION),
    Metric("mae_outside", "MAE outside", ".4f", False, lambda p, t, x, m: region_mae(p, t, 1 - m), group=REGION),
    Metric("dice", "Dice of the seg. head", ".3f", True, lambda p, t, x, m: dice(p, m), group=HEAD),
)  # fmt: skip


def registered(*groups: str) -> tuple[Metric, ...]:
    """The registered metrics of ``groups`` (all when none is given), in table order."""
    return tuple(m for m in REGISTRY if not groups or m.group in groups)


def by_name(name: str) -> Metric:
    """The registered metric called ``name``; a KeyError naming the known ones otherwise."""
    for m in REGISTRY:
        if m.name == name:
            return m
    raise KeyError(f"unknown metric {name!r}; registered: {[m.name for m in REGISTRY]}")


#: The names of Table 1's metrics as registered at import (for the validation logs of training,
#: the sweep and the precision study); tables call ``registered(TABLE1)`` instead.
METRICS = tuple(m.name for m in registered(TABLE1))


def all_metrics(pred, target, radiograph) -> dict[str, torch.Tensor]:
    """Table 1's metrics (``registered(TABLE1)``), each of shape (N,), by name."""
    return {m.name: m.fn(pred, target, radiograph, None) for m in registered(TABLE1)}


def region_metrics(pred, target, mask) -> dict[str, torch.Tensor]:
    """PSNR (data range 1) and MAE inside the bone mask M and outside it, per image: where a model
    removes bone (inside) and whether it keeps the soft tissue elsewhere intact (outside)."""
    return {m.name: m.fn(pred, target, None, mask) for m in registered(REGION)}
