"""Paired transforms: the paper's geometric augmentation, and renderings as other devices make them.

Geometric (the paper's): rotation, shifts, shear, zoom and horizontal flip (``PairedAugment``).

One random geometric transform per case is drawn and applied identically to X, S and M (they are
stacked as channels and warped in one call), so the pair stays registered and X - S still equals
the warped bone image. M is re-binarised after bilinear warping (M > 0.5). Pixels that come from
outside the image are 0 (dark, like air in clinical polarity) in every channel.

Rendering (beyond the paper; issue 23): a radiograph from another hospital differs from JSRT's
less in anatomy than in how its device renders it: another grey curve, edge enhancement (unsharp
masking), noise, blur, JPEG compression, another resolution or pixel aspect. ``Rendering`` is one
such change, applied identically to X and S (the same curve, the same noise field), so that the pair
still differs by its bone only. ``SHIFTED`` holds the fixed renderings of the shifted validation set
(reporting/shifted.py); ``RenderAugment`` draws random ones during training from ``RENDER_RANGES``
(``Config.render_p``: the share of training images re-rendered; 0, the default and the paper's and
v1's recipe, leaves them alone). Training draws each value from a range, never the shifted set's
fixed combinations (many of its values lie outside the base ranges: gamma 0.6, unsharp 3.0, blur 2.5 px,
resolution 0.35, noise 0.03, aspect 0.88 and 1.12; ``RANGE_SETS`` names other sets of ranges), and
JPEG is not among them at all: one family the model never trained for.

Augmentation is applied only to training batches (see ``train.fit``); validation and test images
are never passed through it.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .config import check_choice
from .phantom import gaussian_blur


class PairedAugment(nn.Module):
    """Random affine (rotation, shift, shear, zoom) + horizontal flip, shared by X, S and M; the
    ranges are Config's (``from_config``)."""

    def __init__(self, rotation_deg: float, shift: float, shear_deg: float, zoom: tuple[float, float], hflip_p: float, render_p: float = 0.0,
                 render_ranges: str = "base"):  # fmt: skip
        super().__init__()
        self.render = RenderAugment(render_p, render_ranges) if render_p > 0 else None
        self.affine = K.RandomAffine(
            degrees=rotation_deg,
            translate=(shift, shift),
            scale=tuple(zoom),
            shear=(-shear_deg, shear_deg, -shear_deg, shear_deg),
            padding_mode="zeros",
            p=1.0,
        )
        self.flip = K.RandomHorizontalFlip(p=hflip_p)

    @classmethod
    def from_config(cls, cfg) -> "PairedAugment":
        return cls(cfg.rotation_deg, cfg.shift, cfg.shear_deg, cfg.zoom, cfg.hflip_p, cfg.render_p, cfg.render_ranges)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, s: torch.Tensor, m: torch.Tensor):
        stacked = torch.cat([x, s, m], dim=1)
        stacked = self.flip(self.affine(stacked))
        x, s, m = stacked.split(1, dim=1)
        x, s = x.clamp(0, 1), s.clamp(0, 1)
        if self.render is not None:  # after the geometry: the device renders the patient as placed
            x, s = self.render(x, s)
        return x, s, (m > 0.5).to(x.dtype)


# ------------------------------------------------------------------------------------------------
# Renderings as other devices make them
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rendering:
    """One way a device may render a radiograph, applied to X and S alike (``apply``). Lengths in
    pixels of a 512 px image (scaled with the image). In this order:

    1. resolution r: down to r x the size (area average) and back up (bilinear): detail finer than
       1/r pixels is lost (r < 1: a coarser detector; r = 1: unchanged);
    2. aspect a: the width resampled by a (centre kept, cropped or padded with 0): non-square pixels;
    3. blur: a Gaussian of this sigma (a softer detector or scatter);
    4. noise: Gaussian, this standard deviation (grey levels in [0, 1]), the same field in X and S;
    5. grey curve: y = low + (high - low) * x ** gamma (another look-up table);
    6. edge enhancement (unsharp mask): y + amount * (y - blur_sigma(y)), sigma ``unsharp_sigma``;
    7. JPEG at this quality (1-95; 0: none), each image on its own, 8 bits.

    The result is clipped to [0, 1] after each step that can leave it."""

    resolution: float = 1.0
    aspect: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    gamma: float = 1.0
    low: float = 0.0
    high: float = 1.0
    unsharp: float = 0.0
    unsharp_sigma: float = 4.0
    jpeg: int = 0

    def apply(self, x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """X and S (N, 1, H, W) in [0, 1], rendered alike; the noise is drawn from ``generator``."""
        pair = torch.cat([x, s], dim=1)
        px = x.shape[-1] / 512
        if self.resolution != 1:
            size = [max(8, round(n * self.resolution)) for n in pair.shape[-2:]]
            pair = F.interpolate(F.interpolate(pair, size=size, mode="area"), size=pair.shape[-2:], mode="bilinear", align_corners=False)
        if self.aspect != 1:
            pair = _resample_width(pair, self.aspect)
        pair = gaussian_blur(pair, self.blur * px)
        if self.noise:
            field = torch.randn(pair.shape[0], 1, *pair.shape[-2:], generator=generator, device="cpu").to(pair)
            pair = (pair + self.noise * field).clamp(0, 1)
        if (self.gamma, self.low, self.high) != (1.0, 0.0, 1.0):
            pair = self.low + (self.high - self.low) * pair.clamp(min=0) ** self.gamma
        if self.unsharp:
            pair = (pair + self.unsharp * (pair - gaussian_blur(pair, self.unsharp_sigma * px))).clamp(0, 1)
        if self.jpeg:
            pair = _jpeg(pair, self.jpeg)
        x, s = pair.clamp(0, 1).split(1, dim=1)
        return x, s


def _resample_width(pair: torch.Tensor, aspect: float) -> torch.Tensor:
    """The width scaled by ``aspect`` about the centre (bilinear; 0 where nothing maps)."""
    n = pair.shape[0]
    theta = torch.tensor([[1 / aspect, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=pair.dtype, device=pair.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(pair.shape), align_corners=False)
    return F.grid_sample(pair, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _jpeg(pair: torch.Tensor, quality: int) -> torch.Tensor:
    """Each image of ``pair`` through an 8-bit JPEG of this quality (PIL), on its own."""
    out = torch.empty_like(pair)
    for idx in np.ndindex(*pair.shape[:2]):
        a = np.round(pair[idx].detach().float().cpu().numpy() * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
        out[idx] = torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255).to(out)
    return out


#: The shifted validation set: each family at several strengths, fixed (reporting/shifted.py applies
#: them to the validation cases). Chosen to span what radiographs from other hospitals show (issue 23):
#: grey curves, edge enhancement up to heavy, noise, softness, JPEG, resolution and pixel aspect.
SHIFTED: dict[str, dict[str, Rendering]] = {
    "grey curve": {
        "gamma 0.6": Rendering(gamma=0.6),
        "gamma 1.5": Rendering(gamma=1.5),
        "window 0.15 + 0.7 x^0.7": Rendering(gamma=0.7, low=0.15, high=0.85),
    },
    "edge enhancement": {
        "unsharp 0.7, 4 px": Rendering(unsharp=0.7, unsharp_sigma=4.0),
        "unsharp 1.5, 3 px": Rendering(unsharp=1.5, unsharp_sigma=3.0),
        "unsharp 3.0, 8 px": Rendering(unsharp=3.0, unsharp_sigma=8.0),
    },
    "noise": {"noise 0.01": Rendering(noise=0.01), "noise 0.03": Rendering(noise=0.03)},
    "blur": {"blur 1 px": Rendering(blur=1.0), "blur 2.5 px": Rendering(blur=2.5)},
    "jpeg": {"JPEG q 75": Rendering(jpeg=75), "JPEG q 30": Rendering(jpeg=30)},
    "resolution": {"resolution 0.6": Rendering(resolution=0.6), "resolution 0.35": Rendering(resolution=0.35)},
    "aspect": {"aspect 0.88": Rendering(aspect=0.88), "aspect 1.12": Rendering(aspect=1.12)},
}

#: Training's random renderings (``RenderAugment``): each image drawn re-rendered with probability
#: Config.render_p; each step on with the probability given, its value uniform in the range (gamma:
#: log-uniform). Not the shifted validation's values, and no JPEG (the family held out).
RENDER_RANGES = {
    "resolution": (0.5, (0.4, 0.95)),
    "aspect": (0.3, (0.9, 1.1)),
    "blur": (0.3, (0.3, 2.0)),
    "noise": (0.4, (0.002, 0.025)),
    "gamma": (0.7, (0.65, 1.6)),
    "low": (0.4, (0.0, 0.2)),
    "high": (0.4, (0.8, 1.0)),
    "unsharp": (0.6, (0.2, 2.5)),
    "unsharp_sigma": (1.0, (2.0, 10.0)),
}
#: Named sets of training ranges; ``Config.render_ranges`` names the one ``RenderAugment`` draws
#: from. "base" is RENDER_RANGES (v2's recipe). "wide-aspect" draws pixel aspect more often and over
#: U(0.8, 1.25), a range that holds the shifted set's 0.88 and 1.12 (v2 loses that family to v1).
RANGE_SETS = {
    "base": RENDER_RANGES,
    "wide-aspect": {**RENDER_RANGES, "aspect": (0.5, (0.8, 1.25))},
}


def random_rendering(rng: np.random.Generator, ranges: dict = RENDER_RANGES) -> Rendering:
    """One rendering drawn from ``ranges`` (RENDER_RANGES, or another of RANGE_SETS)."""
    drawn = {}
    for name, (p_on, (lo, hi)) in ranges.items():
        if rng.random() < p_on:
            drawn[name] = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if name == "gamma" else float(rng.uniform(lo, hi))
    return replace(Rendering(), **drawn)


class RenderAugment(nn.Module):
    """Each image of a training batch re-rendered (X and S alike) with probability ``p``, by a
    rendering drawn from the range set ``ranges`` (a name in RANGE_SETS); the draws follow torch's
    seeded generator, so an epoch's augmentation is reproducible like the geometric one's."""

    def __init__(self, p: float, ranges: str = "base"):
        super().__init__()
        check_choice("render_ranges", ranges, RANGE_SETS)
        self.p = p
        self.ranges = RANGE_SETS[ranges]

    @torch.no_grad()
    def forward(self, x: torch.Tensor, s: torch.Tensor):
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        rng = np.random.default_rng(seed)
        noise = torch.Generator().manual_seed(seed)
        xs, ss = [], []
        for i in range(x.shape[0]):
            xi, si = x[i : i + 1], s[i : i + 1]
            if rng.random() < self.p:
                xi, si = random_rendering(rng, self.ranges).apply(xi, si, noise)
            xs.append(xi)
            ss.append(si)
        return torch.cat(xs), torch.cat(ss)
