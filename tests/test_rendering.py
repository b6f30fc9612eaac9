"""Renderings as other devices make them (augment.Rendering, RenderAugment), the shifted validation
set (reporting/shifted.py), where the error lies (anatomy.error_budget) and how v2's candidate is
chosen (studies/v2.candidate_table): issue 23."""
import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dae_lib.augment import RANGE_SETS, RENDER_RANGES, SHIFTED, PairedAugment, RenderAugment, Rendering, random_rendering
from dae_lib.errors import InputError
from dae_lib.phantom import chest_phantom
from dae_lib.reporting.anatomy import BAND_SIGMAS, error_budget
from dae_lib.reporting.shifted import ORIGINAL, beats_on_every_family, renderings, shifted_rows, shifted_summary
from dae_lib.studies.v2 import candidate_table, replaces_default
from dae_lib.train import fit
from helpers import tiny_config


@pytest.fixture(scope="module")
def pair():
    x, s, _ = chest_phantom(128, seed=4)
    return x[None, None], s[None, None]


def test_the_plain_rendering_changes_nothing(pair):
    x, s = pair
    xr, sr = Rendering().apply(x, s)
    assert torch.equal(xr, x) and torch.equal(sr, s)


def test_noise_is_the_same_field_in_x_and_s(pair):
    x, s = (0.2 + 0.6 * t for t in pair)  # away from 0 and 1: no clipping
    xr, sr = Rendering(noise=0.02).apply(x, s, torch.Generator().manual_seed(1))
    assert (xr - x).std() > 0.015  # noise was added...
    assert torch.allclose(xr - sr, x - s, atol=1e-6)  # ...and the bone X - S is untouched


def test_the_grey_curve_is_the_formula_on_both(pair):
    x, s = pair
    xr, sr = Rendering(gamma=0.7, low=0.15, high=0.85).apply(x, s)
    for before, after in ((x, xr), (s, sr)):
        assert torch.allclose(after, 0.15 + 0.7 * before**0.7, atol=1e-6)


def test_edge_enhancement_overshoots_at_an_edge_and_leaves_flat_grey_alone():
    step = torch.full((1, 1, 512, 512), 0.3)  # lengths are in px of a 512 px image
    step[..., 256:] = 0.6
    xr, _ = Rendering(unsharp=1.0, unsharp_sigma=2.0).apply(step, step)
    assert xr[..., 256 + 1].mean() > 0.62 and xr[..., 256 - 2].mean() < 0.28  # overshoot on both sides
    assert torch.allclose(xr[..., :64], step[..., :64], atol=1e-6) and torch.allclose(xr[..., -64:], step[..., -64:], atol=1e-6)


def test_lower_resolution_loses_fine_detail_only():
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64).contiguous()
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float().view(1, 1, 64, 64)
    r = Rendering(resolution=0.5)
    assert (r.apply(ramp, ramp)[0][..., 4:-4] - ramp[..., 4:-4]).abs().max() < 0.02  # smooth: kept
    assert r.apply(checker, checker)[0].std() < 0.1 * checker.std()  # one-pixel detail: gone


def test_aspect_stretches_the_width_about_the_centre():
    img = torch.zeros(1, 1, 64, 64)
    img[..., 40] = 1.0  # a vertical line 8 px right of the centre (31.5)
    out, _ = Rendering(aspect=1.5).apply(img, img)
    assert int(out[0, 0, 32].argmax()) in (43, 44)  # 31.5 + 8.5 * 1.5 = 44.25


def test_jpeg_matches_pil_on_each_image(pair):
    x, s = pair
    xr, sr = Rendering(jpeg=30).apply(x, s)
    buf = io.BytesIO()
    Image.fromarray(np.round(s[0, 0].numpy() * 255).astype(np.uint8)).save(buf, format="JPEG", quality=30)
    assert torch.allclose(sr[0, 0], torch.from_numpy(np.asarray(Image.open(buf), dtype=np.float32) / 255))
    assert not torch.equal(xr, x)


def test_training_renderings_are_drawn_from_their_ranges_and_never_jpeg():
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = random_rendering(rng)
        assert r.jpeg == 0  # the family held out of training
        for name, (_, (lo, hi)) in RENDER_RANGES.items():
            value = getattr(r, name)
            assert value == getattr(Rendering(), name) or lo <= value <= hi, (name, value)
    shifted = {r for named in SHIFTED.values() for r in named.values()}
    assert Rendering() not in shifted


def test_a_range_set_changes_only_what_it_names_and_a_config_names_one():
    """"wide-aspect" draws pixel aspect more often and over U(0.8, 1.25) (the shifted set's 0.88 and
    1.12 inside), every other step as the base set; a run's config names its set (a typo is refused),
    and runs recorded before the field existed read as "base"."""
    from dae_lib.config import config_from_dict, load_config
    from dae_lib.errors import ConfigError

    assert RANGE_SETS["base"] is RENDER_RANGES
    wide = RANGE_SETS["wide-aspect"]
    assert {k for k in wide if wide[k] != RENDER_RANGES[k]} == {"aspect"}
    rng = np.random.default_rng(0)
    aspects = np.array([random_rendering(rng, wide).aspect for _ in range(2000)])
    drawn = aspects[aspects != 1.0]
    assert 0.45 < len(drawn) / len(aspects) < 0.55 and drawn.min() >= 0.8 and drawn.max() <= 1.25
    assert ((drawn < 0.88) | (drawn > 1.12)).any()  # beyond the base set's U(0.9, 1.1)
    cfg = load_config("smoke", render_p=0.5, render_ranges="wide-aspect")
    assert PairedAugment.from_config(cfg).render.ranges is wide
    with pytest.raises(ConfigError, match="render_ranges must be one of base, wide-aspect"):
        PairedAugment.from_config(load_config("smoke", render_p=0.5, render_ranges="wide"))  # where training starts
    old = load_config("smoke").to_dict()
    del old["render_ranges"]
    assert config_from_dict(old).render_ranges == "base"


def test_render_augment_follows_the_seed_and_its_probability(pair):
    x, s = (t.repeat(6, 1, 1, 1) for t in pair)
    torch.manual_seed(5)
    a = RenderAugment(1.0)(x, s)
    torch.manual_seed(5)
    b = RenderAugment(1.0)(x, s)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # reproducible from torch's seed
    assert all(not torch.equal(a[0][i], x[i]) for i in range(6))  # p = 1: each image re-rendered
    off = RenderAugment(0.0)(x, s)
    assert torch.equal(off[0], x) and torch.equal(off[1], s)


def test_paired_augment_renders_only_when_asked(tiny_data):
    cfg = tiny_config(render_p=0.0)
    assert PairedAugment.from_config(cfg).render is None
    assert PairedAugment.from_config(tiny_config(render_p=0.5)).render.p == 0.5


def test_a_run_trains_with_rendering_augmentation(tiny_data, tmp_path):
    result = fit(tiny_config(variant="r_ae", unet_width=4, epochs=1, render_p=1.0), tmp_path / "run", data=tiny_data, progress=False)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])


class _Identity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (x + 0 * self.p,)


def test_shifted_rows_score_every_rendering_of_every_case(pair):
    x, s = (t.repeat(2, 1, 1, 1) for t in pair)
    shifted = {"noise": {"noise 0.01": Rendering(noise=0.01)}, "grey curve": {"gamma 1.5": Rendering(gamma=1.5)}}
    rows = shifted_rows({"nothing": _Identity()}, x, s, ["a", "b"], shifted)
    assert len(rows) == 2 * (1 + 2) and [r[:2] for r in renderings(shifted)][0] == ORIGINAL[:2]
    assert np.allclose(rows["nothing_gain"], 0) and np.allclose(rows["nothing_bsr"], 0)  # doing nothing gains nothing
    summary = shifted_summary(rows, by="family")
    assert list(summary["family"]) == ["none", "noise", "grey curve"] and list(summary["cases"]) == [2, 2, 2]


def _rows(gains: dict[str, list[float]]) -> pd.DataFrame:
    """Rows as shifted_rows makes them: family 'none' and two shifted families of 2 cases each."""
    fams = ["none"] * 2 + ["noise"] * 2 + ["blur"] * 2
    df = pd.DataFrame({"family": fams, "rendering": fams, "case_id": ["a", "b"] * 3, "identity_psnr": 30.0})
    for name, g in gains.items():
        df[f"{name}_gain"] = g
        df[f"{name}_psnr"] = 30.0 + np.array(g)
        df[f"{name}_bsr"] = 0.5
    return df


def test_the_chosen_candidate_is_never_worse_than_nothing_and_replaces_v1_only_when_it_wins_both():
    rows = _rows({
        "v1": [6, 6, 1, 1, 2, 2],
        "best_but_one_case_worse": [6, 6, 9, -0.1, 9, 9],  # the best mean, one shifted case worse than nothing
        "loses_a_family": [6.1, 6.1, 3, 3, 1.5, 1.5],
        "worse_as_stored": [5, 5, 3.5, 3.5, 3, 3],
        "good": [6.1, 6.1, 2, 2, 3, 3],
    })  # fmt: skip
    table, chosen = candidate_table(rows, {})
    assert chosen == "worse_as_stored" and not replaces_default(table, chosen)  # the best mean shifted gain; loses as stored
    wins = beats_on_every_family(rows, "loses_a_family", "v1").set_index("family")["wins"]
    assert wins["noise"] and not wins["blur"]
    table, chosen = candidate_table(rows.drop(columns=[c for c in rows if c.startswith("worse_as_stored")]), {})
    assert chosen == "good" and replaces_default(table, chosen)
    assert candidate_table(_rows({"v1": [6, 6, 1, 1, 2, 2], "bad": [6, 6, 0, 0, 1, 1]}), {})[1] is None


def test_the_released_candidate_stays_unless_beaten_by_more_than_the_margin():
    """choose: the model v2 was released from (its card's "candidate") keeps its place against a
    better mean shifted gain within MARGIN_DB, not beyond; the table's text says which was better."""
    from dae_lib.studies.v2 import MARGIN_DB, best_qualifying, candidates_markdown, choose, released_choice

    assert released_choice() == "render/512-low-lr"  # the committed card
    near, far = 2.5 + MARGIN_DB / 2, 2.5 + 2 * MARGIN_DB
    rows = _rows({"v1": [6, 6, 1, 1, 2, 2], "released": [6.2, 6.2, 2.5, 2.5, 2.5, 2.5], "near": [6.2, 6.2, near, near, near, near]})
    table, _ = candidate_table(rows, {})
    assert best_qualifying(table) == "near" and choose(table, "released_model_absent") == "near" and choose(table, None) == "near"
    assert choose(table, "released") == "near"  # the committed card's candidate is not in this table: no incumbent
    assert choose(table.replace({"released": "render/512-low-lr"}), "released") == "render/512-low-lr"
    table["model"] = table["model"].replace({"released": "inc"})
    assert choose(table, "inc") == "inc"
    assert f"near's mean shifted gain is higher by {MARGIN_DB / 2:.3f} dB" in candidates_markdown(table, "inc", "data")
    table.loc[table["model"] == "near", "shifted_gain_db"] = far
    assert choose(table, "inc") == "near"
    table.loc[table["model"] == "inc", "qualifies"] = False
    assert choose(table.assign(shifted_gain_db=table["shifted_gain_db"].where(table["model"] != "near", near)), "inc") == "near"


def test_error_budget_finds_where_the_error_is():
    s = torch.rand(1, 1, 512, 512) * 0.2 + 0.4
    mask = torch.zeros_like(s)
    mask[..., 160:240, :] = 1
    inside = error_budget(s + 0.05 * mask, s, mask)
    assert inside["bone"].item() == pytest.approx(1.0)
    checker = ((torch.arange(512)[:, None] + torch.arange(512)[None]) % 2).float().view(1, 1, 512, 512)
    lo, hi = BAND_SIGMAS
    assert error_budget(s + 0.02 * checker - 0.01, s, mask)[f"fine (< {lo:g} px)"].item() > 0.95
    assert error_budget(s + 0.02, s, mask)[f"coarse (> {hi:g} px)"].item() > 0.95
    regions = sum(inside[k] for k in ("bone", "lungs, no bone", "elsewhere"))
    assert regions.item() == pytest.approx(1.0)


def test_the_committed_study_reads_back_or_says_it_was_not_run_here(tmp_path):
    from dae_lib.studies import v2

    missing = v2.committed_summary(tmp_path)
    assert missing.rows is None and missing.shares is None and "Not measured here" in missing.markdown
    found = v2.committed_summary()  # results/v2/, committed
    assert found.rows is not None and list(found.models)[0] == "v1" and len(found.models) == 2
    assert "| by region | bone | lungs, no bone | elsewhere |" in found.markdown and "Chosen:" in found.markdown
    assert "**Test-time averages against their members (" in found.markdown and "| v2+flip | 2 |" in found.markdown
    assert "data bse-jsrt-512, 11 validation cases" in found.footer and "/" not in found.footer.split("commit")[0].replace("bse-jsrt-512", "")


def test_every_v2_candidate_is_v1s_recipe_changed_only_where_it_says(tmp_path):
    """Each candidate's stages load as valid configs and build their augmentation (a misspelt field
    or a value out of range in CANDIDATES fails here, not on a GPU), differ from v1's recipe at that stage in the fields
    the candidate names and only there (every named field changes it: the one known exception is listed), and chain: stage k
    starts from stage k - 1's folder, a continuing candidate's first stage from the folder of the model it continues."""
    import dataclasses

    from dae_lib.studies.v2 import CANDIDATES, CONTINUES, model_folder, stage_config, stage_dirs, stages_of

    replicates = {"render-lm100": {"lm"}}  # lm 100 is the R family's own weight: trained and reported as a replicate of "render"
    for name, changes in CANDIDATES.items():
        stages = stages_of(name)
        for k in range(len(stages)):
            stage = stage_config(name, k, "phantom", "cpu", tmp_path)
            PairedAugment.from_config(stage)
            cfg = dataclasses.asdict(stage)
            plain = dataclasses.asdict(stage_config("longer", k, "phantom", "cpu", tmp_path, stages))  # v1's recipe: render_p 0
            differ = {f for f in cfg if cfg[f] != plain[f] and f != "init_from"}
            assert differ == set(changes) - replicates.get(name, set()) - ({"render_p"} if name == "longer" else set()), name
            teachers = tuple(str(model_folder(t, tmp_path)) for t in changes.get("teachers", ()))
            assert all(cfg[f] == (teachers if f == "teachers" else v) for f, v in changes.items()), name
            first = str(model_folder(CONTINUES[name], tmp_path)) if name in CONTINUES else None
            assert cfg["init_from"] == (str(stage_dirs(name, tmp_path)[k - 1]) if k else first)
    assert str(model_folder("render/512-low-lr", tmp_path)).endswith("render-512-low-lr")
    assert str(model_folder("render", tmp_path)).endswith("render-512") and str(model_folder("v2-aspect", tmp_path)).endswith("v2-aspect-ft")
    for unknown in ("render/1024", "v3"):
        with pytest.raises(InputError, match=unknown.split("/")[-1]):
            model_folder(unknown, tmp_path)


def test_a_continuing_candidate_needs_what_it_continues_trains_after_it_and_is_found(tmp_path, monkeypatch):
    """CONTINUES: refused with the missing model named while that has no weights; trained in a second
    wave whatever the order asked; found under its own name, beside the stages of the from-scratch ones."""
    from dae_lib.runs import BEST_WEIGHTS
    from dae_lib.studies import v2

    with pytest.raises(InputError, match="v2-aspect continues or learns from render/512-low-lr"):
        v2.train_candidate("v2-aspect", "phantom", "cpu", tmp_path)
    order = []
    monkeypatch.setattr(v2, "train_candidate", lambda name, *a, **k: order.append(name))
    v2.train_all(["v2-aspect", "render", "v2-anneal"], "phantom", "cpu", 1, 1.0, tmp_path)
    assert order == ["render", "v2-aspect", "v2-anneal"]
    for folder in ("render-256", "render-512", "render-512-low-lr", "v2-aspect-ft"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / BEST_WEIGHTS).touch()
    assert v2.finished_candidates(tmp_path) == {"render": tmp_path / "render-512", "render/512-low-lr": tmp_path / "render-512-low-lr",
                                                "v2-aspect": tmp_path / "v2-aspect-ft"}  # fmt: skip


def test_a_test_time_average_is_the_mean_of_its_members_and_of_the_mirror_images():
    """inference.Averaged against the mean written out by hand: two different models (one of them
    not mirror-symmetric), with and without the flip."""
    from dae_lib.inference import Averaged, predict

    class Head(torch.nn.Module):  # returns a tuple, as the project's models do
        def __init__(self, lean: float, offset: float):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
            with torch.no_grad():
                self.conv.weight[..., 0] += lean  # leans left: the flip changes its output
            self.offset = offset

        def forward(self, x):
            return (self.conv(x) + self.offset,)

    torch.manual_seed(0)
    m1, m2 = Head(0.5, 0.0), Head(0.0, 0.25)
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        plain = (m1(x)[0] + m2(x)[0]) / 2
        mirrored = (m1(x)[0] + m2(x)[0] + m1(x.flip(-1))[0].flip(-1) + m2(x.flip(-1))[0].flip(-1)) / 4
    assert torch.allclose(predict(Averaged([m1, m2]), x), plain.clamp(0, 1), atol=1e-6)
    assert torch.allclose(predict(Averaged([m1, m2], flip=True), x), mirrored.clamp(0, 1), atol=1e-6)
    assert not torch.allclose(mirrored, plain, atol=1e-3)  # the flip mattered


def test_an_averages_row_says_its_gain_over_its_best_member(monkeypatch):
    from dae_lib.studies import v2

    monkeypatch.setattr(v2, "AVERAGES", {"a&b": (("a", "b"), False)})
    rows = _rows({"a": [6, 6, 2, 2, 3, 3], "b": [5, 5, 4, 4, 4, 4], "a&b": [6.5, 6.5, 3.5, 3.5, 5, 5]})
    table = v2.average_table(rows, {"a": 1, "b": 1, "a&b": 2}, {"a": 100, "b": 100, "a&b": 200}).set_index("model")
    assert table.loc["a&b", "over_best_member_db"] == pytest.approx(0.5)  # 6.5 against a's 6
    assert table.loc["a&b", "shifted_over_best_member_db"] == pytest.approx(0.25)  # 4.25 against b's 4
    assert pd.isna(table.loc["a", "over_best_member_db"]) and table.loc["a&b", "passes"] == 2
    text = v2.averages_markdown(table.reset_index(), "data", "0" * 40)
    assert f"Within {v2.INFERENCE_BUDGET_MS} ms here: a, b." in text
