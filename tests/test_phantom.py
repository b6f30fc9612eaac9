"""The synthetic chest phantom: eq. (1) exactly, seeded, any size, anatomy where it belongs."""
import pytest
import torch

from dae_lib.phantom import chest_phantom, phantom_set


@pytest.mark.parametrize("size", [64, 100, 256])
def test_x_equals_s_plus_b_in_unit_range(size):
    x, s, b = chest_phantom(size, seed=7)
    assert x.shape == s.shape == b.shape == (size, size)
    assert torch.equal(x - s, b)
    assert b.min() >= 0 and x.min() >= 0 and x.max() <= 1 and s.min() >= 0
    assert b.max() > 0.03  # there is bone to suppress


def test_seeded_and_varied():
    a = chest_phantom(96, seed=1)
    assert all(torch.equal(u, v) for u, v in zip(a, chest_phantom(96, seed=1)))
    assert not torch.equal(a[0], chest_phantom(96, seed=2)[0])


def test_anatomy_lungs_dark_mediastinum_bright_bones_in_chest():
    x, s, b = chest_phantom(256, seed=0)
    lung_r = s[90:150, 50:90].mean()  # image left: patient's right lung
    lung_l = s[90:150, 170:206].mean()
    mediastinum = s[80:150, 120:136].mean()
    abdomen = s[230:250, 60:200].mean()
    outside = s[20:60, 0:10].mean()  # beside the neck: air
    assert lung_r < mediastinum - 0.1 and lung_l < mediastinum - 0.1
    assert abdomen > lung_r + 0.1 and outside < 0.1
    rows = b.sum(dim=1)
    assert rows[: int(0.85 * 256)].sum() > 0.9 * rows.sum()  # ribs and clavicles above the abdomen
    cols = (b > 0.005).float().mean(dim=0)
    assert cols[120:136].mean() > 0.8  # the spine runs down the midline


def test_phantom_set_shapes_and_ids():
    x, s, b, ids = phantom_set(3, 64, seed=0)
    assert x.shape == (3, 1, 64, 64) and ids == ["PHANTOM0000", "PHANTOM0001", "PHANTOM0002"]
