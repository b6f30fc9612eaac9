r"""The training objective, eq. (1)-(7) of the paper (numbered as the paper numbers them), one function
each, and the bone mask M that its segmentation term (7) learns.

Images are float tensors (N, 1, H, W) in [0, 1], clinical polarity.

(1) L = L_MS-SSIM + lm * L_MSE + ls * L_seg                                  ``total_loss``
    (AE: L_MSE only; AE + MS-SSIM: no L_seg; DAE: no L_MS-SSIM; models.ABLATION.)
(2) L_MSE = (1 / N) sum_j (S(j) - S_hat(j))^2                                ``mse_loss``
(3)-(4) SSIM(j) = l(j) * cs(j) for windows around pixel j (Gaussian window 11x11, sigma 1.5;
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, data range L = 1):
        l(j) = (2 mu_S mu_S_hat + C1) / (mu_S^2 + mu_S_hat^2 + C1)
        cs(j) = (2 sigma_S,S_hat + C2) / (sigma_S^2 + sigma_S_hat^2 + C2)
(5) MS-SSIM(j) = l_K(j)^alpha * prod_{k=1..K} cs_k(j)^beta_k, K = 5 dyadic scales, alpha = 1,
    beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (the paper prints 0.0048 for beta_1, a typo for
    Wang's 0.0448).                                                          ``msssim.ms_ssim_map``
    How scale k is formed (the paper does not say): the image averaged over 2^(k-1) x 2^(k-1)
    blocks, as in Wang et al. 2003, its maps brought back to pixel j by bilinear interpolation.
    The option ``msssim_form: wang`` (Config) uses Wang et al. 2003's per-image form instead, as
    torchmetrics computes it (means per scale before the product, the coarsest scale's SSIM to
    beta_5, so a luminance exponent of 0.1333, not 1): ``msssim.ms_ssim``. The reproduced four use
    the paper's form; the improved family was tuned and released with Wang's (models.FAMILIES).
(6) L_MS-SSIM = (1 / N) sum_j (1 - MS-SSIM(j))                               ``msssim_loss``
(7) L_seg = -(1 / N) sum_j [M_j ln M_hat_j + (1 - M_j) ln(1 - M_hat_j)], M_hat = sigma(logits)   ``seg_loss``

Beyond the paper (off unless Config.teachers is set; the reproduced four never use it): the target S
in (2)-(6) replaced by S~ = (1 - w) S + w mean_t S_hat_t, trained models' mean estimate     ``distilled_target``

The bone mask M, target of the segmentation branch, from X = B + S (unnumbered in the paper).
Rule for the mask (the paper says only "thresholding X - S"): per image,

    B = X - S                       (clinical polarity, so B >= 0 on bone)
    tau = max(otsu(B), tau_min)     (Otsu's threshold over all pixels of B; tau_min = 2/255)
    M = 1[B > tau]

Otsu separates the near-zero soft-tissue-only pixels from the bone pixels without a hand-tuned
level, on 8-bit data and on the phantom alike; the floor tau_min keeps a bone-free image (or one
with only quantisation noise in X - S) from getting a mask of noise. A fixed threshold can be
chosen instead (``mask_threshold: 0.02``); Config holds both settings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .msssim import FORMS, ms_ssim, ms_ssim_map


def msssim_loss(pred: torch.Tensor, target: torch.Tensor, form: str) -> torch.Tensor:
    """Eq. (6): L_MS-SSIM = 1 - MS-SSIM(S_hat, S), averaged over pixels and the batch.

    ``form="paper"``: MS-SSIM(j) per pixel, eq. (5) with alpha = 1 (``msssim.ms_ssim_map``), and the
    mean of 1 - MS-SSIM(j) over pixels, as eq. (6) writes it. ``form="wang"``: 1 - MS-SSIM per image
    in Wang et al. 2003's form (``msssim.ms_ssim``, equal to torchmetrics' in values and gradients).
    Both in float32 whatever the autocast state, data range 1, never NaN.
    """
    if form == "paper":
        return 1.0 - ms_ssim_map(pred, target).mean()
    if form == "wang":
        return 1.0 - ms_ssim(pred, target).mean()
    raise ValueError(f"MS-SSIM form must be one of {FORMS}, not {form!r}")


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (2): L_MSE, the mean squared error over all pixels."""
    return F.mse_loss(pred.float(), target.float())


def seg_loss(mask_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. (7): L_seg, binary cross-entropy of the predicted bone mask (from logits)."""
    return F.binary_cross_entropy_with_logits(mask_logits.float(), mask.float())


def total_loss(s_hat, s, cfg, mask_logits=None, mask=None, *, seg: bool = True):
    """Eq. (1): L = L_MS-SSIM + lm * L_MSE + ls * L_seg, with the terms ``cfg.variant`` uses.

    ``cfg`` (a config.Config) gives the weights lm and ls, the MS-SSIM form, and which terms the
    variant has (``cfg.use_msssim``, ``cfg.use_seg``; models.ABLATION). ``seg=False`` leaves L_seg
    out whatever the variant (validation: the mask head does not run in eval mode).
    Returns (L, dict of the individual terms, detached: they stay on the device, so logging them
    costs no host synchronisation per step).
    """
    terms = {"mse": mse_loss(s_hat, s)}
    loss = cfg.lm * terms["mse"]
    if cfg.use_msssim:
        terms["msssim"] = msssim_loss(s_hat, s, cfg.msssim_form)
        loss = loss + terms["msssim"]
    if cfg.use_seg and seg:
        if mask_logits is None or mask is None:
            raise ValueError("the segmentation term needs mask logits (model in training mode) and a mask")
        terms["seg"] = seg_loss(mask_logits, mask)
        loss = loss + cfg.ls * terms["seg"]
    return loss, {k: v.detach() for k, v in terms.items()}


def distilled_target(s: torch.Tensor, teacher_mean: torch.Tensor, weight: float) -> torch.Tensor:
    """The training target when a model learns from others as well as from S (distillation):

        S~ = (1 - w) S + w * (1 / T) sum_{t=1..T} S_hat_t

    S_hat_t: teacher t's estimate on the same (augmented) radiograph X, ``teacher_mean`` their mean;
    w = ``weight`` (Config.distill) in [0, 1]. An average of several trained networks is closer to S
    than each of them (their errors are partly independent), and one network trained toward it can
    keep part of that gain at the cost of one forward pass. w = 0 is the paper's target S. The mask M
    of eq. (7) stays the one made from S. Validation always scores against S itself."""
    return (1.0 - weight) * s + weight * teacher_mean


# ------------------------------------------------------------------------------------------------
# The bone image and the bone mask M (the target of eq. 7)
# ------------------------------------------------------------------------------------------------


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


def mask_thresholds(x: torch.Tensor, s: torch.Tensor, threshold: str | float, min_threshold: float) -> torch.Tensor:
    """The per-image threshold tau of the mask rule, shape (N,): ``threshold`` "otsu" (floored at
    ``min_threshold``) or a fixed level (Config.mask_threshold, Config.mask_min_threshold)."""
    b = bone_image(x, s)
    if threshold == "otsu":
        taus = [max(otsu_threshold(bi), min_threshold) for bi in b]
    else:
        taus = [float(threshold)] * b.shape[0]
    return torch.tensor(taus, dtype=x.dtype)


def bone_mask(x: torch.Tensor, s: torch.Tensor, threshold: str | float, min_threshold: float) -> torch.Tensor:
    """Binary bone mask M = 1[X - S > tau] for images of shape (N, 1, H, W), as float 0/1."""
    taus = mask_thresholds(x, s, threshold, min_threshold).to(x.device)
    return (bone_image(x, s) > taus.view(-1, 1, 1, 1)).to(x.dtype)
