"""The bone mask: Otsu on X - S (checked against scikit-image), floored, aligned with the bones."""
import pytest
import torch
from skimage.filters import threshold_otsu

from dae_lib.config import Config
from dae_lib.losses import bone_mask, mask_thresholds, otsu_threshold
from dae_lib.phantom import chest_phantom

RULE = (Config().mask_threshold, Config().mask_min_threshold)  # Otsu, floored at 2/255


def test_otsu_matches_scikit_image():
    _, _, b = chest_phantom(128, seed=4)
    g = torch.Generator().manual_seed(0)
    for v in (b, torch.rand(1000, generator=g) ** 2, torch.cat([torch.zeros(500), torch.ones(100)])):
        assert otsu_threshold(v) == pytest.approx(float(threshold_otsu(v.double().numpy())), abs=1e-9)


def test_mask_covers_the_bones_of_the_phantom():
    x, s, b = chest_phantom(128, seed=4)
    m = bone_mask(x[None, None], s[None, None], *RULE)[0, 0].bool()
    strong = b > 0.5 * b.max()
    assert m[strong].float().mean() > 0.95  # dense bone is in the mask
    assert (b[~m] < 0.5 * b.max()).all()  # nothing strong is missed
    assert (b[m] > 0).all()  # no soft-tissue-only pixel is called bone
    assert 0.03 < m.float().mean() < 0.5


def test_floor_gives_empty_mask_without_bone():
    _, s, _ = chest_phantom(64, seed=1)
    noise = (torch.rand(s.shape, generator=torch.Generator().manual_seed(0)) - 0.5) * (1 / 255)
    x = (s + noise)[None, None]
    assert bone_mask(x, s[None, None], *RULE).sum() == 0


def test_fixed_threshold_and_per_image_thresholds():
    x, s, b = chest_phantom(64, seed=2)
    X, S = torch.stack([x, x])[:, None], torch.stack([s, s])[:, None]
    taus = mask_thresholds(X, S, 0.02, RULE[1])
    assert taus.tolist() == pytest.approx([0.02, 0.02])
    assert torch.equal(bone_mask(X, S, 0.02, RULE[1])[0, 0], (b > 0.02).float())
