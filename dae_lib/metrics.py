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
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

SSIM_WINDOW = 11


def _check(*ts):
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


def ssim(pred: torch.Tensor, target: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """SSIM (Wang 2004 settings: Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, data range 1), per image.

    Computed in float32 (float64 convolutions on the CPU are ~30x slower and need GBs of scratch
    memory at 512 px; the float32 result agrees with a float64 reference to ~1e-5), ``chunk``
    images at a time.
    """
    p, t = _check(pred, target)
    r = SSIM_WINDOW // 2
    out = []
    for i in range(0, len(p), chunk):
        _, ssim_map = structural_similarity_index_measure(
            p[i : i + chunk].float(), t[i : i + chunk].float(), gaussian_kernel=True, sigma=1.5,
            kernel_size=SSIM_WINDOW, k1=0.01, k2=0.03, data_range=1.0, reduction="none", return_full_image=True,
        )  # fmt: skip
        out.append(ssim_map[..., r:-r, r:-r].double().mean(dim=(1, 2, 3)))
    return torch.cat(out)


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


def region_metrics(pred, target, mask) -> dict[str, torch.Tensor]:
    """PSNR (data range 1) and MAE inside the bone mask M and outside it, per image: where a model
    removes bone (inside) and whether it keeps the soft tissue elsewhere intact (outside)."""
    out = {}
    for name, region in (("bone", mask), ("outside", 1 - mask)):
        out[f"psnr_{name}"] = 10 * torch.log10(1 / region_mse(pred, target, region))
        out[f"mae_{name}"] = region_mae(pred, target, region)
    return out


def dice(pred_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Dice coefficient 2 |P & M| / (|P| + |M|) of binary masks (N,1,H,W), per image; 1 when both are empty."""
    p, m = _check(pred_mask.float(), mask.float())
    inter = (p * m).sum(dim=(1, 2, 3))
    total = p.sum(dim=(1, 2, 3)) + m.sum(dim=(1, 2, 3))
    return torch.where(total > 0, 2 * inter / total.clamp(min=1e-12), torch.ones_like(total))


METRICS = ("bsr", "rmae", "psnr", "ssim")
#: Per-region metrics (region_metrics), reported beside Table 1's four.
REGION_METRICS = ("psnr_bone", "mae_bone", "psnr_outside", "mae_outside")
#: Which direction is better, and how each metric is printed, in every table.
HIGHER_IS_BETTER = {"bsr": True, "rmae": False, "psnr": True, "ssim": True,
                    "psnr_bone": True, "mae_bone": False, "psnr_outside": True, "mae_outside": False, "dice": True}  # fmt: skip
FORMATS = {"bsr": "{:.4f}", "rmae": "{:.4f}", "psnr": "{:.2f}", "ssim": "{:.4f}",
           "psnr_bone": "{:.2f}", "mae_bone": "{:.4f}", "psnr_outside": "{:.2f}", "mae_outside": "{:.4f}", "dice": "{:.3f}"}  # fmt: skip


def all_metrics(pred, target, radiograph) -> dict[str, torch.Tensor]:
    """The four Table 1 metrics, each of shape (N,)."""
    return {
        "bsr": bsr(pred, target, radiograph),
        "rmae": rmae(pred, target),
        "psnr": psnr(pred, target),
        "ssim": ssim(pred, target),
    }
