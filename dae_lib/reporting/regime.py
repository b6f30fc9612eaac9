"""What moves a data set into another regime, and which metric survives the move.

The paper's Table 1 implies that doing nothing scores 19-21 dB PSNR on its data (table1.paper_regime)
where it scores about 37 dB on our BSE-JSRT copy. Each preprocessing below changes the pairs (and the
estimates, where a real pipeline would change them too) in one way that could explain such a gap, so
its effect on the metrics of the *same* estimates can be read (notebook 03, its exercises):

- ``z-score``: every image of a case in units of its radiograph's standard deviation,
  (I - mean(X)) / sd(X), applied to X, S and S_hat alike, with PSNR still on the range 1;
- ``gamma on S``: the target alone rendered with another grey curve, S ** gamma;
- ``S shifted``: the target alone misregistered by a fraction of the width (1/32: 16 px at 512 px).

BSR = 1 - MSE(S_hat, S) / MSE(X, S) is a ratio of two errors of the same images: a change applied to
all three scales both and cancels; a change to S alone adds the same new error to both and pulls BSR
to 0. PSNR on a fixed range moves with any change of scale.
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

from .. import metrics

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def zscore(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor) -> Triple:
    """X, S and S_hat in units of the radiograph's own spread: (I - mean(X)) / sd(X), per case."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    sd = x.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)
    return (x - mean) / sd, (s - mean) / sd, (s_hat - mean) / sd


def gamma_on_s(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor, gamma: float = 0.8) -> Triple:
    """The target rendered with another grey curve, S ** gamma; X and S_hat unchanged."""
    return x, s.clamp(min=0) ** gamma, s_hat


def shift_s(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor, fraction: float = 1 / 32) -> Triple:
    """The target moved right by ``fraction`` of the width (edge pixels repeated); X and S_hat unchanged."""
    k = max(1, round(fraction * s.shape[-1]))
    moved = torch.cat([s[..., :1].expand(*s.shape[:-1], k), s[..., :-k]], dim=-1)
    return x, moved, s_hat


#: name -> preprocessing of (X, S, S_hat); "none" keeps the pairs as they are.
PREPROCESSINGS: dict[str, Callable[..., Triple]] = {
    "none": lambda x, s, s_hat: (x, s, s_hat),
    "z-score (all three, by X)": zscore,
    "gamma 0.8 on S only": gamma_on_s,
    "S shifted by 1/32 of the width": shift_s,
}


def effects(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor) -> pd.DataFrame:
    """Mean over the images of the identity's PSNR, and the PSNR, BSR and gain in dB
    (-10 log10(1 - BSR)) of ``s_hat``, after each preprocessing (PSNR always on the range 1)."""
    rows = []
    for name, prep in PREPROCESSINGS.items():
        xp, sp, hp = prep(x, s, s_hat)
        bsr = metrics.bsr(hp, sp, xp)
        rows.append({
            "preprocessing": name,
            "identity_psnr": float(metrics.psnr(xp, sp).mean()),
            "psnr": float(metrics.psnr(hp, sp).mean()),
            "bsr": float(bsr.mean()),
            "gain_db": float((-10 * torch.log10((1 - bsr).clamp(min=1e-12))).mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)
