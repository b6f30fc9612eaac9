"""The code beside the paper: a function's own source, and one-line checks computed by the code the
paper's words describe: each of eq. (1)-(7) on a phantom pair (notebook 02), the network of the run's
family beside §2.1-2.2 (notebook 02), the bone mask of §3.1 (notebook 01).

Each check states what must hold and the value the code gives, so a reader sees the equation, the
code and a number that ties them together (as harvardnlp's annotated transformer does).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import losses, metrics, models
from ..msssim import ms_ssim_map


def source(fn) -> str:
    """The source of ``fn`` as a Markdown code block (read from the module, never re-typed)."""
    return f"```python\n{inspect.getsource(fn).rstrip()}\n```"


@dataclass(frozen=True)
class Check:
    equation: str  # "(2)", ... (an equation: printed "eq. (2)"), or a label: "§2.1", "M"
    claim: str  # what must hold, in words
    value: float  # what the code computes
    expected: float
    tolerance: float

    @property
    def holds(self) -> bool:
        return abs(self.value - self.expected) <= self.tolerance

    def __str__(self) -> str:
        label = f"eq. {self.equation}" if self.equation.startswith("(") else self.equation
        return f"{label}: {self.claim}: {self.value:.4g} (expected {self.expected:.4g}) -> {'holds' if self.holds else 'FAILS'}"


def equation_checks(x: torch.Tensor, s: torch.Tensor, m: torch.Tensor, cfg) -> list[Check]:
    """One check per equation on a pair (X, S) with its mask M (tensors (1, 1, H, W) in [0, 1]), using
    the library's own functions; ``cfg`` gives the loss weights of eq. (1) (a variant with every term)."""
    perfect_logits = (m * 2 - 1) * 40.0  # a head that is certain and right: sigmoid(+-40)
    mse_identity = float(losses.mse_loss(x, s))
    total, terms = losses.total_loss(s, s, cfg, perfect_logits, m)
    return [
        Check("(1)", "L of the perfect estimate S_hat = S with a certain, right mask head", float(total), 0.0, 1e-4),
        Check("(2)", "L_MSE of the identity S_hat = X equals 10^(-PSNR/10) of the identity", mse_identity,
              10 ** (-float(metrics.psnr(x, s)) / 10), 1e-9),
        Check("(3)-(4)", "SSIM(S, S) = l * cs = 1", float(metrics.ssim(s, s)), 1.0, 1e-5),
        Check("(5)", "MS-SSIM(j) of S with itself is 1 at every pixel (its minimum)", float(ms_ssim_map(s, s).min()), 1.0, 1e-4),
        Check("(6)", "L_MS-SSIM(S, S) = mean of 1 - MS-SSIM(j) = 0", float(losses.msssim_loss(s, s, "paper")), 0.0, 1e-5),
        Check("(7)", "L_seg of a certain, right head against M", float(losses.seg_loss(perfect_logits, m)), 0.0, 1e-6),
        Check("(1)", "with S_hat = X: L = L_MS-SSIM + lm * L_MSE + ls * L_seg, term by term",
              float(losses.total_loss(x, s, cfg, perfect_logits, m)[0]),
              float(losses.msssim_loss(x, s, cfg.msssim_form)) + cfg.lm * mse_identity + cfg.ls * float(terms["seg"]), 1e-6),
    ]


# ------------------------------------------------------------------------------------------------
# The model beside the paper's words (notebook 02) and the bone mask (notebook 01)
# ------------------------------------------------------------------------------------------------

#: The variants' loss terms (models.ABLATION), said once for every family.
LOSS_OF_VARIANTS = (
    "**Loss**: eq. (1)-(7) of the paper (§2.3), each beside the function that implements it and a check. "
    "The four variants keep different terms: **AE** $\\mathcal{L}_{\\text{MSE}}$ only; **AE + MS-SSIM** drops "
    "$\\mathcal{L}_{\\text{seg}}$; **DAE** drops $\\mathcal{L}_{\\text{MS-SSIM}}$; **DAE + MS-SSIM** keeps all three."
)


def family_markdown(cfg) -> str:
    """The description of ``cfg.variant``'s family (its module's ``describe(cfg)``, else the family
    table's one line), then the loss terms of the variants."""
    module = models.family_module(cfg)
    fam = models.FAMILIES[models.get_variant(cfg.variant).family]
    text = module.describe(cfg) if hasattr(module, "describe") else f"**Architecture**: {fam.description}."
    return f"{text}\n\n{LOSS_OF_VARIANTS}"


@dataclass(frozen=True)
class Part:
    section: str  # of the paper: "§2.1"
    quote: str  # the paper's words
    code: object  # the class or function implementing them


def model_parts(cfg) -> list[Part]:
    """The paper's sentences on the architecture beside the code of ``cfg.variant``'s family that
    implements them (its module's ``PAPER_PARTS``; none for a family without it)."""
    module = models.family_module(cfg)
    return [Part(sec, quote, getattr(module, name)) for sec, quote, name in getattr(module, "PAPER_PARTS", ())]


def part_markdown(part: Part) -> str:
    """The paper's sentence as a quote, then the source of the code implementing it."""
    return f"> Paper {part.section}: *\"{part.quote}\"*\n\n`{part.code.__module__}.{part.code.__qualname__}`:\n\n{source(part.code)}"


def _conv_channels(module) -> list[int]:
    return [m.out_channels for m in module.modules() if isinstance(m, nn.Conv2d)]


def model_checks(cfg, x: torch.Tensor) -> dict[str, list[Check]]:
    """Checks of ``cfg.variant``'s network on a radiograph ``x`` (1, 1, H, W), keyed "encoder",
    "decoder", "model" (the parts notebook 02 shows): the paper's claims for the reproduced family,
    the residual form for the R- family; every family: the branch is off in eval mode."""
    torch.manual_seed(0)
    model = models.build_model(cfg).eval()
    size, v = x.shape[-1], models.get_variant(cfg.variant)
    with torch.no_grad():
        feats = model.encoder(x)
        f = feats[-1] if isinstance(feats, (list, tuple)) else feats
        s_hat, logits = model(x)
        model.train()
        train_logits = model(x)[1]
    side512 = 512 * f.shape[-1] / size
    checks = {"model": [Check("§2.2", "eval mode: the segmentation branch does not run (1 = mask logits None)", float(logits is None), 1.0, 0)]}
    if v.seg_head:
        checks["model"].append(Check("§2.1", "training mode: the branch gives one mask logit per input pixel (ratio)", train_logits.numel() / x.numel(), 1.0, 0))
    if v.family == models.REPRODUCED:
        ch = _conv_channels(model.encoder)
        doubling = [b / a for a, b in zip(ch, ch[1:])]
        checks["encoder"] = [
            Check("§2.1", f"conv channels {ch} (read from the model): layers not doubling, the last not kept", float(sum(r != 2 for r in doubling[:-1]) + (doubling[-1] != 1)), 0.0, 0),
            Check("§2.1", f"features {tuple(f.shape[1:])} at {size} px -> side at 512 px (by ratio; the paper's 128 x 128 x {ch[-1]})", side512, 128.0, 0),
        ]
        checks["decoder"] = [Check("§2.1", f"S_hat {tuple(s_hat.shape[1:])}: upsampling factor back to the input side", s_hat.shape[-1] / f.shape[-1], size / f.shape[-1], 0),
                             Check("§2.1", "S_hat in [0, 1] (sigmoid): largest distance outside", float((s_hat - s_hat.clamp(0, 1)).abs().max()), 0.0, 0)]
    elif hasattr(model, "bone"):  # a residual family: S_hat = clamp(X - B_hat)
        with torch.no_grad():
            b_hat = model.eval().bone(x)
        checks["encoder"] = [Check("ours", f"bottleneck {tuple(f.shape[1:])} at {size} px -> side at 512 px = 512 / 2**unet_depth (not the paper's 128)", side512, 512 / 2**cfg.unet_depth, 0)]
        checks["decoder"] = [Check("ours", "S_hat = clamp(X - B_hat, 0, 1): largest difference", float((s_hat - (x - b_hat).clamp(0, 1)).abs().max()), 0.0, 0),
                             Check("ours", "untrained, B_hat = 0: S_hat = X (the identity), largest difference", float((s_hat - x).abs().max()), 0.0, 0)]
    return checks


def mask_checks(x: torch.Tensor, s: torch.Tensor, m: torch.Tensor, cfg) -> list[Check]:
    """Checks that ``m`` is the bone mask of §3.1 for images (N, 1, H, W): 1 exactly where X - S exceeds
    each image's threshold tau, tau Otsu's level of X - S (floored at Config.mask_min_threshold)."""
    b = losses.bone_image(x, s)
    taus = losses.mask_thresholds(x, s, cfg.mask_threshold, cfg.mask_min_threshold)
    rule = (b > taus.view(-1, 1, 1, 1).to(b)).to(m.dtype)
    checks = [Check("M", "pixels where M differs from 1[X - S > tau]", float((rule != m).sum()), 0.0, 0),
              Check("M", "share of the pixels in M (a fraction)", float(m.mean()), float(rule.mean()), 0)]
    if cfg.mask_threshold == "otsu":
        checks.append(Check("Otsu", "tau: largest between-class variance of X - S over 255 levels / the variance at tau (>= 1 only by binning)",
                            max(_otsu_ratio(bi, max(t, 0.0)) for bi, t in zip(b, taus.tolist()) if t > cfg.mask_min_threshold) if (taus > cfg.mask_min_threshold).any() else 1.0, 1.0, 0.02))
    return checks


def _between_variance(v: np.ndarray, t: float) -> float:
    lo, hi = v[v <= t], v[v > t]
    return 0.0 if lo.size == 0 or hi.size == 0 else lo.size * hi.size / v.size**2 * (lo.mean() - hi.mean()) ** 2


def _otsu_ratio(b: torch.Tensor, tau: float) -> float:
    """Otsu's criterion computed directly on the pixel values (numpy, no histogram): the best
    between-class variance over 255 evenly spaced levels divided by the one at ``tau``."""
    v = b.detach().double().flatten().numpy()
    levels = np.linspace(v.min(), v.max(), 257)[1:-1]
    return max(_between_variance(v, t) for t in levels) / max(_between_variance(v, tau), 1e-300)
