"""Inference: soft-tissue estimates of a trained model for radiographs.

The one path for everything that runs a trained model: evaluation and Table 1, the figures, the
benchmark and the command for users' own radiographs. Models come out of run folders (or the
released model) through ``runs.load_trained`` / ``runs.load_model``; this module does not import
the training code.

    model = load_model(run_dir)            # runs.load_model: the run's architecture and weights, eval mode
    s_hat = predict(model, x)              # x: (N, 1, H, W) in clinical polarity, [0, 1]
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from .device import autocast, fastest, resolve_amp
from .data import resize_to


@contextmanager
def _eval_mode(model: torch.nn.Module):
    """Eval mode for the block; the model's own mode afterwards (training code may be calling)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.inference_mode()
def predict_masks(model: torch.nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor | None:
    """The segmentation head's binary bone masks (logit > 0) for ``x``, float32 on the CPU, in eval
    mode and float32; None for a model without a head. Only for scoring the head: the suppression
    itself (``predict``) never runs it."""
    if getattr(model, "bone_seg", None) is None or not hasattr(model, "mask_logits"):
        return None
    device = next(model.parameters()).device
    batch_size = batch_size or fastest(device)["infer_batch"]
    with _eval_mode(model):
        out = [(model.mask_logits(x[i : i + batch_size].to(device)) > 0).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else None


@torch.inference_mode()
def predict(
    model: torch.nn.Module, x: torch.Tensor, amp: str = "off", batch_size: int | None = None, channels_last: bool = True,
    on_device: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Soft-tissue estimates for radiographs ``x`` (N, 1, H, W) in clinical polarity, [0, 1].

    Runs the model in eval mode (so no segmentation branch) on its own device, ``batch_size``
    images at a time (None: the device's fastest, device.FASTEST), with channels-last inputs and, for ``amp`` "auto" or "bf16", bf16 autocast
    where the device supports it natively ("off": float32, what evaluation uses). Returns float32
    on the CPU (``on_device``: on the model's device, for work that goes on there, such as the
    validation of each epoch), clamped to [0, 1]. The model's mode is restored and its memory
    format left as it is.
    """
    device = next(model.parameters()).device
    amp_dtype = resolve_amp(amp, device)
    batch_size = batch_size or fastest(device)["infer_batch"]
    # One host tensor, each batch's result copied straight into it: no per-batch host copies to
    # concatenate (on the H200 the extra host copy and allocation cost more than the model itself).
    out = torch.empty(x.shape, dtype=torch.float32, device=device if on_device else "cpu")
    with _eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                s_hat = model(xb)[0]
            out[i : i + batch_size].copy_(s_hat.float().clamp(0, 1))
    return out


def suppress_full(model: torch.nn.Module, x: torch.Tensor, image_size: int, amp: str = "off") -> tuple[torch.Tensor, torch.Tensor]:
    """Soft tissue and bone of radiographs ``x`` (N, 1, H, W) in clinical polarity, [0, 1], at their
    own resolution (float32, CPU).

    The model sees ``x`` at its training size (``image_size``; area averaging down, bilinear up).
    Its bone estimate there, B_hat = X_small - S_hat_small, is resized back to H x W and removed
    from the full-resolution radiograph: S = clamp(X - B_hat_up, 0, 1), B = X - S. So detail finer
    than the model's grid (texture, noise, edges of soft tissue) passes through untouched; only the
    bone, a smooth component, is estimated at the coarser scale. At ``image_size`` itself this is
    exactly ``predict``.
    """
    x = x.float().cpu()
    small = resize_to(x, (image_size, image_size)).clamp(0, 1)
    bone_small = small - predict(model, small, amp)
    s = resize_to(bone_small, tuple(x.shape[-2:]))  # B_hat at full size (a new tensor, or bone_small itself: ours either way) ...
    s.neg_().add_(x).clamp_(0, 1)  # ... turned into S = clamp(X - B_hat_up, 0, 1) in place: one full-size copy less
    return s, x - s


class Averaged(torch.nn.Module):
    """Test-time averaging: the mean soft-tissue estimate of K models, S_hat = (1 / K) sum_k f_k(x),
    or with ``flip`` also of each on the mirror image, flipped back:
    S_hat = (1 / 2K) sum_k [f_k(x) + flip(f_k(flip(x)))]. It costs K forward passes of a network per
    radiograph (2K with ``flip``); the mean is taken before ``predict`` clamps to [0, 1]. Used to
    measure what an ensemble of seeds or mirror-image averaging would give (studies/v2.py
    ``averages``); no released model is one."""

    def __init__(self, models, flip: bool = False):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        self.flip = flip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        outs = [m(x)[0] for m in self.members]
        if self.flip:
            outs += [m(x.flip(-1))[0].flip(-1) for m in self.members]
        return (torch.stack(outs).mean(0),)
