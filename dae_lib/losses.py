r"""The training objective, eq. (1)-(7) of the paper, one function each.

Images are float tensors (N, 1, H, W) in [0, 1], clinical polarity. Eq. (1), X = B + S, and the
bone mask built from it are in ``masks.py``.

(2) SSIM at one scale j, for windows of the estimate x and the target y (Gaussian window 11x11,
    sigma 1.5; C1 = (0.01 L)^2, C2 = (0.03 L)^2, data range L = 1):
        l(x,y) = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
        c_j(x,y) s_j(x,y) = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
(3) MS-SSIM over M = 5 dyadic scales (Wang, Simoncelli & Bovik 2003):
        MS-SSIM(x,y) = l_M(x,y)^alpha * prod_{j=1..M} (c_j s_j)(x,y)^beta_j,
        alpha = 1, beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    (the DAE paper prints 0.0048 for beta_1, a typo for Wang's 0.0448).
(4) L_MS-SSIM = 1 - MS-SSIM(S_hat, S)
(5) L_MSE = (1 / N) sum_i (S_hat_i - S_i)^2
(6) L_seg = -(1 / N) sum_i [M_i log sigma(z_i) + (1 - M_i) log(1 - sigma(z_i))], z = mask logits
(7) L = L_MS-SSIM + lm * L_MSE + ls * L_seg
    (AE: L_MSE only; AE + MS-SSIM: no L_seg; DAE: no L_MS-SSIM.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .msssim import ms_ssim


def msssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (4): L_MS-SSIM = 1 - MS-SSIM(S_hat, S), averaged over the batch.

    MS-SSIM, eq. (2)-(3), is ``msssim.ms_ssim``: per image, alpha = 1 and Wang's betas, data range 1,
    in float32 whatever the autocast state; negative terms are clamped at 0 before the powers, so
    it is never NaN. It equals torchmetrics' MS-SSIM (values and gradients, as the tests check).
    """
    return 1.0 - ms_ssim(pred, target).mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (5): L_MSE, the mean squared error over all pixels."""
    return F.mse_loss(pred.float(), target.float())


def seg_loss(mask_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. (6): L_seg, binary cross-entropy of the predicted bone mask (from logits)."""
    return F.binary_cross_entropy_with_logits(mask_logits.float(), mask.float())


def total_loss(s_hat, s, mask_logits=None, mask=None, *, use_msssim=True, use_seg=True, lm=1.0, ls=0.01):
    """Eq. (7): L = L_MS-SSIM + lm * L_MSE + ls * L_seg, with the terms a variant uses.

    Returns (L, dict of the individual terms, detached: they stay on the device, so logging them
    costs no host synchronisation per step).
    """
    terms = {"mse": mse_loss(s_hat, s)}
    loss = lm * terms["mse"]
    if use_msssim:
        terms["msssim"] = msssim_loss(s_hat, s)
        loss = loss + terms["msssim"]
    if use_seg:
        if mask_logits is None or mask is None:
            raise ValueError("the segmentation term needs mask logits (model in training mode) and a mask")
        terms["seg"] = seg_loss(mask_logits, mask)
        loss = loss + ls * terms["seg"]
    return loss, {k: v.detach() for k, v in terms.items()}
