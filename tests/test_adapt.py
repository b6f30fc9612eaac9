"""The site-adaptation loop (scoring/adapt.py): the learning rate chosen on validation pairs only,
the held-out pairs scored by the released model and the chosen one only. The loop's real run (the
released model fine-tuned on phantom site pairs) is notebook 05 section 5.5, under nbval."""
import types

import pandas as pd
import pytest

from dae_lib.cli import main as cli_main
from dae_lib.config import load_config, profile_section
from dae_lib.errors import ConfigError
from dae_lib.runs import config_from_run, released_folder
from dae_lib.scoring import adapt


def _fake(monkeypatch, val_psnr: dict, held_psnr: dict):
    """fit writes nothing; score_folder answers per (weights, folder) from the tables given."""
    calls = []

    def fit(cfg, run, progress=False):
        calls.append(("fit", cfg.lr, cfg.init_from, cfg.register_pairs))
        return types.SimpleNamespace(best_epoch=1, history=[{}], data=types.SimpleNamespace(polarity="stored polarity clinical (set by the user)"))

    def score_folder(folder, s_dir, out, weights=None, device="auto", settings=None, log=print):
        part = folder.name
        calls.append(("score", part, weights))
        lr = None if weights is None else float(weights.rsplit("lr", 1)[1])
        psnr = (val_psnr if part == "validation" else held_psnr)[lr]
        df = pd.DataFrame({"psnr_mono_identity": [30.0, 31.0], "psnr_mono_model": [psnr, psnr], "bsr_mono_model": [0.1, 0.1],
                           "psnr_fit_identity": [25.0, 25.0], "psnr_fit_model": [99.0, 99.0], "psnr_model": [20.0, 20.0]})  # the affine fit would choose nothing
        return df, []

    monkeypatch.setattr(adapt, "fit", fit)
    monkeypatch.setattr(adapt, "score_folder", score_folder)
    return calls


@pytest.mark.parametrize("best", [1e-3, 1e-4])
def test_the_learning_rate_is_chosen_on_validation_and_only_the_chosen_model_meets_the_held_out_pairs(tmp_path, monkeypatch, best):
    other = 1e-4 if best == 1e-3 else 1e-3
    calls = _fake(monkeypatch, {best: 32.0, other: 31.0}, {None: 29.0, best: 30.5, other: 35.0})  # other would win on held-out
    settings = adapt.AdaptSettings(epochs=1, lrs=(1e-3, 1e-4))
    result = adapt.adapt(tmp_path / "tune", tmp_path / "validation", tmp_path / "held-out", tmp_path / "work", settings, log=lambda *a: None)
    assert result.chosen_lr == best
    held = [c for c in calls if c[0] == "score" and c[1] == "held-out"]
    assert [c[2] is None for c in held] == [True, False] and held[1][2].endswith(f"lr{best:g}")  # released first, then the chosen
    assert [c for c in calls if c[0] == "fit"] == [("fit", 1e-3, "released", True), ("fit", 1e-4, "released", True)]
    t = result.table
    assert list(t["part"]) == ["held-out", "validation", "validation", "held-out"]
    assert t.iloc[-1]["mono_psnr"] == 30.5 and t.iloc[-1]["worse_than_doing_nothing"] == 1  # 30.5 < 31 for one pair
    assert "| released | held-out | 2 |" in adapt.table_markdown(t)
    assert sorted(p.name for p in result.scores.values()) == sorted(["released-held-out", "lr0.001-validation", "lr0.0001-validation", f"lr{best:g}-held-out"])


def test_finetuning_keeps_the_released_network_and_registers_the_pairs(tmp_path):
    cfg = adapt.finetune_config(tmp_path, 1e-4, adapt.AdaptSettings(epochs=3))
    released = config_from_run(released_folder())
    for key in ("variant", "image_size", "unet_width", "unet_depth", "lm", "ls", "msssim_form"):
        assert getattr(cfg, key) == getattr(released, key), key
    assert (cfg.init_from, cfg.register_pairs, cfg.lr, cfg.epochs, cfg.schedule, cfg.cache_data) == ("released", True, 1e-4, 3, "constant", False)


def test_profiles_size_the_loop_and_training_configs_ignore_that_section():
    assert adapt.AdaptSettings.for_profile("smoke").epochs < adapt.AdaptSettings.for_profile("quick").epochs
    assert profile_section("quick", "adapt") and "adapt" not in vars(load_config("quick"))
    with pytest.raises(ConfigError, match="profile section"):
        profile_section("quick", "nonsense")


def test_adapt_command_refuses_an_out_folder_inside_an_input(tmp_path, capsys):
    for part in ("tune", "validation", "held-out"):
        (tmp_path / part).mkdir()
    code = cli_main(["adapt", *(str(tmp_path / p) for p in ("tune", "validation", "held-out")), "--out", str(tmp_path / "tune" / "o")])
    assert code == 2 and "input folder" in capsys.readouterr().err and not (tmp_path / "tune" / "o").exists()
