"""The Disentanglement AutoEncoder: a shared encoder, a soft-tissue estimator, a bone-mask branch.

    X (N,1,512,512) --encoder--> F (N,64,128,128) --soft-tissue estimator--> S_hat (N,1,512,512)
                                                   \\-bone-segmentation branch-> M_hat logits (training only)

- Encoder: four 3x3 conv layers (channels 16, 32, 64, 64: doubling at each layer but the last),
  2x2 max-pooling after the first two, so 512 -> 128.
- Soft-tissue estimator: 3x3 deconvolutions (transposed convolutions) mirroring the encoder, two
  of them with stride 2 back to the input size, and a 1x1 output layer with a sigmoid. It outputs S
  directly, as the paper describes (no residual X - B form).
- Bone-segmentation branch: a decoder of the same shape producing mask logits. It exists only to
  shape the shared features in training: in eval mode the model does not run it, so inference
  costs the same as the plain AE.
- AE: the same network without the branch (``seg_branch=False``).

This is the ``reproduced`` family of ``models.FAMILIES``: everything builds it through
``models.build_model(cfg)``, which calls ``build`` below. Inference goes through
``inference.predict``.

Every choice the paper leaves open (kernel size, BatchNorm + ReLU, sigmoid output) comes from
``config.Config``; its docstring gives the reasons.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _deconv(cin, cout, k, stride):
    if stride == 1:
        layer = nn.ConvTranspose2d(cin, cout, k, padding=k // 2, bias=False)
    else:  # exact 2x upsampling: out = (in - 1) * 2 - 2 * pad + k + output_padding
        layer = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1, bias=False)
    return nn.Sequential(layer, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Four conv layers with max-pooling after the first two: (N,1,H,W) -> (N,c4,H/4,W/4)."""

    def __init__(self, channels, k):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.layers = nn.Sequential(
            _conv(1, c1, k), nn.MaxPool2d(2),
            _conv(c1, c2, k), nn.MaxPool2d(2),
            _conv(c2, c3, k),
            _conv(c3, c4, k),
        )  # fmt: skip

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    """Deconvolutions mirroring the encoder back to full size, then a 1x1 conv to one channel."""

    def __init__(self, channels, k):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.layers = nn.Sequential(
            _deconv(c4, c3, k, 1),
            _deconv(c3, c2, k, 1),
            _deconv(c2, c1, k, 2),
            _deconv(c1, c1, k, 2),
            nn.Conv2d(c1, 1, 1),
        )

    def forward(self, f):
        return self.layers(f)


class DAE(nn.Module):
    """Shared encoder + soft-tissue estimator (+ bone-segmentation branch when ``seg_branch``).

    ``forward`` returns ``(s_hat, mask_logits)``: ``s_hat`` in [0, 1]; ``mask_logits`` is None
    in eval mode or without the branch. ``channels`` and ``kernel_size``: Config.channels and
    Config.kernel_size (``build`` passes them).
    """

    def __init__(self, channels, kernel_size, seg_branch: bool):
        super().__init__()
        self.encoder = Encoder(channels, kernel_size)
        self.soft_tissue = Decoder(channels, kernel_size)
        self.bone_seg = Decoder(channels, kernel_size) if seg_branch else None

    def mask_logits(self, x):
        """The bone-segmentation branch's output for ``x`` whatever the mode (for scoring the branch;
        inference never calls it). Raises for the AE, which has no branch."""
        if self.bone_seg is None:
            raise ValueError("this model has no bone-segmentation branch")
        return self.bone_seg(self.encoder(x))

    def forward(self, x):
        f = self.encoder(x)
        s_hat = torch.sigmoid(self.soft_tissue(f))
        mask_logits = self.bone_seg(f) if (self.bone_seg is not None and self.training) else None
        return s_hat, mask_logits


def build(cfg, seg_head: bool) -> DAE:
    """The family's builder (see models/__init__.py): the paper's network at ``cfg.channels`` and
    ``cfg.kernel_size``, with the bone-segmentation branch when ``seg_head``."""
    return DAE(cfg.channels, cfg.kernel_size, seg_branch=seg_head)



#: What notebook 02 shows of this family: the paper's sentence (§2.1, §2.2), then the code that
#: implements it (a name in this module; reporting.annotate reads its source).
PAPER_PARTS = (
    ("§2.1", "the encoder consists of 4 convolutional layers, where we progressively down-sample the spatial "
     "resolution via max-pooling operations and increasing the number of channels by a factor of 2 at each layer "
     "except the last one", "Encoder"),
    ("§2.1", "During the decoding phase, we up-sample the spatial resolution through deconvolution layers to "
     "reconstruct a high resolution image and decrease the number of channels to match with image dimension",
     "Decoder"),
    ("§2.1-2.2", "two separate decoder branches: a soft-tissue image estimator [...] and a bone segmentation module "
     "[...] the bone segmentation branch is an auxiliary branch for training that is turned off during inference",
     "DAE"),
)


def describe(cfg) -> str:
    """This family's network and training in a few Markdown lines, with ``cfg``'s values (notebook 02)."""
    c = cfg.channels
    return (
        f"**Architecture (the paper's DAE).** A shared encoder of four {cfg.kernel_size} x {cfg.kernel_size} convolution "
        f"layers ({', '.join(map(str, c))} channels: doubling at each layer but the last) with 2 x 2 max-pooling after "
        f"the first two turns an H x W radiograph into H/4 x W/4 x {c[-1]} features (the paper: 512 x 512 -> "
        f"128 x 128 x 64). Two decoders read them:\n\n"
        "* the **soft-tissue estimator**: deconvolutions back to the input size and a sigmoid output: $\\hat S$ directly;\n"
        "* the **bone-segmentation branch**: a decoder of the same shape giving mask logits $\\hat M$. It only shapes "
        "the shared features during training; at inference it is switched off, so the DAE costs exactly what the "
        "plain autoencoder (AE) costs.\n\n"
        f"**Training**: {cfg.optimizer} at lr {cfg.lr:g}, schedule {cfg.schedule} (the paper does not state its optimiser)."
    )
