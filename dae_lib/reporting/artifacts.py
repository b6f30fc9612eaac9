"""The checkerboard of transposed convolutions, measured.

A transposed convolution of stride 2 whose kernel (3 x 3 here) is not a multiple of its stride
overlaps unevenly: every other output pixel receives a different number of kernel taps, so the
output carries a pattern that repeats every 2 pixels (Odena et al., Distill 2016). The reproduced
DAE upsamples twice that way (models/dae.py), so a pattern of period 4 can appear; the R- family
upsamples bilinearly and has none by construction.

The pattern is measured on the error E = S_hat - S: for each of the period x period pixel phases
(row mod period, column mod period), the mean of E over the pixels of that phase, minus the mean of
E. A natural error averages to the same value at every phase (the phase means differ by noise of
order sd(E) / sqrt(pixels per phase)); a grid pattern does not.
"""
from __future__ import annotations

import torch

#: Two stride-2 upsamplings in a row: patterns of period 2 and 4 both repeat every 4 pixels.
PERIOD = 4


def periodic_pattern(err: torch.Tensor, period: int = PERIOD) -> torch.Tensor:
    """The mean of ``err`` (N, 1, H, W) at each pixel phase, minus its overall mean: (N, period, period)."""
    n, _, h, w = err.shape
    e = err[:, 0, : h - h % period, : w - w % period].double()
    tiles = e.reshape(n, h // period, period, w // period, period).mean(dim=(1, 3))
    return tiles - tiles.mean(dim=(1, 2), keepdim=True)


def periodic_rms(pred: torch.Tensor, target: torch.Tensor, period: int = PERIOD) -> torch.Tensor:
    """Root mean square of the periodic pattern of ``pred - target``, per image (grey levels of the
    range [0, 1]): the amplitude of the grid the upsampling left."""
    return periodic_pattern(pred - target, period).pow(2).mean(dim=(1, 2)).sqrt()


def periodic_share(pred: torch.Tensor, target: torch.Tensor, period: int = PERIOD) -> torch.Tensor:
    """The periodic pattern's share of the error energy: periodic_rms^2 / mean((pred - target)^2)."""
    mse = (pred - target).double().pow(2).mean(dim=(1, 2, 3))
    return periodic_rms(pred, target, period).pow(2) / mse.clamp(min=1e-300)
