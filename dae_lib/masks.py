"""Bone image and bone mask: X = B + S (unnumbered in the paper) and the binarised target of the segmentation branch.

Rule for the mask (the paper says only "thresholding X - S"): per image,

    B = X - S                       (clinical polarity, so B >= 0 on bone)
    tau = max(otsu(B), tau_min)     (Otsu's threshold over all pixels of B; tau_min = 2/255)
    M = 1[B > tau]

Otsu separates the near-zero soft-tissue-only pixels from the bone pixels without a hand-tuned
level, on 8-bit data and on the phantom alike; the floor tau_min keeps a bone-free image (or one
with only quantisation noise in X - S) from getting a mask of noise. A fixed threshold can be
chosen instead (``threshold=0.02``).
"""
from __future__ import annotations

import torch


def bone_image(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """X = B + S solved for the bone layer: B = X - S."""
    return x - s


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold of a set of values: the level that maximises the between-class variance.

    The histogram spans [min, max] in ``bins`` bins; the returned level is the centre of the last
    bin of the lower class, as in scikit-image's ``threshold_otsu``.
    """
    v = values.detach().flatten().double()
    lo, hi = v.min().item(), v.max().item()
    if hi <= lo:
        return lo
    hist = torch.histc(v, bins=bins, min=lo, max=hi)
    centres = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * (hi - lo) / bins
    w0 = torch.cumsum(hist, 0)
    w1 = torch.cumsum(hist.flip(0), 0).flip(0)
    m0 = torch.cumsum(hist * centres, 0) / w0.clamp(min=1e-12)
    m1 = torch.cumsum((hist * centres).flip(0), 0).flip(0) / w1.clamp(min=1e-12)
    between = w0[:-1] * w1[1:] * (m0[:-1] - m1[1:]) ** 2
    return centres[int(torch.argmax(between))].item()


def mask_thresholds(
    x: torch.Tensor, s: torch.Tensor, threshold: str | float = "otsu", min_threshold: float = 2 / 255
) -> torch.Tensor:
    """The per-image threshold tau of the mask rule, shape (N,)."""
    b = bone_image(x, s)
    if threshold == "otsu":
        taus = [max(otsu_threshold(bi), min_threshold) for bi in b]
    else:
        taus = [float(threshold)] * b.shape[0]
    return torch.tensor(taus, dtype=x.dtype)


def bone_mask(
    x: torch.Tensor, s: torch.Tensor, threshold: str | float = "otsu", min_threshold: float = 2 / 255
) -> torch.Tensor:
    """Binary bone mask M = 1[X - S > tau] for images of shape (N, 1, H, W), as float 0/1."""
    taus = mask_thresholds(x, s, threshold, min_threshold).to(x.device)
    return (bone_image(x, s) > taus.view(-1, 1, 1, 1)).to(x.dtype)
