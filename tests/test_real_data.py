"""The real BSE-JSRT folder (skipped where it is absent; CI has it beside the checkout)."""
import pytest

from conftest import real_data
from dae_lib import metrics
from dae_lib.data import find_pairs, load_folder
from dae_lib.paths import SHARED_DATA

pytestmark = [real_data, pytest.mark.real_data]


@pytest.fixture(scope="module")
def real512():
    return load_folder(SHARED_DATA, size=512)


def test_all_128_pairs_found():
    pairs = find_pairs(SHARED_DATA)
    assert len(pairs) == 128
    assert sum(p.case_id.startswith("JPCLN") for p in pairs) == 36


def test_polarity_detected_as_inverted_and_bone_bright_after_loading(real512):
    assert real512.polarity.stored == "inverted" and real512.polarity.votes_inverted >= 120
    b = real512.x - real512.s
    assert b.mean() > 0  # bone adds brightness in clinical polarity


def test_identity_baseline_matches_the_readme(real512):
    p = metrics.psnr(real512.x, real512.s).mean().item()
    s = metrics.ssim(real512.x, real512.s).mean().item()
    assert 37.3 < p < 38.3  # README: ~37.8 dB
    assert 0.98 < s < 0.99  # README: ~0.986


def test_masks_cover_ribs_not_the_whole_lung(real512):
    frac = real512.m.mean(dim=(1, 2, 3))
    assert (frac > 0.01).all() and (frac < 0.3).all()


def test_area_resize_to_256():
    d = load_folder(SHARED_DATA, size=256)
    assert d.x.shape == (128, 1, 256, 256)
