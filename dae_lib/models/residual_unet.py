"""The improved family ("R-"): a residual U-Net that estimates the bone layer and subtracts it.

Not the paper's network (that is ``models/dae.py``, reproduced as printed). What is changed, and why:

- **Residual output.** The network estimates the bone layer B_hat and returns
  S_hat = clamp(X - B_hat, 0, 1), X = B + S solved for S. The paper's decoder must redraw the whole
  soft-tissue image from 128 x 128 features; here the identity S_hat = X is the starting point
  (B_hat = 0 at initialisation, the last layer starts at zero), so the model begins at the
  do-nothing baseline and only has to learn what the bones add.
- **Skip connections** (U-Net): every encoder level passes its full-resolution features to the
  decoder level of the same size, so fine soft-tissue detail (vessels, nodules) never has to pass
  through the bottleneck.
- **Bilinear upsampling + 3x3 convolution** instead of stride-2 transposed convolutions, which
  leave a checkerboard pattern in the paper's network.

    X (N,1,H,W) --encoder: depth x [2 conv, 2x2 max-pool]--> bottleneck (2 conv)
                 --decoder: depth x [upsample, concat skip, 2 conv]--> 1x1 conv --> B_hat
    S_hat = clamp(X - B_hat, 0, 1)
    bone-segmentation head (DAE variants, training only): a second decoder of the same shape on the
    same encoder features and skips --> mask logits. It never runs in eval mode, so inference costs
    what the plain R-AE costs.

Widths: ``width`` at the first level, doubling per level up to ``8 * width`` (the bottleneck stays
at ``8 * width``). Each conv is 3x3 + BatchNorm + ReLU. Inputs of any size work: they are padded
(reflect) to a multiple of 2**depth and the output is cropped back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + BatchNorm + ReLU layers."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


def level_widths(width: int, depth: int) -> list[int]:
    """Channels per encoder level, then the bottleneck: width * 2**i, capped at 8 * width."""
    return [width * min(2**i, 8) for i in range(depth + 1)]


class Encoder(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        chans = [1, *widths]
        self.levels = nn.ModuleList(_block(chans[i], chans[i + 1]) for i in range(len(widths)))

    def forward(self, x) -> list[torch.Tensor]:
        """The features of every level, finest first; the last one is the bottleneck."""
        feats = []
        for i, level in enumerate(self.levels):
            x = level(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Upsample, concatenate the skip of the same size, two convs; a 1x1 conv to one channel."""

    def __init__(self, widths: list[int]):
        super().__init__()
        rev = widths[::-1]  # bottleneck first
        self.ups = nn.ModuleList(nn.Conv2d(rev[i], rev[i + 1], 3, padding=1) for i in range(len(rev) - 1))
        self.blocks = nn.ModuleList(_block(2 * rev[i + 1], rev[i + 1]) for i in range(len(rev) - 1))
        self.out = nn.Conv2d(widths[0], 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for up, block, skip in zip(self.ups, self.blocks, feats[-2::-1]):
            x = up(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)


class ResidualUNet(nn.Module):
    """S_hat = clamp(X - B_hat, 0, 1) with a U-Net estimating B_hat (+ a bone-mask head when ``seg_head``).

    ``forward`` returns ``(s_hat, mask_logits)``; ``mask_logits`` is None in eval mode or without
    the head. ``bone(x)`` gives B_hat itself (the removed bone component).
    """

    def __init__(self, width: int, depth: int, seg_head: bool = False):
        super().__init__()
        widths = level_widths(width, depth)
        self.depth = depth
        self.encoder = Encoder(widths)
        self.bone_decoder = Decoder(widths)
        self.bone_seg = Decoder(widths) if seg_head else None
        nn.init.zeros_(self.bone_decoder.out.weight)  # start at B_hat = 0: the identity S_hat = X
        nn.init.zeros_(self.bone_decoder.out.bias)

    def _pad(self, x):
        m = 2**self.depth
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        return (F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x), (h, w)

    def _features(self, x):
        xp, (h, w) = self._pad(x)
        return self.encoder(xp), (h, w)

    def bone(self, x: torch.Tensor) -> torch.Tensor:
        """B_hat, the bone layer the model removes (signed, same size as x)."""
        feats, (h, w) = self._features(x)
        return self.bone_decoder(feats)[..., :h, :w]

    def mask_logits(self, x):
        """The segmentation head's output for ``x`` whatever the mode (for scoring the head; inference
        never calls it). Raises without a head."""
        if self.bone_seg is None:
            raise ValueError("this model has no bone-segmentation head")
        feats, (h, w) = self._features(x)
        return self.bone_seg(feats)[..., :h, :w]

    def forward(self, x):
        feats, (h, w) = self._features(x)
        b_hat = self.bone_decoder(feats)[..., :h, :w]
        s_hat = (x - b_hat.to(x.dtype)).clamp(0, 1)
        logits = self.bone_seg(feats)[..., :h, :w] if (self.bone_seg is not None and self.training) else None
        return s_hat, logits


def build(cfg, seg_head: bool) -> ResidualUNet:
    """The family's builder (see models/__init__.py): widths and depth from ``cfg.unet_width`` and ``cfg.unet_depth``."""
    return ResidualUNet(cfg.unet_width, cfg.unet_depth, seg_head=seg_head)


#: What notebook 02 shows of this family: the paper's sentence (§2.1, §2.2) this family departs
#: from, then the code that replaces it (a name in this module; reporting.annotate reads its source).
PAPER_PARTS = (
    ("§2.1", "the encoder consists of 4 convolutional layers, where we progressively down-sample the spatial "
     "resolution via max-pooling operations and increasing the number of channels by a factor of 2 at each layer "
     "except the last one", "Encoder"),
    ("§2.1", "During the decoding phase, we up-sample the spatial resolution through deconvolution layers to "
     "reconstruct a high resolution image", "Decoder"),
    ("§2.1-2.2", "two separate decoder branches: a soft-tissue image estimator [...] and a bone segmentation module "
     "[...] the bone segmentation branch is an auxiliary branch for training that is turned off during inference",
     "ResidualUNet"),
)


def describe(cfg) -> str:
    """This family's network and training in a few Markdown lines, with ``cfg``'s values (notebook 02)."""
    w = level_widths(cfg.unet_width, cfg.unet_depth)
    return (
        "**Architecture (the R- family: improved, not the paper's).** A residual U-Net estimates the bone layer "
        "$\\hat B$ and subtracts it: $\\hat S = \\mathrm{clamp}(X - \\hat B, 0, 1)$, starting at the identity "
        f"$\\hat S = X$. Its encoder has {cfg.unet_depth} levels of two 3 x 3 convolutions, each followed by a 2 x 2 "
        f"max-pooling, then a bottleneck (channels {', '.join(map(str, w[:-1]))}, bottleneck {w[-1]}: H x W -> "
        f"H/{2**cfg.unet_depth} x W/{2**cfg.unet_depth} x {w[-1]}); the decoder upsamples bilinearly and concatenates "
        "the encoder's features of the same size (skip connections). Two decoders read the encoder:\n\n"
        "* the **bone estimator**: $\\hat B$, hence $\\hat S$ (no sigmoid);\n"
        "* the **bone-segmentation head** (R-DAE variants): a decoder of the same shape giving mask logits "
        "$\\hat M$, in training only, as the paper's branch.\n\n"
        f"**Training**: {cfg.optimizer} at lr {cfg.lr:g} (weight decay {cfg.weight_decay:g}), schedule "
        f"{cfg.schedule}; MS-SSIM form {cfg.msssim_form} (the paper states none of these)."
    )
