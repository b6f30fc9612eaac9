"""A stand-in model family for the tests: the whole contract of a family module (dae_lib/models/__init__.py).

One 3x3 conv layer of shared features, a 1x1 soft-tissue output and, with ``seg_head``, a 1x1
bone-mask head that runs in training mode only. Tiny enough to train in a second.
"""
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, width: int = 4, seg_head: bool = False):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.soft_tissue = nn.Conv2d(width, 1, 1)
        self.bone_seg = nn.Conv2d(width, 1, 1) if seg_head else None

    def forward(self, x):
        f = self.features(x)
        s_hat = torch.sigmoid(self.soft_tissue(f))
        logits = self.bone_seg(f) if (self.bone_seg is not None and self.training) else None
        return s_hat, logits


def build(cfg, seg_head: bool) -> Tiny:
    return Tiny(width=4, seg_head=seg_head)
