"""Reading pairs: both layouts, any size and bit depth, polarity, and clear errors for bad input."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dae_lib.data import detect_polarity, find_pairs, load_folder
from dae_lib.radiograph import read_radiograph
from dae_lib.errors import DataError
from dae_lib.phantom import chest_phantom
from helpers import write_pair_folder


@pytest.mark.parametrize("layout", ["flat", "kaggle", "xs"])
def test_every_layout_pairs_by_case_id(tmp_path, layout):
    root, ids = write_pair_folder(tmp_path / layout, n=4, layout=layout)
    pairs = find_pairs(root)
    assert [p.case_id for p in pairs] == sorted(ids)
    assert all(p.x_path.name == p.s_path.name for p in pairs)


def test_resized_by_area_to_requested_size_and_canonical_polarity(pair_folder):
    root, ids = pair_folder  # 96 px files, stored inverted (bone dark), 8 bit
    data = load_folder(root, size=48)
    assert data.x.shape == (5, 1, 48, 48) and data.x.dtype == torch.float32
    assert data.polarity.stored == "inverted" and data.polarity.rule == "auto"
    # Canonical: bone bright, so X - S is >= 0 (up to 8-bit rounding) and the masks are on bone.
    assert (data.x - data.s).min() > -2 / 255
    x, s, b = chest_phantom(96, seed=0)
    ref = torch.nn.functional.avg_pool2d(x[None, None], 2)[0, 0]
    assert torch.allclose(data.x[0, 0], ref, atol=1 / 255)  # 2x2 area mean of the stored image
    assert data.m.sum() > 0


def test_polarity_clinical_and_override(tmp_path):
    root, _ = write_pair_folder(tmp_path / "c", n=3, inverted=False)
    data = load_folder(root, size=96)
    assert data.polarity.stored == "clinical"
    flipped = load_folder(root, size=96, polarity="inverted")
    assert flipped.polarity.rule == "override"
    assert torch.allclose(flipped.x, 1 - data.x)


def test_detect_polarity_rule_votes():
    x, s, _ = chest_phantom(64, seed=0)
    X, S = x[None, None], s[None, None]
    assert detect_polarity(X, S)[0] == "clinical"
    assert detect_polarity(1 - X, 1 - S)[0] == "inverted"


def test_sixteen_bit_files(tmp_path):
    root, _ = write_pair_folder(tmp_path / "d16", n=2, bits=16)
    data = load_folder(root, size=96)
    x, _, _ = chest_phantom(96, seed=0)
    assert torch.allclose(data.x[0, 0], x, atol=1e-4)


def test_a_read_radiograph_is_float_in_unit_range(pair_folder):
    root, ids = pair_folder
    a = read_radiograph(root / "JSRT" / f"{ids[0]}.png").pixels
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1


# --- bad input: one clear message naming the file --------------------------------------------


def test_corrupt_png_is_named(pair_folder):
    root, ids = pair_folder
    bad = root / "BSE_JSRT" / f"{ids[1]}.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match=str(bad)):
        load_folder(root, size=48)


def test_missing_partner_is_named(pair_folder):
    root, ids = pair_folder
    (root / "BSE_JSRT" / f"{ids[2]}.png").unlink()
    with pytest.raises(DataError, match=f"JSRT/{ids[2]}.png: no soft-tissue partner"):
        find_pairs(root)


def test_empty_folder(tmp_path):
    (tmp_path / "JSRT").mkdir()
    (tmp_path / "BSE_JSRT").mkdir()
    with pytest.raises(DataError, match="no images found"):
        find_pairs(tmp_path)
    with pytest.raises(DataError, match="expected JSRT/ and BSE_JSRT/"):
        find_pairs(tmp_path / "JSRT")
    with pytest.raises(DataError, match="does not exist"):
        find_pairs(tmp_path / "nowhere")


def test_size_mismatch_is_named(pair_folder):
    root, ids = pair_folder
    path = root / "BSE_JSRT" / f"{ids[0]}.png"
    Image.open(path).resize((80, 80)).save(path)
    with pytest.raises(DataError, match=f"{path}: size 80x80 differs"):
        load_folder(root, size=48)


@pytest.mark.parametrize("breakage", ["corrupt", "missing", "empty", "size"])
def test_cli_exits_nonzero_with_one_line_naming_the_file(tmp_path, breakage):
    root, ids = write_pair_folder(tmp_path / "data", n=4, size=64)
    target = root / "BSE_JSRT" / f"{ids[1]}.png"
    if breakage == "corrupt":
        target.write_bytes(b"not a png")
    elif breakage == "missing":
        target.unlink()
    elif breakage == "size":
        Image.open(target).resize((32, 32)).save(target)
    else:
        for p in list((root / "JSRT").iterdir()) + list((root / "BSE_JSRT").iterdir()):
            p.unlink()
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "dae_lib", "train", "--variant", "ae", "--profile", "smoke", "--image-size", "64",
         "--data", str(root), "--out", str(out), "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    expect = str(root / "BSE_JSRT") if breakage == "empty" else str(target if breakage != "missing" else root / "JSRT" / f"{ids[1]}.png")
    assert expect in errors[0]
    assert not out.exists()  # no half-written output


def test_twelve_bit_pair_loads_on_4095_exactly_as_suppress_reads_it(tmp_path):
    """16-bit files holding 12-bit values (the JSRT originals): the training loader divides by
    2^12 - 1, not 2^12, so the largest value reads 1.0, and its pixels equal what the suppression
    command's reader gives (one scale for training and for use)."""
    from dae_lib.data import _common_scale
    from dae_lib.radiograph import read_radiograph

    x, s, _ = chest_phantom(96, seed=0)
    px, ps = tmp_path / "x.png", tmp_path / "s.png"
    xv = np.rint(x.numpy() * 4095).astype(np.uint16)
    xv[0, 0] = 4095  # the largest 12-bit value
    Image.fromarray(xv).save(px)
    Image.fromarray(np.rint(s.numpy() * 4000).astype(np.uint16)).save(ps)
    rx, rs = read_radiograph(px), read_radiograph(ps)
    (ax, as_), note = _common_scale([rx, rs])
    assert ax.max() == 1.0 and "12 bits" in note
    assert np.array_equal(ax, rx.pixels) and np.array_equal(ax, xv / np.float32(4095))
    assert np.allclose(as_ * 4095, np.asarray(Image.open(ps)), atol=1e-3)


def _site_pairs(root, shifts, size=192):
    """A site's own pairs in the X/ + S/ layout: S re-rendered (a gamma), scaled and shifted as given."""
    from dae_lib.scoring.registration import warp

    truth = {}
    for i, (k, d) in enumerate(shifts):
        x, s, _ = chest_phantom(size, seed=60 + i)
        rendered = s**0.8
        moved = torch.nan_to_num(warp(rendered, k, d), nan=0.0)
        for img, sub in ((x, "X"), (moved, "S")):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(img.numpy() * 65535).astype(np.uint16)).save(root / sub / f"site{i}.png")
        truth[f"SITE{i}"] = rendered  # case IDs are upper case
    return truth


def test_register_pairs_aligns_each_soft_tissue_image_to_its_radiograph(tmp_path):
    truth = _site_pairs(tmp_path / "site", [(1.01, (3.0, -2.0)), (0.995, (-2.5, 1.5))])
    plain = load_folder(tmp_path / "site", 192, polarity="clinical")
    aligned = load_folder(tmp_path / "site", 192, polarity="clinical", register_pairs=True)
    inner = (slice(16, -16), slice(16, -16))
    for k, cid in enumerate(aligned.ids):
        err = lambda d: float((d.s[k, 0][inner] - truth[cid][inner]).abs().mean())  # noqa: E731
        assert err(aligned) < 0.5 * err(plain), cid


def test_register_pairs_names_a_pair_that_does_not_match(tmp_path):
    _site_pairs(tmp_path / "site", [(1.0, (1.0, 1.0)), (1.0, (0.0, 0.0))])
    other = chest_phantom(192, seed=99)[1]  # another patient's soft tissue for site1
    Image.fromarray(np.round(other.numpy() * 65535).astype(np.uint16)).save(tmp_path / "site" / "S" / "site1.png")
    with pytest.raises(DataError, match=r"site1\.png: does not match its radiograph"):
        load_folder(tmp_path / "site", 192, polarity="clinical", register_pairs=True)


def test_auto_polarity_refuses_when_the_tails_and_the_anatomy_disagree(tmp_path):
    """A site's S rendered unlike X (a grey curve and edge enhancement) fools the tails of X - S into
    "inverted" on clinical files; the radiographs' anatomy says clinical: the loader asks instead of
    training on pairs read the wrong way round. Set, the polarity is used as given."""
    from dae_lib.data import anatomy_votes
    from dae_lib.scoring.site_phantom import write_site_pairs

    write_site_pairs(tmp_path / "site", n=6, size=192)
    tails = load_folder(tmp_path / "site", 64, polarity="clinical", register_pairs=True)
    assert detect_polarity(tails.x, tails.s)[0] == "inverted"  # the trap: the tails alone read it wrong
    assert anatomy_votes(tails.x) == (0, 6)
    with pytest.raises(DataError, match=r"polarity unclear: the tails of X - S say inverted .* anatomy says clinical \(6 of 6\).*--polarity clinical"):
        load_folder(tmp_path / "site", 64, register_pairs=True)
    assert anatomy_votes(1 - tails.x) == (6, 0)  # stored inverted, the anatomy reads that too


def test_a_tie_of_the_tails_goes_to_the_anatomy_or_asks(monkeypatch):
    from dae_lib import data as data_module

    x = torch.stack([chest_phantom(128, seed=k)[0][None] for k in range(2)])
    monkeypatch.setattr(data_module, "detect_polarity", lambda x, s: ("clinical", 1, 1))
    assert data_module.auto_polarity(x, x, "here").stored == "clinical"
    assert data_module.auto_polarity(1 - x, 1 - x, "here").stored == "inverted"  # not the tie rule's default
    flat = torch.full_like(x, 0.5)  # no anatomy to read
    with pytest.raises(DataError, match=r"here: polarity unclear: the tails of X - S tie \(1 pairs each way\)"):
        data_module.auto_polarity(flat, flat, "here")
