"""Model families and the paper's four-way ablation: which networks exist, how each is trained.

A **family** is an architecture, written as one module that exposes

    build(cfg, seg_head: bool) -> nn.Module

whose model maps radiographs (N, 1, H, W) in [0, 1] (clinical polarity) to ``(s_hat, mask_logits)``:
``s_hat`` the soft-tissue estimate in [0, 1], ``mask_logits`` the bone-segmentation head's output in
training mode, and None in eval mode or without the head (the head never runs at inference). A model
with a head also has ``mask_logits(x)``, the head's output in any mode, used only to score the head
(Dice against the test masks).

Every family is trained in the paper's four ways (``ABLATION``): with or without the
bone-segmentation head on the shared encoder (architecture), with or without the MS-SSIM term of
the loss. A **variant** is one family in one of those four ways; its name and label carry the
family's prefix, so the family shows at a glance in every table, figure and folder name.

Adding a family: write its module, add one entry to ``FAMILIES``. The module may also define
``describe(cfg)`` (its network and training in Markdown, with the config's values) and
``PAPER_PARTS`` (the paper's sentences beside the names of the code that implements them); notebook
02 shows both (``reporting.annotate.family_markdown``, ``model_parts``). Everything else (configuration,
training, evaluation, Table 1, figures, the benchmark) reaches models through ``build_model``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class Family:
    module: str  # importable module with build(cfg, seg_head)
    prefix: str  # of its variant names ("" for the reproduced family, e.g. "r_" for a residual family)
    label_prefix: str  # of its labels ("" for the paper's, e.g. "R-")
    description: str
    #: Config values of this family that differ from the paper-protocol defaults (config.Config);
    #: a profile's section named after the family, and explicit settings, still override them.
    defaults: dict = field(default_factory=dict)


#: The family of the reproduced four: the paper's network, kept exactly the paper's. (Elsewhere
#: "paper" names only what the paper itself says: its profile, its MS-SSIM form, its Table 1.)
REPRODUCED = "reproduced"

#: The model families, by key (``--family``).
#: The residual family's settings were chosen on the validation part of BSE-JSRT at the quick
#: profile (256 px, 30 epochs, width 8; ``python -m dae_lib.studies.sweep``, rows in results/sweep.csv;
#: best-epoch validation PSNR, one seed each; identity 37.95 dB on those 11 cases):
#:   lr 1e-3 -> 44.01 dB, 3e-3 -> 43.90 dB            (R-AE; AdamW, warm-up + cosine, weight decay 1e-4)
#:   lm 1 -> 43.94 dB, lm 100 -> 44.28 dB               (R-AE + MS-SSIM: weight of L_MSE beside L_MS-SSIM)
#:   ls 1e-3 -> 44.12 dB, ls 1e-2 -> 44.00 dB (lm 1)    (R-DAE: weight of L_seg)
#: so lr 1e-3, lm 100 and ls 0.1 (= 1e-3 of L_MSE's weight, the ratio that won). The differences
#: (<= 0.35 dB) are within what one seed can say; every choice beats the identity by ~6 dB.
#: Its MS-SSIM term is Wang's per-image form (msssim.ms_ssim), with which it was tuned and released;
#: the paper's per-pixel form does not change it on validation (R-AE + MS-SSIM, 30 epochs: 44.07 dB
#: paper form, 44.10 dB Wang's; results/sweep.csv).
FAMILIES: dict[str, Family] = {
    REPRODUCED: Family("dae_lib.models.dae", "", "", "the paper's DAE: plain conv encoder, deconvolution decoders, sigmoid output"),
    "residual": Family(
        "dae_lib.models.residual_unet", "r_", "R-", "improved: residual U-Net, S_hat = X - B_hat, skip connections",
        defaults=dict(
            optimizer="adamw", schedule="cosine", lr=1e-3, weight_decay=1e-4, lm=100.0, ls=0.1, msssim_form="wang",
        ),
    ),
}


@dataclass(frozen=True)
class Ablation:
    label: str
    seg_head: bool  # architecture: the bone-segmentation head on the shared encoder (training only)
    msssim: bool  # loss: the L_MS-SSIM term of eq. (1)


#: The paper's four-way ablation (suffix of the variant name -> what it keeps). L_MSE is always in
#: the loss, and L_seg exactly when there is a segmentation head.
ABLATION: dict[str, Ablation] = {
    "ae": Ablation("AE", seg_head=False, msssim=False),
    "ae_msssim": Ablation("AE + MS-SSIM", seg_head=False, msssim=True),
    "dae": Ablation("DAE", seg_head=True, msssim=False),
    "dae_msssim": Ablation("DAE + MS-SSIM", seg_head=True, msssim=True),
}


@dataclass(frozen=True)
class Variant:
    name: str  # e.g. "dae_msssim": config files, run folders, the command line
    label: str  # e.g. "DAE + MS-SSIM": tables and figures
    family: str  # key of FAMILIES: the architecture
    ablation: str  # key of ABLATION
    seg_head: bool  # the model has the segmentation head, and the loss its L_seg term
    msssim: bool


def variants(family: str | None = None) -> dict[str, Variant]:
    """Every variant (of one family, or of all), by name, in table order: family, then ablation."""
    out = {}
    for fname, fam in FAMILIES.items():
        if family not in (None, fname):
            continue
        for key, abl in ABLATION.items():
            name = fam.prefix + key
            out[name] = Variant(name, fam.label_prefix + abl.label, fname, key, abl.seg_head, abl.msssim)
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; choose one of {sorted(FAMILIES)}")
    return out


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a ConfigError listing the known ones otherwise."""
    table = variants()
    if name not in table:
        raise ConfigError(f"unknown variant {name!r}; choose one of {sorted(table)}")
    return table[name]


def label_of(name: str) -> str:
    return get_variant(name).label


def family_module(cfg):
    """The module of ``cfg.variant``'s family (its ``build``, and ``describe`` / ``PAPER_PARTS`` where it has them)."""
    return importlib.import_module(FAMILIES[get_variant(cfg.variant).family].module)


def build_model(cfg):
    """The untrained network of ``cfg.variant``: its family's ``build(cfg, seg_head)``."""
    return family_module(cfg).build(cfg, seg_head=get_variant(cfg.variant).seg_head)


def model_summary(cfg) -> str:
    """Shapes and sizes of ``cfg.variant``'s network at ``cfg.image_size`` (what notebook 02 prints):
    input, encoder output (the deepest features), estimate, and that eval mode runs no mask head."""
    model = build_model(cfg).eval()
    x = torch.zeros(1, 1, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        features = model.encoder(x)
        features = features[-1] if isinstance(features, (list, tuple)) else features
        s_hat, mask_logits = model(x)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return (
        f"{cfg.variant}: X {tuple(x.shape)} -> features {tuple(features.shape)} -> S_hat {tuple(s_hat.shape)}; "
        f"mask logits in eval mode: {mask_logits}\n"
        f"parameters: {n(model):,} (encoder {n(model.encoder):,})"
    )
