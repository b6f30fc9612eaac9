"""The split: by case ID, deterministic, disjoint, 85/15, hashed; augmentation never sees test cases."""
import csv
import hashlib

import torch

from helpers import tiny_config
from dae_lib.augment import PairedAugment
from dae_lib.data import load_folder
from dae_lib.split import make_split, read_split_csv, split_indices, write_split_csv
from dae_lib.train import fit

JSRT_LIKE = [f"JPCLN{i:03d}" for i in range(1, 37)] + [f"JPCNN{i:03d}" for i in range(1, 93)]


def test_deterministic_and_order_independent():
    a = make_split(JSRT_LIKE, 0.15, 0.10, seed=0)
    b = make_split(list(reversed(JSRT_LIKE)), 0.15, 0.10, seed=0)
    assert a == b
    assert make_split(JSRT_LIKE, 0.15, 0.10, seed=1) != a


def test_disjoint_and_fractions():
    split = make_split(JSRT_LIKE, test_fraction=0.15, val_fraction=0.10, seed=0)
    assert set(split) == set(JSRT_LIKE)
    parts = {k: {i for i, v in split.items() if v == k} for k in ("train", "val", "test")}
    assert not (parts["train"] & parts["test"]) and not (parts["val"] & parts["test"]) and not (parts["train"] & parts["val"])
    n_test = len(parts["test"])
    assert n_test == round(0.15 * 36) + round(0.15 * 92)  # stratified: 5 + 14 = 19 of 128 (14.8 %)
    assert len(parts["val"]) == round(0.1 * 31) + round(0.1 * 78)
    assert any(i.startswith("JPCLN") for i in parts["test"]) and any(i.startswith("JPCNN") for i in parts["test"])


def test_split_csv_has_sha256_of_each_file(pair_folder, tmp_path):
    root, ids = pair_folder
    data = load_folder(root, size=48)
    split = make_split(data.ids, 0.15, 0.10, seed=0)
    from dae_lib.data import file_hashes

    path = write_split_csv(tmp_path / "split.csv", data.ids, split, data.files, file_hashes(data))
    assert read_split_csv(path) == split
    rows = list(csv.DictReader(open(path)))
    assert [r["case_id"] for r in rows] == data.ids
    for r in rows:
        assert r["split"] == split[r["case_id"]]
        assert r["x_sha256"] == hashlib.sha256(open(r["x_file"], "rb").read()).hexdigest()
        assert r["s_sha256"] == hashlib.sha256(open(r["s_file"], "rb").read()).hexdigest()


def test_augmentation_never_touches_validation_or_test_cases(tiny_data, tmp_path, monkeypatch):
    seen = []
    original = PairedAugment.forward

    def spy(self, x, s, m):
        seen.append(x.clone())
        return original(self, x, s, m)

    monkeypatch.setattr(PairedAugment, "forward", spy)
    cfg = tiny_config(variant="ae", epochs=2)
    res = fit(cfg, tmp_path / "run", data=tiny_data, progress=False)
    parts = split_indices(tiny_data.ids, res.split)
    assert seen, "augmentation was not called"
    batch_rows = torch.cat(seen)
    assert len(batch_rows) == 2 * len(parts["train"])
    for name in ("val", "test"):
        for k in parts[name]:
            assert not any(torch.equal(row, tiny_data.x[k]) for row in batch_rows), f"{name} case {tiny_data.ids[k]} augmented"
    for k in parts["train"]:
        assert sum(torch.equal(row, tiny_data.x[k]) for row in batch_rows) == 2  # once per epoch


def test_paired_augmentation_is_identical_on_x_s_and_m():
    from dae_lib.phantom import chest_phantom
    from dae_lib.losses import bone_mask

    x, s, b = chest_phantom(96, seed=0)
    X, S = x[None, None].repeat(4, 1, 1, 1), s[None, None].repeat(4, 1, 1, 1)
    M = bone_mask(X, S, "otsu", 2 / 255)
    torch.manual_seed(0)
    ax, as_, am = PairedAugment(rotation_deg=20, shift=0.1, shear_deg=10, zoom=(0.8, 1.2), hflip_p=0.5)(X, S, M)
    assert not torch.equal(ax, X)  # something happened
    assert not torch.equal(ax[0], ax[1])  # independently per case
    # The warp is linear, so X - S of the warped pair is the warped bone image: still >= 0 and the
    # warped mask sits on it.
    assert (ax - as_).min() > -1e-5
    assert set(am.unique().tolist()) <= {0.0, 1.0}
    bone = ax - as_
    assert bone[am.bool()].mean() > 5 * bone[~am.bool()].mean()
