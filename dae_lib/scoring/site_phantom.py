"""Phantom pairs as a site might bring them: for trying ``score`` and fine-tuning without real pairs.

Each pair is a phantom radiograph X and its soft tissue S rendered the way a dual-energy system might
render it, unlike X: another grey curve (``RENDERING``: offset + gain * S ** gamma), an unsharp-mask
edge enhancement, and a misalignment of up to ``MAX_SCALE`` in scale and ``MAX_SHIFT_PX`` in shift,
drawn per pair from ``seed``. Written as 8-bit PNGs in ``X/`` and ``S/`` (the loader's "xs" layout).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..phantom import chest_phantom, gaussian_blur
from .registration import warp

#: S's grey curve (offset, gain, gamma) and edge enhancement (amount, blur sigma in px at 512 px).
RENDERING = (0.15, 0.7, 0.7)
ENHANCE = (0.8, 4.0)
#: Misalignment drawn per pair: scale in 1 +- MAX_SCALE, shift in +- MAX_SHIFT_PX (rows, columns).
MAX_SCALE, MAX_SHIFT_PX = 0.01, 3.0


def render_site(s: torch.Tensor) -> torch.Tensor:
    """S as the site's system renders it: the grey curve, then the edge enhancement (clipped to [0, 1])."""
    offset, gain, gamma = RENDERING
    amount, sigma = ENHANCE
    r = offset + gain * s.clamp(min=0) ** gamma
    sigma = sigma * s.shape[-1] / 512
    return (r + amount * (r - gaussian_blur(r.double(), sigma).float())).clamp(0, 1)


def write_site_pairs(folder: str | Path, n: int = 4, size: int = 512, seed: int = 0) -> dict[str, tuple[float, tuple[float, float]]]:
    """``n`` pairs in ``folder``/X and ``folder``/S (case names SITE000, ...); returns each case's
    misalignment as drawn (scale, shift): S's content at X's pixel p lies at c + (p - c - shift) / scale."""
    if not 0 < n <= 100:
        raise ValueError(f"n must be 1 to 100 pairs (the phantom seeds of one seed's pairs), not {n}")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    drawn = {}
    for i in range(n):
        x, s, _ = chest_phantom(size, seed=10_000 + 100 * seed + i)
        scale = 1 + float(rng.uniform(-MAX_SCALE, MAX_SCALE))
        shift = tuple(float(v) for v in rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX, 2))
        moved = torch.nan_to_num(warp(render_site(s), scale, shift), nan=0.0)
        case = f"SITE{i:03d}"
        for img, sub in ((x, "X"), (moved, "S")):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(img.numpy() * 255).astype(np.uint8)).save(folder / sub / f"{case}.png")
        drawn[case] = (scale, shift)
    return drawn
