"""A later release beside the first (issue 23): cards that follow every training stage, carry the
validation and shifted-validation sections and score an earlier release on the same test cases,
and released models chosen by name (`--weights NAME`)."""
import json

import pytest

from dae_lib import runs
from dae_lib.errors import WeightsError
from dae_lib.reporting.evaluate import IDENTITY
from dae_lib.studies import release
from dae_lib.train import fit
from helpers import tiny_config


@pytest.fixture(scope="module")
def three_stages(tiny_data, tmp_path_factory):
    """Three chained tiny runs (64 px, then 64 px at two lower rates), as v2's stages chain."""
    root = tmp_path_factory.mktemp("stages")
    base = dict(variant="r_ae", unet_width=4, epochs=1)
    fit(tiny_config(**base), root / "s1", data=tiny_data, progress=False)
    fit(tiny_config(**base, lr=5e-4, init_from=str(root / "s1")), root / "s2", data=tiny_data, progress=False)
    fit(tiny_config(**base, lr=1e-4, init_from=str(root / "s2")), root / "s3", data=tiny_data, progress=False)
    return root


def test_the_card_follows_every_stage(three_stages):
    chain = release.stage_chain(three_stages / "s3")
    assert [st.get("lr") for st in chain] == [None, 5e-4, 1e-4] and all(st["epochs"] == 1 for st in chain)
    text = release._stages_text(chain)
    assert "stage 2 at 64 px from stage 1 at learning rate 0.0005" in text and "stage 3 at 64 px from stage 2 at learning rate 0.0001" in text


def test_a_later_release_scores_the_earlier_beside_it_and_carries_its_sections(three_stages, tiny_data, tmp_path, monkeypatch):
    first = release.write_release(three_stages / "s1", tmp_path / "released" / "r_ae-phantom", tiny_data, log=lambda *a: None)
    notes = {
        "model": "R-AE v2", "recipe": "A recipe said here.", "regenerate": "python -m somewhere",
        "validation": {"what": "the validation cases", "table": ["| model | PSNR |", "| --- | --- |", "| v2 | 30.00 |"]},
        "shifted_validation": {"what": "rendered", "table": ["| family | gain |", "| --- | --- |", "| noise | +1.00 |"]},
        "cpu_inference": "median 1 ms.",
    }  # fmt: skip
    later = release.write_release(three_stages / "s3", tmp_path / "released" / "r_ae-phantom-v2", tiny_data, log=lambda *a: None,
                                  notes=notes, compare={"v1 (r_ae-phantom)": first})  # fmt: skip
    card = json.loads((later / "model_card.json").read_text())
    assert list(card["test_metrics"]) == [IDENTITY, "R-AE v2", "v1 (r_ae-phantom)"]
    first_card = json.loads((first / "model_card.json").read_text())
    assert card["test_metrics"]["v1 (r_ae-phantom)"] == first_card["test_metrics"]["R-AE"]  # the same cases, the same numbers
    assert not (first / "test_metrics.csv").exists()  # scoring the earlier release left nothing in its folder
    md = (later / "model_card.md").read_text()
    assert md.startswith("# Model card: R-AE v2") and "A recipe said here. Regenerate: `python -m somewhere`." in md
    assert "**Validation** (the validation cases):" in md and "| noise | +1.00 |" in md and "**CPU inference**: median 1 ms." in md
    monkeypatch.setattr(runs, "RELEASED_DIR", first.parent)
    assert runs.released_names() == ["r_ae-phantom", "r_ae-phantom-v2"]
    assert runs.load_trained("r_ae-phantom-v2").weights == later / "best.safetensors"  # by name, as --weights NAME
    with pytest.raises(WeightsError, match=r"no such weights file, run folder or released model \(released: r_ae-phantom, r_ae-phantom-v2\)"):
        runs.load_trained("r_ae-phantom-v3")
