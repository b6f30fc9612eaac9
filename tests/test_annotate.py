"""The code beside each equation (notebook 02): every check holds, and a wrong implementation fails it."""
import pytest
import torch
import torch.nn.functional as F

from dae_lib import losses, models
from dae_lib.config import load_config
from dae_lib.data import load_phantom
from dae_lib.reporting import annotate


def _pair():
    d = load_phantom(3, 192, seed=1234)
    return d.x[:1], d.s[:1], d.m[:1]


def test_every_equation_check_holds_on_a_phantom_pair():
    checks = annotate.equation_checks(*_pair(), load_config("smoke", variant="dae_msssim"))
    assert [c.equation for c in checks] == ["(1)", "(2)", "(3)-(4)", "(5)", "(6)", "(7)", "(1)"]
    assert all(c.holds for c in checks), [str(c) for c in checks if not c.holds]


def test_a_wrong_mse_fails_its_check(monkeypatch):
    monkeypatch.setattr(losses, "mse_loss", lambda p, t: F.mse_loss(p.float(), t.float(), reduction="sum"))  # a sum, not eq. (2)'s mean
    checks = {c.equation + c.claim[:12]: c for c in annotate.equation_checks(*_pair(), load_config("smoke", variant="dae_msssim"))}
    failing = [str(c) for c in checks.values() if not c.holds]
    assert any(s.startswith("eq. (2)") and s.endswith("FAILS") for s in failing)


def test_the_source_shown_is_the_functions_own():
    text = annotate.source(losses.seg_loss)
    assert text.startswith("```python\ndef seg_loss(") and "binary_cross_entropy_with_logits" in text and text.endswith("```")


def test_the_msssim_map_figure_has_a_colour_bar():
    from dae_lib.reporting import figures

    x, s, _ = _pair()
    fig = figures.msssim_map_figure(x, s, footer="x")
    assert any("MS-SSIM(j)" in ax.get_ylabel() for ax in fig.axes) and torch.is_tensor(x)


# ---- the model beside §2.1-2.2 and the mask of §3.1 -----------------------------------------------



@pytest.mark.parametrize("variant", ["ae", "dae_msssim", "r_ae", "r_dae_msssim"])
def test_every_model_check_holds_for_both_families(variant):
    checks = annotate.model_checks(load_config("smoke", variant=variant), _pair()[0])
    assert set(checks) == {"encoder", "decoder", "model"}
    assert all(c.holds for cs in checks.values() for c in cs), [str(c) for cs in checks.values() for c in cs if not c.holds]


def test_a_branch_running_in_eval_mode_or_a_wrong_encoder_fails_its_check(monkeypatch):
    from dae_lib.models import dae

    forward = dae.DAE.forward
    monkeypatch.setattr(dae.DAE, "forward", lambda self, x: (forward(self, x)[0], self.bone_seg(self.encoder(x))))
    checks = annotate.model_checks(load_config("smoke", variant="dae"), _pair()[0])
    assert not checks["model"][0].holds and str(checks["model"][0]).endswith("FAILS")
    monkeypatch.undo()
    wrong = annotate.model_checks(load_config("smoke", variant="dae", channels=(16, 32, 64, 128)), _pair()[0])
    assert not wrong["encoder"][0].holds  # the last layer doubles: not the paper's encoder


def test_a_residual_model_without_its_subtraction_fails_its_check(monkeypatch):
    from dae_lib.models import residual_unet

    monkeypatch.setattr(residual_unet.ResidualUNet, "forward", lambda self, x: (x * 0.5, None))
    checks = annotate.model_checks(load_config("smoke", variant="r_ae"), _pair()[0])
    assert not any(c.holds for c in checks["decoder"])


def test_the_family_text_and_source_follow_the_family():
    reproduced, residual = (load_config("smoke", variant=v) for v in ("dae_msssim", "r_dae_msssim"))
    text = annotate.family_markdown(reproduced)
    assert "16, 32, 64, 64" in text and "sigmoid" in text and "X - \\hat B" not in text and "adam at lr 0.001" in text
    text = annotate.family_markdown(residual)
    assert "X - \\hat B" in text and "adamw" in text and "16, 32, 64, 64" not in text and "sigmoid output" not in text
    assert "4, 8, 16, 32" in text  # the smoke profile's unet_width = 4, read from the config
    assert [p.code for p in annotate.model_parts(reproduced)] == [models.dae.Encoder, models.dae.Decoder, models.dae.DAE]
    assert [p.code.__module__ for p in annotate.model_parts(residual)] == ["dae_lib.models.residual_unet"] * 3
    shown = annotate.part_markdown(annotate.model_parts(reproduced)[0])
    assert shown.startswith("> Paper §2.1:") and "class Encoder(nn.Module):" in shown


def test_every_mask_check_holds_and_a_wrong_mask_or_threshold_fails(monkeypatch):
    cfg = load_config("smoke", variant="dae")
    d = load_phantom(3, 192, seed=1234)
    assert all(c.holds for c in annotate.mask_checks(d.x, d.s, d.m, cfg))
    shifted = losses.bone_mask(d.x, d.s, 0.5 * float(losses.mask_thresholds(d.x, d.s, "otsu", cfg.mask_min_threshold)[0]), 0.0)
    assert not annotate.mask_checks(d.x, d.s, shifted, cfg)[0].holds  # a mask at another level
    monkeypatch.setattr(losses, "otsu_threshold", lambda v, bins=256: float(v.mean()))  # not Otsu's level
    m = losses.bone_mask(d.x, d.s, "otsu", 0.0)
    checks = annotate.mask_checks(d.x, d.s, m, load_config("smoke", variant="dae", mask_min_threshold=0.0))
    assert checks[0].holds and not checks[-1].holds, [str(c) for c in checks]
