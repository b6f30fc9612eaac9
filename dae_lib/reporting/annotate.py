"""The code beside each equation (notebook 02): a function's own source, and a one-line check of
each of eq. (1)-(7) on a phantom pair, computed by the functions that implement them.

Each check states what must hold and the value the code gives, so a reader sees the equation, the
code and a number that ties them together (as harvardnlp's annotated transformer does).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from .. import losses, metrics
from ..msssim import ms_ssim_map


def source(fn) -> str:
    """The source of ``fn`` as a Markdown code block (read from the module, never re-typed)."""
    return f"```python\n{inspect.getsource(fn).rstrip()}\n```"


@dataclass(frozen=True)
class Check:
    equation: str  # "(2)", ...
    claim: str  # what must hold, in words
    value: float  # what the code computes
    expected: float
    tolerance: float

    @property
    def holds(self) -> bool:
        return abs(self.value - self.expected) <= self.tolerance

    def __str__(self) -> str:
        return f"eq. {self.equation}: {self.claim}: {self.value:.6g} (expected {self.expected:.6g}) -> {'holds' if self.holds else 'FAILS'}"


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
