"""Paired augmentation: the paper's rotation, shifts, shear, zoom and horizontal flip.

One random geometric transform per case is drawn and applied identically to X, S and M (they are
stacked as channels and warped in one call), so the pair stays registered and X - S still equals
the warped bone image. M is re-binarised after bilinear warping (M > 0.5). Pixels that come from
outside the image are 0 (dark, like air in clinical polarity) in every channel.

Augmentation is applied only to training batches (see ``train.fit``); validation and test images
are never passed through it.
"""
from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn


class PairedAugment(nn.Module):
    """Random affine (rotation, shift, shear, zoom) + horizontal flip, shared by X, S and M; the
    ranges are Config's (``from_config``)."""

    def __init__(self, rotation_deg: float, shift: float, shear_deg: float, zoom: tuple[float, float], hflip_p: float):
        super().__init__()
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
        return cls(cfg.rotation_deg, cfg.shift, cfg.shear_deg, cfg.zoom, cfg.hflip_p)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, s: torch.Tensor, m: torch.Tensor):
        stacked = torch.cat([x, s, m], dim=1)
        stacked = self.flip(self.affine(stacked))
        x, s, m = stacked.split(1, dim=1)
        return x.clamp(0, 1), s.clamp(0, 1), (m > 0.5).to(x.dtype)
