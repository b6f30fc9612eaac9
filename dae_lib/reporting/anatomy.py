"""Where in the chest: the lung fields, and where an estimate removes bone or errs.

BSE-JSRT's soft-tissue images suppress the ribs and clavicles *inside the lung fields*; outside them
(spine, scapulae, the ribs beyond the lung borders) the bone stays in the targets. A model trained
on them learns to remove bone over the lungs only, and the functions here measure that: the share of
the bone an estimate removes that lies over the lungs, and the share of its error that lies outside
the bone mask (where S_hat should simply equal X). Used by notebook 04's figures (``lung_fields``
places Fig. 3's patch) and by the exercises of notebooks 04-06.

Every function takes float tensors (N, 1, H, W) in [0, 1], clinical polarity, and returns one value
per image (float64, shape (N,)).
"""
from __future__ import annotations

import torch

from ..metrics import region_bsr
from ..phantom import gaussian_blur


def lung_fields(s: torch.Tensor) -> torch.Tensor:
    """The lung fields of each image as a 0/1 mask (N, 1, H, W): the pixels of the soft-tissue image
    darker than its median (aerated lung in clinical polarity; this leaves out the mediastinum, the
    spine and the bright abdomen). A rule, not a segmentation: it also takes in the dark air around
    a phantom or a collimated radiograph, where there is no bone to remove."""
    median = s.flatten(1).median(dim=1).values.view(-1, 1, 1, 1)
    return (s < median).to(s.dtype)


def _share(energy: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    e = energy.double()
    total = e.sum(dim=(1, 2, 3))
    return torch.where(total > 0, (e * region.double()).sum(dim=(1, 2, 3)) / total.clamp(min=1e-300), torch.full_like(total, float("nan")))


def removed_bone_in_lungs(x: torch.Tensor, s_hat: torch.Tensor, lungs: torch.Tensor) -> torch.Tensor:
    """Share of the removed bone energy, sum (X - S_hat)^2, that lies over the lung fields: 1 when
    an estimate removes bone only there. With S instead of S_hat: where the target's bone is."""
    return _share((x - s_hat) ** 2, lungs)


def error_outside_mask(s_hat: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of the squared error sum (S_hat - S)^2 outside the bone mask M, where there was no bone
    to remove: near 0 for an estimate that errs only on bone (as doing nothing does), near the
    share of non-bone pixels for one that redraws the whole image."""
    return _share((s_hat - s) ** 2, 1 - mask)


def bone_suppressed_by_region(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor, lungs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The bone suppression ratio (metrics.region_bsr) inside the lung fields and outside them."""
    return {"lungs": region_bsr(s_hat, s, x, lungs), "outside the lungs": region_bsr(s_hat, s, x, 1 - lungs)}


def worse_than_identity(s_hat: torch.Tensor, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Share of the pixels where the estimate is further from S than the radiograph is,
    |S_hat - S| > |X - S|: where doing nothing would have been better. A mean metric can beat the
    identity while most pixels lose to it (those without bone, where X = S already)."""
    worse = ((s_hat.double() - s.double()).abs() > (x.double() - s.double()).abs()).double()
    return worse.mean(dim=(1, 2, 3))


#: The regions of ``error_budget``: the bone mask, the lung fields outside it, the rest.
REGIONS = ("bone", "lungs, no bone", "elsewhere")
#: The spatial frequency bands of ``error_budget``: Gaussian sigmas in px of a 512 px image that
#: separate fine detail (rib edges, below the first), rib-sized structure (between) and the coarse
#: rest (rib interiors and shading, above the second).
BAND_SIGMAS = (2.0, 8.0)
#: Their names, as ``error_budget`` keys them: fine, middle, coarse.
BANDS = (f"fine (< {BAND_SIGMAS[0]:g} px)", f"middle ({BAND_SIGMAS[0]:g}-{BAND_SIGMAS[1]:g} px)", f"coarse (> {BAND_SIGMAS[1]:g} px)")


def error_budget(s_hat: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Where the remaining error |S_hat - S|^2 lies, per image, as shares (each group sums to 1):

    - by region: the bone mask M ("bone"), the lung fields outside it ("lungs, no bone") and the rest
      ("elsewhere": mediastinum, spine, abdomen, outside the body);
    - by spatial frequency: the residual r = S_hat - S split by Gaussian blurs G_a, G_b (BAND_SIGMAS,
      scaled with the image) into fine r - G_a r, middle G_a r - G_b r and coarse G_b r; each band's
      energy as a share of the three bands' sum (the bands are not exactly orthogonal)."""
    r = (s_hat.double() - s.double())
    e = r**2
    lungs = lung_fields(s).double()
    m = mask.double()
    shares = dict(zip(REGIONS, (_share(e, m), _share(e, lungs * (1 - m)), _share(e, (1 - lungs) * (1 - m)))))
    px = s.shape[-1] / 512
    a, b = (gaussian_blur(r, sigma * px) for sigma in BAND_SIGMAS)
    bands = dict(zip(BANDS, (r - a, a - b, b)))
    energy = {k: (v**2).sum(dim=(1, 2, 3)) for k, v in bands.items()}
    total = sum(energy.values()).clamp(min=1e-300)
    return shares | {k: v / total for k, v in energy.items()}
